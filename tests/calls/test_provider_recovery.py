"""Provider faults injected for real through the OpenAI stand-in, on whole cascade calls:
retried requests, recovery phrases while a reply is late, broken streams re-asked and
joined, a fallback provider behind an open breaker, and a polite end when nothing works.

"Dead air" is measured on the caller's side: the first agent audio after the caller's
speech (reply_ms) and every silence inside the agent's answer (gaps_ms)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import Latency, Reply, StandinOpenAI
from tests.calls.cascade_support import (
    FixtureTranscriber,
    RunCall,
    last_user_text,
    line_bytes,
    metric,
    short_reply,
    short_responder,
)
from voice_agent.conversation.session import (
    APOLOGY,
    HOLD_ON,
    TROUBLE_TRANSFER,
)
from voice_agent.settings import Settings

ERRORS = "voice_agent_provider_errors_total"
#: The caller waits this long in silence before its next turn, so a late reply is heard
#: rather than talked over.
PATIENT_MS = 4500.0


def _line_bytes(text: str, cached: bool = False) -> int:
    """The stand-in's voice for `text`, sentence by sentence (each sentence of a reply is
    synthesised on its own; a cached phrase whole)."""
    sentences = [text] if cached else re.split(r"(?<=[.!?])\s+", text)
    return sum(line_bytes(s) for s in sentences)


def _close_to(audio: bytearray | bytes, text: str, slack: int = 60, cached: bool = False) -> bool:
    return abs(len(audio) - _line_bytes(text, cached)) <= slack * (text.count(". ") + 1)


def _dead_air_ok(run_result: Any, turn: int) -> None:
    """The caller heard something within 3 s of stopping (0.5 s endpointing, then the
    phrase 2 s after the turn ended: within 1.5 s of the reply's usual ~1 s) and never
    more than 3 s of silence inside an answer."""
    reply_ms = run_result.turns[turn].reply_ms
    assert reply_ms is not None and reply_ms <= 3000, reply_ms
    assert all(gap < 3000 for gap in run_result.gaps_ms), run_result.gaps_ms


async def test_5xx_and_429_with_retry_after_are_retried_without_the_caller_noticing(
    standin: StandinOpenAI, utterances: dict[str, Utterance], run_call: RunCall
) -> None:
    """Turn one: STT answers 500 once. Turn two: the model answers 429 (Retry-After 0.3 s)
    once. Turn three: speech answers 503 once. Every turn is answered as if nothing failed."""
    names = ("greeting_reply", "need", "budget")
    standin.responder = short_responder
    standin.fail("transcriptions", status=500, times=1)
    heard = 0

    def arm(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        nonlocal heard
        heard += 1
        reply = short_responder(messages, tools)
        if heard == 1:
            standin.fail("chat", status=429, retry_after_s=0.3, times=1)
        elif heard == 2:
            standin.fail("speech", status=503, times=1)
        return reply

    standin.responder = arm
    run = await run_call([CallerTurn(utterances[n]) for n in names], hangup_wait_s=6.0)
    agent = [t.text for t in run.turns("agent")[1:]]
    assert agent == [short_reply(utterances[n].text) for n in names]
    assert APOLOGY not in agent
    assert standin.faults == {"transcriptions": 1, "chat": 1, "speech": 1}
    for index, name in enumerate(names):
        assert _close_to(run.result.replies[index + 1], short_reply(utterances[name].text))
    # The 429's wait was honoured: the second chat request came at least 0.3 s later.
    assert run.result.turns[1].reply_ms is not None and run.result.turns[1].reply_ms >= 300
    for stage in ("stt", "llm", "tts"):
        assert metric(run.metrics, ERRORS, stage=stage) == 0.0  # none reached the session


async def test_a_first_token_that_never_comes_gets_a_recovery_phrase_then_the_answer(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    """The model sends its headers and then nothing. 2 s after the turn ended the caller
    hears the cached "One moment"; the stall is given up at PROVIDER_STALL_S and the
    request sent again on a fresh connection, whose answer the caller then hears."""
    standin.responder = short_responder
    standin.transcriber = _arm_on_first(
        standin.transcriber, lambda: standin.fail("chat", status=None, first_stall_s=30, times=1)
    )
    settings = cascade_settings(provider_stall_s=2.5)
    turns = [CallerTurn(utterances["need"]), CallerTurn(utterances["hours"], pause_ms=PATIENT_MS)]
    run = await run_call(turns, settings=settings, hangup_wait_s=6.0, reply_timeout_s=15.0)
    result = run.result

    _dead_air_ok(result, 0)
    assert 2400 <= (result.turns[0].reply_ms or 0) <= 3000
    events = [t.text for t in run.turns("event")]
    assert events == [f"[recovery] {HOLD_ON}"]
    agent = [t.text for t in run.turns("agent")[1:]]
    assert agent == [short_reply(utterances["need"].text), short_reply(utterances["hours"].text)]
    # Heard: the phrase, then the answer queued right behind it (no silence between).
    answer = short_reply(utterances["need"].text)
    assert len(result.replies) == 3
    assert abs(len(result.replies[1]) - _line_bytes(HOLD_ON, True) - _line_bytes(answer)) < 180
    # The phrase is not part of what the model is told it said.
    last_chat = standin.recorded("chat")[-1].body["messages"]
    assert HOLD_ON not in [m.get("content") for m in last_chat]
    assert standin.faults["chat"] == 1 and standin.served["chat"] == 3


async def test_streams_cut_mid_sentence_are_re_asked_and_joined(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    run_call: RunCall,
) -> None:
    """The model's stream is cut after four pieces (mid-sentence); later the speech stream
    is cut after two chunks. Both are asked again, and the caller hears each reply once,
    whole: the retry's output is skipped up to what was already passed on."""
    heard = 0

    def responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        nonlocal heard
        heard += 1
        if heard == 1:
            standin.fail("chat", status=None, cut_after=4, times=1)
        elif heard == 3:
            standin.fail("speech", status=None, cut_after=2, times=1)
        return short_responder(messages, tools)

    standin.responder = responder
    names = ("need", "hours")
    run = await run_call([CallerTurn(utterances[n]) for n in names], hangup_wait_s=6.0)
    agent = [t.text for t in run.turns("agent")[1:]]
    assert agent == [short_reply(utterances[n].text) for n in names]
    for index, name in enumerate(names):
        reply = short_reply(utterances[name].text)
        assert _close_to(run.result.replies[index + 1], reply), index
    assert standin.faults == {"chat": 1, "speech": 1}
    assert metric(run.metrics, ERRORS, stage="llm") == 0.0
    assert metric(run.metrics, ERRORS, stage="tts") == 0.0


@pytest.fixture
async def fallback() -> AsyncIterator[StandinOpenAI]:
    """A second OpenAI-compatible provider, on its own base URL and model names."""

    def responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        return Reply(f"Backup here. {short_reply(last_user_text(messages))}")

    async with StandinOpenAI(Latency.none(), responder=responder) as server:
        yield server


async def test_a_provider_that_is_down_opens_its_breaker_and_the_fallback_answers(
    standin: StandinOpenAI,
    fallback: StandinOpenAI,
    transcriber: FixtureTranscriber,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    """The primary's chat answers 500 to everything from the first turn on. Each turn is
    answered by the fallback (FALLBACK_OPENAI_BASE_URL, FALLBACK_LLM_MODEL); after
    PROVIDER_BREAKER_FAILURES the primary is not asked at all any more."""
    standin.responder = short_responder
    fallback.transcriber = transcriber
    standin.transcriber = _arm_on_first(standin.transcriber, lambda: standin.fail("chat"))
    settings = cascade_settings(
        fallback_openai_base_url=fallback.base_url,
        fallback_llm_model="backup-model",
        provider_breaker_failures=3,
    )
    names = ("need", "budget", "hours")
    run = await run_call(
        [CallerTurn(utterances[n]) for n in names], settings=settings, hangup_wait_s=6.0
    )
    agent = [t.text for t in run.turns("agent")[1:]]
    assert agent == [f"Backup here. {short_reply(utterances[n].text)}" for n in names]
    # Turn one: two attempts on the primary; turn two: one more opens the breaker (three
    # in a row); turn three goes straight to the fallback.
    assert standin.served["chat"] == 3
    assert [r.body["model"] for r in fallback.recorded("chat")] == ["backup-model"] * 3
    assert metric(run.metrics, ERRORS, stage="llm") == 0.0


async def test_when_every_provider_fails_the_call_is_transferred_politely_with_the_reason(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    """After the greeting everything answers 500. Each lost turn gets the cached apology
    (TTS is down too), and the third is followed by the hand-over to a person: the
    receptionist's transfer number, reason "provider-failure" stored."""

    def down() -> None:
        for endpoint in ("chat", "speech"):
            standin.fail(endpoint)

    standin.transcriber = _arm_on_first(standin.transcriber, down)
    settings = cascade_settings(provider_failed_turns_before_end=3)
    names = ("need", "budget", "hours", "goodbye")
    run = await run_call(
        [CallerTurn(utterances[n]) for n in names], settings=settings, hangup_wait_s=6.0
    )
    result = run.result

    agent = [t.text for t in run.turns("agent")[1:]]
    assert agent == [APOLOGY, APOLOGY, TROUBLE_TRANSFER]
    assert _close_to(result.replies[1], APOLOGY, cached=True)
    assert _close_to(result.replies[3], TROUBLE_TRANSFER, cached=True)
    assert result.ended_by_server
    assert run.stored.end_reason == "provider-failure"
    for turn in range(3):
        _dead_air_ok(result, turn)


def _arm_on_first(
    transcriber: Callable[[bytes], str], arm: Callable[[], None]
) -> Callable[[bytes], str]:
    """`transcriber`, calling `arm` as the first caller turn is transcribed (after the
    server started and cached its phrases)."""
    calls = 0

    def transcribe(wav: bytes) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            arm()
        return transcriber(wav)

    return transcribe
