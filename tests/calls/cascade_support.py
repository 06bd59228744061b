"""Helpers for whole calls on the cascade pipeline against the OpenAI stand-in: a
transcriber that knows which fixture the caller said, and the stand-in voice's lengths."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from loadtest.caller import CallerTurn, CallResult, place_call
from loadtest.fixtures import Utterance
from loadtest.standins.fixture_transcriber import FixtureTranscriber as LoadtestTranscriber
from loadtest.standins.openai_server import (
    CHARS_PER_SECOND,
    SPEECH_RATE,
    Reply,
    default_responder,
    message_text,
)
from prompts import TurnTaking
from tests.conftest import TWILIO_TOKEN
from voice_agent.demo import running_server
from voice_agent.settings import Settings
from voice_agent.storage.metering import StoredUsage, UsageRepository
from voice_agent.storage.records import StoredCall, StoredTurn

_GOODBYE = re.compile(r"\b(?:good\s*bye|bye)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9']+")


class FixtureTranscriber(LoadtestTranscriber):
    """The stand-in's "Whisper" (see loadtest.standins.fixture_transcriber), which also
    keeps the fixture ids heard, one list per transcription request, for assertions."""

    def __init__(self, utterances: Iterable[Utterance]) -> None:
        super().__init__(utterances)
        self.heard: list[list[str]] = []

    def __call__(self, wav: bytes) -> str:
        ids = self.ids(wav)
        self.heard.append(ids)
        return self.text_of(ids)


@dataclass(slots=True)
class CallRun:
    """One finished call: what the caller experienced and what the server stored."""

    result: CallResult
    stored: StoredCall
    #: /metrics as the server exposed it after the call.
    metrics: str
    #: The call's usage rows, as metered.
    usage: list[StoredUsage]

    def turns(self, role: str) -> list[StoredTurn]:
        return [t for t in self.stored.turns if t.role == role]


#: The `run_call` fixture: `await run_call(turns, settings=..., hangup_wait_s=...)`.
RunCall = Callable[..., Awaitable[CallRun]]


def call_runner(default_settings: Callable[[], Settings]) -> RunCall:
    """One whole call on a fresh server through the real media websocket, returned with
    what was stored and the server's metrics (the cascade's and the realtime's fixtures)."""

    async def run(
        turns: list[CallerTurn],
        *,
        settings: Settings | None = None,
        hangup_wait_s: float = 3.0,
        reply_timeout_s: float = 10.0,
        call_sid: str | None = None,
        turn_taking: TurnTaking | None = None,
    ) -> CallRun:
        settings = settings or default_settings()
        async with running_server(settings) as runtime:
            if turn_taking is not None:
                agent = runtime.default_agent
                runtime.agents[agent.slug] = replace(agent, turn_taking=turn_taking)
            result = await place_call(
                settings.public_base_url,
                turns,
                auth_token=TWILIO_TOKEN,
                hangup_wait_s=hangup_wait_s,
                reply_timeout_s=reply_timeout_s,
                call_sid=call_sid,
            )
            assert await runtime.writes.flush(5.0)
            stored = await runtime.calls.get_call(result.call_sid)
            usage = await UsageRepository(runtime.database).rows_for_call(result.call_sid)
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(settings.public_base_url + "/metrics")).text
        assert result.error is None, result.error
        assert stored is not None
        return CallRun(result, stored, metrics, usage)

    return run


def line_bytes(text: str) -> int:
    """Mu-law bytes (8 kHz) of the stand-in's voice for `text`: its 24 kHz length / 3."""
    return max(1, round(len(text) / CHARS_PER_SECOND * SPEECH_RATE)) // 3


def last_user_text(messages: list[dict[str, Any]]) -> str:
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def short_responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
    """The default responder with replies cut to about three seconds, to keep calls short;
    goodbyes and tool results are answered as the default answers them."""
    said = last_user_text(messages)
    if messages[-1].get("role") != "user" or _GOODBYE.search(said):
        return default_responder(messages, tools)
    return Reply(short_reply(said))


def short_reply(said: str) -> str:
    """What `short_responder` answers to the caller saying `said`."""
    return f"I heard you say {echo(said)}. Go on."


def echo(said: str) -> str:
    """The words of the caller's turn the responders repeat back."""
    return " ".join(_WORD.findall(said)[:4]) or "nothing yet"


def metric(metrics: str, name: str, **labels: str) -> float:
    """A sample's value from Prometheus text; 0 when it is absent."""
    selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    wanted = f"{name}{{{selector}}}" if selector else name
    for line in metrics.splitlines():
        key, _, value = line.rpartition(" ")
        if key == wanted:
            return float(value)
    return 0.0
