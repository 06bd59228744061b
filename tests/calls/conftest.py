"""Fixtures for whole calls on the cascade pipeline: the OpenAI stand-in on loopback, a
transcriber that knows which fixture the caller said, and a server wired to both."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile

from loadtest.caller import CallerTurn, CallResult, place_call
from loadtest.fixtures import Utterance, load_script
from loadtest.standins.openai_server import Latency, StandinOpenAI
from media import mulaw
from voice_agent.demo import running_server
from voice_agent.settings import Settings
from voice_agent.storage.records import StoredCall

from tests.conftest import TWILIO_TOKEN

FRAME_SAMPLES = 160
#: Frames quieter than this (peak, int16) are silence or breath, shared by every fixture.
_VOICED_PEAK = 500


class FixtureTranscriber:
    """The stand-in's "Whisper": names the fixture utterances a turn's audio came from.

    The session sends the very samples the caller sent (mu-law decoding is exact), cut on
    the caller's 20 ms frame grid, so every voiced frame of the upload is a frame of one
    fixture. Looking frames up is immune to how the VAD splits or pads a turn; a turn that
    holds speech from two utterances is transcribed as both, in order.
    """

    def __init__(self, utterances: Iterable[Utterance]) -> None:
        self._frames: dict[bytes, str] = {}
        self._texts: dict[str, str] = {}
        shared: set[bytes] = set()
        for utterance in utterances:
            self._texts[utterance.id] = utterance.text
            pcm = mulaw.decode(utterance.audio)
            for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
                frame = pcm[start : start + FRAME_SAMPLES]
                if int(np.abs(frame.astype(np.int32)).max()) < _VOICED_PEAK:
                    continue
                key = frame.tobytes()
                if self._frames.get(key, utterance.id) != utterance.id:
                    shared.add(key)
                self._frames[key] = utterance.id
        for key in shared:
            del self._frames[key]
        #: Fixture ids heard, one list per transcription request.
        self.heard: list[list[str]] = []

    def ids(self, wav: bytes) -> list[str]:
        pcm, rate = soundfile.read(io.BytesIO(wav), dtype="int16")
        assert rate == 8000, rate
        found: list[str] = []
        for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            name = self._frames.get(pcm[start : start + FRAME_SAMPLES].tobytes())
            if name is not None and (not found or found[-1] != name):
                found.append(name)
        return found

    def __call__(self, wav: bytes) -> str:
        ids = self.ids(wav)
        self.heard.append(ids)
        return " ".join(self._texts[i] for i in ids)


@pytest.fixture(scope="session")
def utterances() -> dict[str, Utterance]:
    return {u.id: u for u in load_script()}


@pytest.fixture
def transcriber(utterances: dict[str, Utterance]) -> FixtureTranscriber:
    return FixtureTranscriber(utterances.values())


@pytest.fixture
async def standin(transcriber: FixtureTranscriber) -> AsyncIterator[StandinOpenAI]:
    async with StandinOpenAI(Latency.none(), transcriber=transcriber) as server:
        yield server


@pytest.fixture
def cascade_settings(
    make_settings: Callable[..., Settings], standin: StandinOpenAI
) -> Callable[..., Settings]:
    """Settings for a cascade server whose OpenAI is the stand-in."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "openai_api_key": standin.api_key,
            "openai_base_url": standin.base_url,
            "agent_pipeline": "cascade",
        }
        values.update(overrides)
        return make_settings(**values)

    return make


@dataclass(slots=True)
class CallRun:
    """One finished call: what the caller experienced and what the server stored."""

    result: CallResult
    stored: StoredCall
    metrics: str = ""

    def agent_turns(self) -> list[Any]:
        return [t for t in self.stored.turns if t.role == "agent"]

    def caller_turns(self) -> list[Any]:
        return [t for t in self.stored.turns if t.role == "caller"]


@pytest.fixture
def run_call(cascade_settings: Callable[..., Settings]) -> Callable[..., Any]:
    """`await run_call(turns, settings_overrides..., call_options...)`: serve the app, place one
    call through it, and return the caller's result with the stored call and /metrics."""

    async def run(
        turns: list[CallerTurn],
        *,
        settings: Settings | None = None,
        hangup_wait_s: float = 3.0,
        reply_timeout_s: float = 10.0,
        call_sid: str | None = None,
    ) -> CallRun:
        settings = settings or cascade_settings()
        async with running_server(settings) as runtime:
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
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(settings.public_base_url + "/metrics")).text
        assert result.error is None, result.error
        assert stored is not None
        return CallRun(result, stored, metrics)

    return run
