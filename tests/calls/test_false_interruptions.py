"""Interruptions that are not (#18), in whole calls over the real media websocket on the
cascade pipeline (OpenAI stand-in): a backchannel or a wordless sound over the agent
clears the line at once but resumes the reply where it stopped; words still take the turn.

The caller audio is the committed mu-law fixtures (loadtest/fixtures: "uh_huh", "okay",
"hum", made with the bundled Piper voice by make_fixtures.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import Reply, StandinOpenAI, message_text
from prompts import TurnTaking
from tests.calls.cascade_support import CallRun, FixtureTranscriber, call_runner, line_bytes
from voice_agent.conversation.speaker import CHUNK_BYTES
from voice_agent.conversation.turn_end import is_backchannel
from voice_agent.settings import Settings

#: About six seconds of agent speech, so the caller can talk over the middle of it.
LONG = (
    "Thanks for calling about the roof.",
    "We send a roofer out to look at the damage first.",
    "After that you get a written quote within two days.",
)
BARGE_AFTER_MS = 1500


def _long_responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
    said = message_text(messages[-1]) if messages[-1].get("role") == "user" else ""
    if "wait" in said.lower():
        return Reply("Of course, take your time.")
    return Reply(" ".join(LONG))


async def _call(
    settings: Settings, turns: list[CallerTurn], taking: TurnTaking | None = None
) -> CallRun:
    return await call_runner(lambda: settings)(turns, hangup_wait_s=8.0, turn_taking=taking)


def _resumed_at(before: bytes, after: bytes) -> int:
    """Where in the audio sent before the clear the resumed audio starts, or -1 if it is
    not a continuation of it (pieces are cut where TTS yielded them, so any offset)."""
    return before.find(after[:CHUNK_BYTES])


@pytest.mark.parametrize("sound", ["uh_huh", "okay", "hum"])
async def test_a_backchannel_or_a_sound_resumes_the_agent_where_it_stopped(
    sound: str,
    standin: StandinOpenAI,
    transcriber: FixtureTranscriber,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
) -> None:
    standin.responder = _long_responder
    turns = [
        CallerTurn(utterances["need"]),
        CallerTurn(utterances[sound], barge_in_after_ms=BARGE_AFTER_MS),
    ]
    run = await _call(cascade_settings(), turns)
    result = run.result

    # The line was cleared once, as fast as for any barge-in ...
    assert result.clears == 1
    assert result.turns[1].clear_ms is not None and result.turns[1].clear_ms < 250
    # ... and the reply went on: the sound was heard and judged, never answered.
    assert transcriber.heard[-1] == [sound]
    assert len(standin.recorded("chat")) == 1
    agent = run.turns("agent")
    assert [t.interrupted for t in agent] == [False, False]
    assert agent[1].text == " ".join(LONG)
    assert [t.role for t in run.stored.turns] == ["agent", "caller", "agent"]

    # Resumed from where the caller stopped hearing it, not from the start: the audio
    # after the clear continues the audio before it, from past the barge-in point.
    before, after = bytes(result.replies[1]), bytes(result.replies[2])
    at = _resumed_at(before, after)
    assert at >= (BARGE_AFTER_MS - 200) * 8
    # Between what played before and what came after, the whole reply, with at most the
    # ~160 ms chunk under way at the clear said twice.
    whole = sum(line_bytes(s) for s in LONG)
    assert abs(at + len(after) - whole) <= 2 * CHUNK_BYTES
    assert result.unplayed_at_close == 0


async def test_words_over_the_agent_still_interrupt_it(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
) -> None:
    standin.responder = _long_responder
    turns = [
        CallerTurn(utterances["need"]),
        CallerTurn(utterances["interrupt"], barge_in_after_ms=BARGE_AFTER_MS),
    ]
    run = await _call(cascade_settings(), turns)

    assert run.result.clears == 1 and run.result.turns[1].clear_ms is not None
    agent = run.turns("agent")
    assert [t.interrupted for t in agent] == [False, True, False]
    assert agent[1].text.endswith("…") and len(agent[1].text) < len(" ".join(LONG))
    assert agent[2].text == "Of course, take your time."
    # Nothing of the held reply was sent after the clear: the next audio is the answer.
    assert len(run.result.replies) == 3
    assert len(run.result.replies[2]) == pytest.approx(
        line_bytes("Of course, take your time."), abs=2 * CHUNK_BYTES
    )
    # The interruption was transcribed once, to judge it, and that is the turn's text.
    assert [message_text(m) for m in standin.recorded("chat")[1].body["messages"]][-1] == (
        utterances["interrupt"].text
    )


async def test_with_resume_off_a_backchannel_interrupts_as_before(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
) -> None:
    standin.responder = _long_responder
    turns = [
        CallerTurn(utterances["need"]),
        CallerTurn(utterances["uh_huh"], barge_in_after_ms=BARGE_AFTER_MS),
    ]
    run = await _call(cascade_settings(), turns, TurnTaking(resume_on_backchannel=False))

    agent = run.turns("agent")
    assert agent[1].interrupted
    assert run.result.clears == 1
    assert len(standin.recorded("chat")) == 2  # "Uh-huh." was answered as a turn


async def test_a_failed_transcript_of_the_sound_counts_as_an_interruption(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
) -> None:
    standin.responder = _long_responder
    turns = [
        CallerTurn(utterances["need"]),
        CallerTurn(utterances["uh_huh"], barge_in_after_ms=BARGE_AFTER_MS),
    ]
    # The first transcription (the caller's turn) works; every later one fails.
    async with standin_failing_after(standin, 1):
        run = await _call(cascade_settings(), turns)

    agent = run.turns("agent")
    # Not known to be a backchannel: stopped where it was heard, like any barge-in, and
    # the turn (whose transcript fails again) is apologised for, not answered.
    assert agent[1].interrupted and agent[1].text.endswith("…")
    assert len(standin.recorded("chat")) == 1
    assert standin.faults["transcriptions"] >= 1


class standin_failing_after:
    """Make the stand-in's transcriptions fail once `ok` of them have succeeded."""

    def __init__(self, standin: StandinOpenAI, ok: int) -> None:
        self._standin = standin
        self._ok = ok
        self._original = standin.transcriber

    async def __aenter__(self) -> None:
        count = 0
        original = self._original
        standin = self._standin

        def transcribe(wav: bytes) -> str:
            nonlocal count
            count += 1
            if count >= self._ok:
                standin.fail("transcriptions", status=500)
            return original(wav)

        standin.transcriber = transcribe

    async def __aexit__(self, *exc: object) -> None:
        self._standin.transcriber = self._original
        self._standin.clear_failures()


def test_what_counts_as_a_backchannel() -> None:
    for text in (
        "",
        "Uh-huh.",
        "uh huh",
        "Mm-hmm.",
        "Yeah.",
        "Okay.",
        "Right, right.",
        "Yeah, okay.",
        "I see.",
        "Got it.",
        "Hmm.",
    ):
        assert is_backchannel(text), text
    for text in (
        "Sorry, wait a second.",
        "No.",
        "Yes.",
        "Wait.",
        "Okay, but what about Tuesday?",
        "I",
        "it",
        "Yeah yeah yeah yeah yeah",
    ):
        assert not is_backchannel(text), text
