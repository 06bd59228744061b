"""Text-aware end of turn (#18) in a whole call over the real websocket, offline pipeline:
a caller reads a phone number in groups with pauses longer than the silence wait.

Each pause is longer than the 500 ms silence wait; with the agent's [turn_taking]
text_aware on, the speculative transcript of "six one seven, five five five" reads as
half a number, the wait stretches, and the number is one turn, answered once."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import soxr

from loadtest.caller import CallerTurn, place_call
from loadtest.fixtures import Utterance
from media import mulaw
from prompts import TurnTaking, parse_agent
from tests.conftest import TWILIO_TOKEN
from voice_agent.conversation.listener import TurnWaits
from voice_agent.conversation.turn_end import judge, question_kind
from voice_agent.demo import running_server
from voice_agent.providers.base import Pipeline
from voice_agent.settings import Settings

ASK = "What's the best phone number to reach you on?"
PIECES = ("My number is six one seven,", "five five five,", "zero one four two.")
PAUSE_MS = 800  # longer than the 500 ms silence wait, shorter than max_wait_ms


def _phone_turn(pipeline: Pipeline) -> Utterance:
    voice = pipeline.tts._ensure_voice()  # type: ignore[attr-defined]
    parts = [np.zeros(2400)]
    for number, text in enumerate(PIECES):
        chunks = list(voice.synthesize(text))
        pcm = np.concatenate([c.audio_int16_array for c in chunks]).astype(np.float32)
        audio = soxr.resample(pcm, chunks[0].sample_rate, 8000)
        loud = np.nonzero(np.abs(audio) > 0.01 * np.abs(audio).max())[0]
        audio = audio[loud[0] : loud[-1] + 1] * (16000 / np.abs(audio).max())
        if number:
            parts.append(np.zeros(8 * PAUSE_MS))
        parts.append(audio)
    end = sum(len(p) for p in parts)
    parts.append(np.zeros(8 * 600 + (-(end + 8 * 600) % 160)))
    rng = np.random.default_rng(18)
    noisy = np.concatenate(parts) + rng.normal(0, 30, sum(len(p) for p in parts))
    ulaw = mulaw.encode(np.clip(noisy, -32768, 32767).astype(np.int16))
    return Utterance("phone", " ".join(PIECES), ulaw, len(ulaw) // 8, 300, end // 8)


async def _call(
    pipeline: Pipeline, settings: Settings, taking: TurnTaking
) -> tuple[list[str], list[Any]]:
    async with running_server(settings, pipeline=pipeline) as runtime:
        agent = runtime.default_agent
        runtime.agents[agent.slug] = replace(agent, greeting=ASK, turn_taking=taking)
        await runtime.phrases.get(ASK, agent.voice)
        result = await place_call(
            settings.public_base_url,
            [CallerTurn(_phone_turn(pipeline))],
            auth_token=TWILIO_TOKEN,
            hangup_wait_s=15.0,
        )
        assert result.error is None
        assert await runtime.writes.flush(5.0)
        stored = await runtime.calls.get_call(result.call_sid)
    assert stored is not None
    agent = [t for t in stored.turns if t.role == "agent"]
    return [t.text for t in stored.turns if t.role == "caller"], agent


def _digits(text: str) -> int:
    return len(re.findall(r"\d", text))


async def test_a_number_read_in_groups_is_one_turn_when_text_aware(
    offline_pipeline: Pipeline, make_settings: Callable[..., Settings]
) -> None:
    taking = TurnTaking(text_aware=True, min_wait_ms=250, max_wait_ms=1500)
    heard, agent = await _call(offline_pipeline, make_settings(), taking)
    assert len(heard) == 1, heard
    assert _digits(heard[0]) >= 10, heard
    # One answer, never started and abandoned at a pause in the number.
    assert not [t for t in agent if t.interrupted]


def test_the_question_sets_what_a_finished_answer_is() -> None:
    phone = question_kind(ASK)
    assert phone == "phone"
    assert judge("My number is 617, 555.", phone) == "incomplete"
    assert judge("My number is 617-555-0142.", phone) == "complete"
    assert judge("We want to redo the kitchen and", "open") == "incomplete"
    assert judge("Um.", "open") == "incomplete"
    assert judge("Do you work on weekends?", "open") == "complete"
    assert judge("It's john dot smith at", "email") == "incomplete"
    assert judge("It's john.smith@gmail.com.", "email") == "complete"
    assert judge("42 Oak Street,", "address") == "incomplete"
    assert judge("42 Oak Street, Springfield.", "address") == "complete"
    name = question_kind("Thanks for calling. Who am I speaking with?")
    assert judge("Sarah Johnson.", name) == "complete"
    yes_no = question_kind("Would you like me to connect you now?")
    assert judge("Yes, please.", yes_no) == "complete"
    assert judge("Hmm, let me think.", yes_no) == "incomplete"
    # A finished sentence to an open question, or a bare "yes": perhaps the first of
    # several, so neither the short wait nor the silence one (see TurnWaits.wait_for).
    assert judge("There's a leak under the sink.", "open") == "likely"
    assert judge("Yes.", yes_no) == "likely"
    assert judge("Kitchen", "open") == "unsure"


def test_each_verdict_has_its_wait() -> None:
    waits = TurnWaits(100, 200, 1500, 1100)
    assert [waits.wait_for(v, 1000) for v in ("complete", "incomplete", "likely", "unsure")] == [
        200,
        1500,
        1100,
        1000,
    ]
    assert TurnWaits(100, 200, 1500, 0).wait_for("likely", 1000) == 1000


def test_turn_taking_settings_are_read_and_checked_from_the_agent_toml() -> None:
    base = (
        'slug = "tt"\nname = "T"\ndirection = "inbound"\npersona = "p"\nsystem_prompt = "s"\n'
        'greeting = "g"\ngoodbye = "b"\nfallback = "f"\ntools = ["end_call"]\n'
    )
    agent = parse_agent(base + "[turn_taking]\ntext_aware = true\nmax_wait_ms = 1200\n")
    assert agent.turn_taking == TurnTaking(text_aware=True, max_wait_ms=1200)
    assert parse_agent(base).turn_taking == TurnTaking()
    with pytest.raises(ValueError, match=r"turn_taking\.min_wait_ms"):
        parse_agent(base + "[turn_taking]\nmin_wait_ms = 2000\nmax_wait_ms = 1000\n")
    with pytest.raises(ValueError, match=r"turn_taking\.speculation_ms"):
        parse_agent(base + "[turn_taking]\nspeculation_ms = 5\n")
    flags = parse_agent(
        base + "[turn_taking]\nresume_on_backchannel = false\nearly_llm = false\n"
        "likely_wait_ms = 900\n"
    ).turn_taking
    assert flags == TurnTaking(resume_on_backchannel=False, early_llm=False, likely_wait_ms=900)
    with pytest.raises(ValueError, match=r"turn_taking\.resume_on_backchannel"):
        parse_agent(base + "[turn_taking]\nresume_on_backchannel = 1\n")
    with pytest.raises(ValueError, match=r"turn_taking\.likely_wait_ms"):
        parse_agent(base + "[turn_taking]\nlikely_wait_ms = -1\n")


def _replay(
    turn_id: str, verdict_wait_ms: int | None, adaptive: bool = True
) -> tuple[list[float], list[int]]:
    """Feed one benchmark turn through a Listener on a simulated clock; every pause's
    verdict (if any) comes back 300 ms later. Ends (ms) and pauses offered."""
    from loadtest.turns.bench import load_turns
    from voice_agent.conversation.listener import Listener, PausedSpeech

    turn = next(t for t in load_turns() if t.id == turn_id)
    now = [0.0]
    ends: list[float] = []
    offered: list[int] = []
    due: list[tuple[float, int]] = []

    def on_pause(paused: PausedSpeech) -> None:
        offered.append(paused.pause)
        if verdict_wait_ms is not None:
            due.append((now[0] + 0.3, paused.pause))

    listener = Listener(
        lambda _at: None,
        lambda speech: ends.append(now[0] * 1000.0),
        start_ms=120,
        silence_ms=500,
        aggressiveness=2,
        waits=TurnWaits(200, 200, 1500) if verdict_wait_ms is not None else None,
        on_pause=on_pause if verdict_wait_ms is not None else None,
        clock=lambda: now[0],
        adaptive_floor=adaptive,
    )
    for index in range(len(turn.ulaw) // 160):
        now[0] = (index + 1) * 0.02
        listener.push(turn.ulaw[index * 160 : (index + 1) * 160])
        for item in [d for d in due if d[0] <= now[0]]:
            due.remove(item)
            assert verdict_wait_ms is not None
            listener.verdict(item[1], verdict_wait_ms)
    return [e - turn.end_ms for e in ends], offered


def test_verdicts_set_the_wait_of_each_pause() -> None:
    # t000: a phone number in three groups, pauses of 610 and 560 ms.
    silence, _ = _replay("t000", None)
    assert len(silence) == 3  # the 500 ms silence wait cuts at both pauses
    going_on, offered = _replay("t000", 1500)
    assert len(going_on) == 1 and 0 <= going_on[0] <= 1600  # held to the true end
    assert len(offered) >= 3  # a speculation at each pause, and at the end
    finished, _ = _replay("t000", 200)
    assert finished[0] < 0  # "finished" at the first pause: cut there, 500 ms in
    # Clean end with "finished": the speculation pause plus the verdict's 300 ms.
    clean, _ = _replay("t102", 200)
    assert len(clean) == 1 and 0 <= clean[0] <= 600


def test_a_quiet_caller_is_heard_only_with_the_adaptive_floor() -> None:
    # t078: a caller at -30 dBFS peak on a quiet line; the fixed -50 dBFS gate misses it.
    assert _replay("t078", None, adaptive=False)[0] == []
    heard, _ = _replay("t078", None, adaptive=True)
    assert len(heard) == 1 and 0 <= heard[0] <= 700


def test_a_noisy_line_still_ends_the_turn_with_the_adaptive_floor() -> None:
    # t004: -6 dBFS caller, 10 dB SNR line noise that the VAD takes for speech.
    assert _replay("t004", None, adaptive=False)[0] == []  # never ends
    heard, _ = _replay("t004", None, adaptive=True)
    assert heard and heard[-1] >= 0
