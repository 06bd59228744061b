"""Offline speech as the last resort, on whole cascade calls: the OpenAI stand-in answers
500 to every transcription and speech request mid-call, there is no second OpenAI-compatible
provider, and the bundled Whisper and Piper take over (FALLBACK_OFFLINE_SPEECH); once the
stand-in is well again and the breakers let a trial through, the call is back on it.

The caller's turns are the real recorded mu-law fixtures, so "understood" means the
bundled Whisper heard their words."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import Reply, StandinOpenAI
from tests.calls.cascade_support import (
    FixtureTranscriber,
    RunCall,
    echo,
    last_user_text,
    line_bytes,
    short_reply,
    short_responder,
)
from voice_agent.conversation.session import APOLOGY, HOLD_ON
from voice_agent.settings import Settings

#: The caller waits this long in silence before its next turn, so a slow offline reply is
#: heard rather than talked over.
PATIENT_MS = 4000.0


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _understood(heard: str, said: str) -> bool:
    """Whisper's words for a recorded turn: all but one of what was said."""
    words = _words(heard)
    expected = _words(said)
    return sum(1 for word in expected if word in words) >= len(expected) - 1


async def test_stt_and_tts_down_the_call_goes_on_offline_and_comes_back(
    standin: StandinOpenAI,
    transcriber: FixtureTranscriber,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    """From the first caller turn on, every transcription and speech request fails (the
    stand-in's chat still answers, echoing what it is told the caller said). Turn one:
    its reply is spoken by Piper. Turns two and three: heard by Whisper, spoken by Piper,
    no apology. Before turn four the stand-in recovers: with the breakers' open time
    past, turn four is heard and spoken by the stand-in again."""
    chats = 0
    armed = False

    def transcribe(wav: bytes) -> str:
        nonlocal armed
        if not armed:  # the first turn, after start-up cached the fixed phrases
            armed = True
            standin.fail("transcriptions")
            standin.fail("speech")
        return transcriber(wav)

    def responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
        nonlocal chats
        chats += 1
        if chats == 3:  # turn three is answered: the stand-in is well again
            standin.clear_failures()
        return short_responder(messages, tools)

    standin.transcriber = transcribe
    standin.responder = responder
    settings = cascade_settings(
        fallback_offline_speech=True,
        provider_breaker_failures=2,
        # Short, so the breakers half-open within the call and the trial finds it well.
        provider_breaker_open_s=2.0,
    )
    # Turn four's "five thousand dollars" is the one Whisper writes "$5,000": it is
    # heard by the stand-in, once that is back.
    names = ("need", "hours", "timing", "budget")
    turns = [CallerTurn(utterances[names[0]])] + [
        CallerTurn(utterances[n], pause_ms=PATIENT_MS) for n in names[1:]
    ]
    run = await run_call(turns, settings=settings, hangup_wait_s=8.0, reply_timeout_s=20.0)
    result = run.result

    # The figures for docs/reliability-faults.md (pytest -s).
    print(
        "offline last resort: reply ms", [t.reply_ms for t in result.turns], "gaps", result.gaps_ms
    )
    user = [t.text for t in run.turns("caller")]
    agent = [t.text for t in run.turns("agent")[1:]]
    assert len(user) == 4 and len(agent) == 4, (user, agent)
    assert APOLOGY not in agent
    # Turn one was heard by the stand-in (the fault armed during it): its exact text.
    assert user[0] == utterances["need"].text
    # Turns two and three: the stand-in refused them; the bundled Whisper understood.
    for index in (1, 2):
        assert _understood(user[index], utterances[names[index]].text), user[index]
    # The model answered what was understood, and the caller heard every answer spoken.
    for index, text in enumerate(agent):
        assert text == short_reply(user[index]), (index, text)
        if index in (1, 2):
            said = _words(utterances[names[index]].text)
            assert set(_words(echo(user[index]))) <= set(said) | {"nothing", "yet"}
    for index in range(4):
        heard = result.replies[index + 1]
        # At least two thirds of the stand-in voice's length: Piper's pace differs.
        assert len(heard) >= line_bytes(agent[index]) * 2 // 3, (index, len(heard))
        reply_ms = result.turns[index].reply_ms
        assert reply_ms is not None and reply_ms <= 3000, (index, reply_ms)
    assert all(gap < 3000 for gap in result.gaps_ms), result.gaps_ms
    # Turn four: back on the stand-in, heard by it (its exact fixture text) and spoken
    # by its voice (the stand-in's length for the reply, sentence by sentence).
    assert user[3] == utterances["budget"].text
    expected = sum(line_bytes(s) for s in re.split(r"(?<=[.!?])\s+", agent[3]))
    heard = result.replies[4]
    extra = line_bytes(HOLD_ON) + 60 if HOLD_ON in [t.text for t in run.turns("event")] else 60
    assert abs(len(heard) - expected) <= extra, (len(heard), expected)
    # The stand-in was asked again after recovering: one transcription, two sentences.
    assert transcriber.heard[-1] == ["budget"]
    assert standin.faults["transcriptions"] >= 2 and standin.faults["speech"] >= 2
    assert last_user_text(standin.recorded("chat")[-1].body["messages"]) == user[3]

    # Metered under the models that did the work: the offline turns cost nothing, and the
    # stand-in's are billed as its models. Turn one's words went to the stand-in (and turn
    # four's), turns two and three to Whisper; Piper spoke turns one and two, and the
    # stand-in turn four (turn three's sentences go to whichever the breakers allow).
    def metered(meter: str, model: str) -> float:
        return sum(r.quantity for r in run.usage if (r.meter, r.model) == (meter, model))

    def characters(reply: str) -> int:  # as metered: sentence by sentence
        return sum(len(s) for s in re.split(r"(?<=[.!?])\s+", reply))

    offline_stt, offline_tts = "offline:whisper-tiny.en", "offline:piper"
    assert {r.model for r in run.usage if r.meter == "stt_seconds"} == {
        settings.stt_model,
        offline_stt,
    }
    assert metered("stt_seconds", settings.stt_model) > 0
    assert metered("stt_seconds", offline_stt) > 0
    assert {r.model for r in run.usage if r.meter == "tts_characters"} == {
        settings.tts_model,
        offline_tts,
    }
    by_piper = metered("tts_characters", offline_tts)
    by_standin = metered("tts_characters", settings.tts_model)
    assert by_piper + by_standin == sum(characters(text) for text in agent)
    assert by_piper >= characters(agent[0]) + characters(agent[1])
    assert by_standin >= characters(agent[3])
