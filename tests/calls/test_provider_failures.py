"""Provider failures on a live cascade call: the caller hears an apology (or the rest of
the reply), the call goes on, and /metrics counts each failure by stage.

These pin what the session does once a stage has failed for good, so each request is
tried once (PROVIDER_ATTEMPTS=1); retries and fallbacks are tested in
test_provider_recovery.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import (
    Reply,
    ScriptedToolCall,
    StandinOpenAI,
    Transcriber,
    message_text,
)
from tests.calls.cascade_support import (
    RunCall,
    echo,
    last_user_text,
    line_bytes,
    metric,
    short_reply,
    short_responder,
)
from voice_agent.conversation.session import APOLOGY
from voice_agent.settings import Settings

_SLACK = 40


@pytest.fixture
def cascade_settings(cascade_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        return cascade_settings(**({"provider_attempts": 1} | overrides))

    return make


ERRORS = "voice_agent_provider_errors_total"


def _heard_whole(audio: bytearray, *sentences: str) -> bool:
    expected = sum(line_bytes(s) for s in sentences)
    return abs(len(audio) - expected) <= _SLACK * len(sentences)


async def test_each_stage_failing_once_is_apologised_for_or_skipped(
    standin: StandinOpenAI, utterances: dict[str, Utterance], run_call: RunCall
) -> None:
    """STT 500 on the first turn, LLM 500 on the second, TTS 500 on the first sentence of
    the third; the fourth turn is answered as if nothing had happened."""
    names = ("greeting_reply", "need", "budget", "hours")

    def responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        said = last_user_text(messages)
        if said == utterances["budget"].text:
            standin.fail("speech", times=1)  # the next synthesis: this reply's first sentence
            return Reply(f"Lost sentence. I heard you say {echo(said)}.")
        return short_responder(messages, tools)

    standin.responder = responder
    standin.fail("transcriptions", times=1)
    turns = [CallerTurn(utterances[name]) for name in names]
    # The LLM failure is armed once the first turn has been transcribed (and failed).
    standin.transcriber = _then(standin.transcriber, lambda: standin.fail("chat", times=1))
    run = await run_call(turns, hangup_wait_s=4.0)
    result = run.result

    # Every turn got a spoken reply.
    assert all(t.reply_ms is not None for t in result.turns)
    agent = [t.text for t in run.turns("agent")[1:]]
    budget_reply = f"I heard you say {echo(utterances['budget'].text)}."
    assert agent[0] == APOLOGY  # STT failed: the caller is asked to repeat
    assert agent[1] == APOLOGY  # LLM failed before saying anything
    assert agent[2] == budget_reply  # TTS failed on the first sentence: skipped
    assert agent[3] == short_reply(utterances["hours"].text)
    assert _heard_whole(result.replies[1], APOLOGY)
    assert _heard_whole(result.replies[3], budget_reply)

    # The unheard first turn is not in the transcript; the model never saw the lost sentence.
    assert [t.text for t in run.turns("caller")] == [utterances[n].text for n in names[1:]]
    last_chat = standin.recorded("chat")[-1].body["messages"]
    assert not [m for m in last_chat if "Lost sentence" in message_text(m)]
    assert [message_text(m) for m in last_chat if m["role"] == "assistant"][-1] == budget_reply

    for stage in ("stt", "llm", "tts"):
        assert metric(run.metrics, ERRORS, stage=stage) == 1.0, stage
    assert not result.ended_by_server


def _then(transcriber: Transcriber, after_first: Callable[[], None]) -> Transcriber:
    """`transcriber`, arming the next fault (`after_first`) as the first turn comes in."""
    calls = 0

    def transcribe(wav: bytes) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            after_first()
        return transcriber(wav)

    return transcribe


async def test_hung_stt_and_a_stalled_llm_are_cut_off_at_the_provider_timeout(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    """Turn one: STT never answers. Turn two: the model says one word and stalls. Both are
    given up on after provider_timeout_s (0.5 s) and apologised for; turn three is answered."""
    standin.responder = short_responder
    standin.fail("transcriptions", status=None, hang_s=30.0, times=1)
    standin.transcriber = _then(
        standin.transcriber, lambda: standin.fail("chat", status=None, stall_s=30.0, times=1)
    )
    names = ("greeting_reply", "need", "hours")
    settings = cascade_settings(provider_timeout_s=0.5)
    run = await run_call(
        [CallerTurn(utterances[n]) for n in names], settings=settings, hangup_wait_s=4.5
    )
    result = run.result

    agent = [t.text for t in run.turns("agent")[1:]]
    assert agent[:2] == [APOLOGY, APOLOGY]
    assert agent[2] == short_reply(utterances["hours"].text)
    # Heard about 0.5 s (endpointing) + 0.5 s (timeout) after the caller stopped talking.
    for turn in result.turns[:2]:
        assert turn.reply_ms is not None and 850 <= turn.reply_ms <= 1500, turn.reply_ms
    assert result.turns[2].reply_ms is not None and result.turns[2].reply_ms < 850
    # The stalled reply's first word was never spoken nor kept.
    assert not [r for r in standin.recorded("speech") if r.body["input"] == "I"]
    assert [
        message_text(m)
        for m in standin.recorded("chat")[-1].body["messages"]
        if m["role"] == "assistant"
    ][-1] == APOLOGY
    assert metric(run.metrics, ERRORS, stage="stt") == 1.0
    assert metric(run.metrics, ERRORS, stage="llm") == 1.0


async def test_a_stall_after_a_spoken_sentence_keeps_it_and_a_failed_goodbye_still_hangs_up(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    """Turn one: the model says a sentence, calls a tool it does not have, and its next
    round stalls. Turn two: it ends the call without words and the goodbye's TTS fails."""

    def responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        if messages[-1]["role"] == "tool":
            return Reply("All right, it is free.")
        if messages[-1]["content"] == utterances["need"].text:
            standin.fail("chat", status=None, stall_s=30.0, times=1)  # the round after the tool
            return Reply("Let me check the calendar.", (ScriptedToolCall("check_calendar"),))
        standin.fail("speech", times=1)
        return Reply("", (ScriptedToolCall("end_call"),))

    standin.responder = responder
    settings = cascade_settings(provider_timeout_s=0.5)
    turns = [CallerTurn(utterances["need"]), CallerTurn(utterances["goodbye"])]
    run = await run_call(turns, settings=settings, hangup_wait_s=5.0)
    result = run.result

    # What was said before the stall is kept, with no apology after it.
    agent = run.turns("agent")
    assert agent[1].text == "Let me check the calendar." and not agent[1].interrupted
    assert _heard_whole(result.replies[1], "Let me check the calendar.")
    chat = standin.recorded("chat")
    assert len(chat) == 3
    assert chat[1].body["messages"][-1]["role"] == "tool"
    said = [message_text(m) for m in chat[2].body["messages"] if m["role"] == "assistant"]
    assert said[-1] == "Let me check the calendar."
    # (The recovery phrases are synthesised at start-up, so the caller's side is what counts.)
    assert APOLOGY not in [t.text for t in run.turns("agent")]
    assert not _heard_whole(result.replies[1], "Let me check the calendar.", APOLOGY)

    # The goodbye could not be synthesised: the agent hangs up all the same.
    assert result.ended_by_server
    assert run.stored.end_reason == "agent-hangup"
    assert len(agent) == 2  # nothing claims the unspoken goodbye was said
    assert metric(run.metrics, ERRORS, stage="llm") == 1.0
    assert metric(run.metrics, ERRORS, stage="tts") == 1.0
