"""Barge-in on the realtime pipeline: the caller talks over the model's reply, the line is
cleared and the model is told, with `conversation.item.truncate`, how much was heard, in
milliseconds known from the marks Twilio echoed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.realtime_server import StandinRealtime
from tests.calls.cascade_support import RunCall
from voice_agent.settings import Settings

BARGE_AFTER_MS = 700.0
#: Mark granularity (one per 100 ms delta) plus a frame of scheduling either way.
_SLACK_MS = 140.0


@pytest.mark.parametrize("who", ["server", "local"])
async def test_barge_in_clears_and_truncates_to_what_was_heard(
    who: str,
    realtime: StandinRealtime,
    run_call: RunCall,
    realtime_settings: Callable[..., Settings],
    utterances: dict[str, Utterance],
) -> None:
    interrupt = utterances["interrupt"]
    turns = [
        CallerTurn(utterances["need"]),
        CallerTurn(interrupt, barge_in_after_ms=BARGE_AFTER_MS),
        CallerTurn(utterances["goodbye"]),
    ]
    run = await run_call(turns, settings=realtime_settings(realtime_barge_in=who))
    result, stored = run.result, run.stored
    (session,) = realtime.sessions
    turn_detection = session.session["audio"]["input"]["turn_detection"]
    # With our VAD deciding, the model must not cancel on its own.
    assert turn_detection["interrupt_response"] is (who == "server")

    # One clear, soon after the caller's speech began.
    barge = result.turns[1]
    assert result.clears == 1 and barge.clear_ms is not None
    assert barge.clear_ms < 400.0, barge.clear_ms

    # One truncate of the reply that was playing, to the ms played by the marks echoed
    # before the clear: the caller began BARGE_AFTER_MS into it, and speech counts from
    # its onset after a VAD's start window.
    (cut,) = session.truncations
    assert cut.audio_end_ms <= cut.audio_ms
    played_at_onset = BARGE_AFTER_MS + interrupt.onset_ms
    assert played_at_onset - _SLACK_MS <= cut.audio_end_ms <= played_at_onset + 300.0, cut
    assert "conversation.item.truncate" in session.received
    if who == "local":
        assert "response.cancel" in session.received or session.cancelled == 0

    # The transcript keeps the reply as heard, cut short, and the caller's words after it.
    (agent_cut,) = [t for t in stored.turns if t.interrupted]
    assert agent_cut.role == "agent" and agent_cut.text.endswith("…")
    after = stored.turns[stored.turns.index(agent_cut) + 1]
    assert after.role == "caller" and after.text == interrupt.text
    # No audio of the cut reply reached the line after the clear.
    clear_at = result.clear_times[0]
    assert not [t for t in result.media_times if clear_at < t < barge.speech_end_at]


async def test_caller_cuts_into_the_greeting(
    realtime: StandinRealtime, run_call: RunCall, utterances: dict[str, Utterance]
) -> None:
    """The greeting is ours (cached audio), not the model's: cutting into it clears the
    line, with nothing to truncate, and the caller's words get the model's answer."""
    turns = [
        CallerTurn(utterances["greeting_reply"], barge_in_after_ms=BARGE_AFTER_MS),
        CallerTurn(utterances["goodbye"]),
    ]
    run = await run_call(turns)
    (session,) = realtime.sessions
    assert run.result.clears == 1 and not session.truncations
    first = run.stored.turns[0]
    assert first.role == "agent" and first.interrupted and first.text.endswith("…")
    assert run.stored.turns[1].role == "caller"
    assert run.stored.turns[1].text == utterances["greeting_reply"].text
    assert run.stored.end_reason == "agent-hangup"
