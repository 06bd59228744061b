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
