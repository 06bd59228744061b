"""A lossy network path to the provider, for real: a loopback TCP proxy
(tests/tcp_proxy.py) between the server and the OpenAI stand-in drops the packets of the
model's stream after its headers, or holds the speech stream mid-audio. Nothing in the
server or the stand-in is told: the server sees a connection that goes quiet, gives it up
at PROVIDER_STALL_S, asks again on a fresh connection, and the caller hears the recovery
phrase within 1.5 s of when the reply was due and never more than 3 s of dead air."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import Latency, Reply, StandinOpenAI
from tests.calls.cascade_support import RunCall, line_bytes, short_reply, short_responder
from tests.tcp_proxy import TcpProxy
from voice_agent.conversation.session import HOLD_ON
from voice_agent.settings import Settings

#: The caller waits this long in silence before its next turn, so a late reply is heard.
PATIENT_MS = 4500.0
#: The reply is due about 1 s after the caller's turn ended (the cascade's usual latency).
DUE_MS = 500.0 + 1000.0  # endpointing silence + that latency


@pytest.fixture
async def proxy(standin: StandinOpenAI) -> AsyncIterator[TcpProxy]:
    port = int(standin.base_url.rsplit(":", 1)[1].split("/")[0])
    relay = TcpProxy("127.0.0.1", port)
    await relay.start()
    try:
        yield relay
    finally:
        await relay.aclose()


def _through(proxy: TcpProxy, standin: StandinOpenAI) -> str:
    return standin.base_url.replace(standin.base_url.split("/")[2], f"127.0.0.1:{proxy.port}")


def _reply_bytes(text: str) -> int:
    return sum(line_bytes(s) for s in re.split(r"(?<=[.!?])\s+", text))


async def test_model_stream_whose_packets_are_dropped_gets_the_phrase_then_the_answer(
    standin: StandinOpenAI,
    proxy: TcpProxy,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    """The first caller turn's chat request is answered (headers out, the first token
    due 0.4 s later), and 0.1 s in every further packet of that connection is dropped."""
    standin.latency = Latency(
        0.0,
        llm_first_token_ms=400.0,
        llm_token_ms=10.0,
        tts_first_byte_ms=0.0,
        tts_realtime_factor=float("inf"),
    )
    chats = 0

    def responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        nonlocal chats
        chats += 1
        if chats == 1:
            asyncio.get_running_loop().call_later(0.1, proxy.drop_latest)
        return short_responder(messages, tools)

    standin.responder = responder
    settings = cascade_settings(openai_base_url=_through(proxy, standin))
    turns = [CallerTurn(utterances["need"]), CallerTurn(utterances["hours"], pause_ms=PATIENT_MS)]
    run = await run_call(turns, settings=settings, hangup_wait_s=6.0, reply_timeout_s=15.0)
    result = run.result

    print("dropped packets: reply ms", [t.reply_ms for t in result.turns], "gaps", result.gaps_ms)
    # The phrase: within 1.5 s of when the reply was due, and so within 3 s of silence.
    reply_ms = result.turns[0].reply_ms
    assert reply_ms is not None and reply_ms <= DUE_MS + 1500, reply_ms
    assert [t.text for t in run.turns("event")] == [f"[recovery] {HOLD_ON}"]
    assert all(gap < 3000 for gap in result.gaps_ms), result.gaps_ms
    # The turn was asked again (on a fresh connection) and answered whole.
    agent = [t.text for t in run.turns("agent")[1:]]
    assert agent == [short_reply(utterances["need"].text), short_reply(utterances["hours"].text)]
    assert standin.served["chat"] == 3
    answer = agent[0]
    heard = len(result.replies[1])
    assert abs(heard - line_bytes(HOLD_ON) - _reply_bytes(answer)) < 180, heard
    assert result.turns[1].reply_ms is not None and result.turns[1].reply_ms <= 3000


async def test_speech_stream_held_mid_audio_is_re_asked_and_joined(
    standin: StandinOpenAI,
    proxy: TcpProxy,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    """Speech streams at twice real time; 0.3 s into the first reply's speech its
    connection is held (open, silent). The caller hears the start, under 3 s of silence,
    then the rest of the reply once, from a fresh connection."""
    standin.latency = Latency(0.0, 0.0, 0.0, tts_first_byte_ms=0.0, tts_realtime_factor=2.0)
    standin.responder = short_responder
    armed: list[asyncio.Task[None]] = []
    speech_before: list[int] = []

    async def hold_speech_mid_audio() -> None:
        before = standin.served["speech"]
        speech_before.append(before)
        # Polled: the stand-in has no hook for a speech request, and none is needed here.
        while standin.served["speech"] == before:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        proxy.stall_latest()

    def transcribe(wav: bytes, inner: Callable[[bytes], str] = standin.transcriber) -> str:
        if not armed:  # the first caller turn: its reply's speech is the one held
            armed.append(asyncio.get_running_loop().create_task(hold_speech_mid_audio()))
        return inner(wav)

    standin.transcriber = transcribe
    settings = cascade_settings(openai_base_url=_through(proxy, standin))
    turns = [CallerTurn(utterances["need"]), CallerTurn(utterances["hours"], pause_ms=PATIENT_MS)]
    run = await run_call(turns, settings=settings, hangup_wait_s=6.0, reply_timeout_s=15.0)
    result = run.result
    await armed[0]

    print("held speech: reply ms", [t.reply_ms for t in result.turns], "gaps", result.gaps_ms)
    agent = [t.text for t in run.turns("agent")[1:]]
    assert agent == [short_reply(utterances["need"].text), short_reply(utterances["hours"].text)]
    # Heard once and whole: the re-asked stream was joined where the held one stopped (a
    # repeated start would add the 0.6 s sent before the hold: 4,800 bytes). The caller
    # may count a reply in pieces where its line ran dry, so the bytes are summed.
    heard = sum(len(reply) for reply in result.replies[1:])
    expected = sum(_reply_bytes(text) for text in agent)
    events = [t.text for t in run.turns("event")]
    phrases = line_bytes(HOLD_ON) * len(events)
    assert expected - 200 <= heard <= expected + phrases + 300, (heard, expected, events)
    assert result.gaps_ms and max(result.gaps_ms) < 3000, result.gaps_ms
    for turn in result.turns:
        assert turn.reply_ms is not None and turn.reply_ms <= 3000, turn.reply_ms
    # One more speech request than the sentences spoken: the held one, asked again.
    sentences = sum(len(re.split(r"(?<=[.!?])\s+", text)) for text in agent)
    assert standin.served["speech"] - speech_before[0] == sentences + 1
