"""The committed caller utterances, and endpointing measured against their truth."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.fixtures import Utterance, load_script
from media import mulaw
from media.endpoint import SpeechEnded, SpeechStarted

EXPECTED = [
    ("greeting_reply", "Hi, my name is Sarah Johnson."),
    ("need", "I need help with a leaking roof at my house."),
    ("budget", "My budget is about five thousand dollars."),
    ("timing", "Sometime in the next two weeks would be great."),
    ("hours", "What are your opening hours?"),
    ("interrupt", "Sorry, wait a second."),
    ("goodbye", "No thanks, that's all for today. Goodbye."),
    ("uh_huh", "Uh-huh."),
    ("okay", "Okay."),
    ("hum", ""),
]
#: A sentence lasts a second or more; a backchannel or a hum is short but still more
#: than a click.
SENTENCE_MIN_MS = 1000
SOUND_MIN_MS = 250
TOLERANCE_MS = 60
FRAME_MS = 20


def test_script_lists_every_utterance_in_order(utterances: list[Utterance]) -> None:
    assert [(u.id, u.text) for u in utterances] == EXPECTED


@pytest.mark.parametrize("utterance", load_script(), ids=lambda u: u.id)
def test_fixture_is_consistent(utterance: Utterance) -> None:
    assert len(utterance.audio) == utterance.duration_ms * 8
    # 300 ms of padding each side, plus whatever quiet the voice itself adds.
    assert 300 <= utterance.onset_ms < utterance.end_ms <= utterance.duration_ms - 300
    is_sentence = len(utterance.text.split()) >= 3
    assert utterance.end_ms - utterance.onset_ms >= (
        SENTENCE_MIN_MS if is_sentence else SOUND_MIN_MS
    )


@pytest.mark.parametrize("utterance", load_script(), ids=lambda u: u.id)
def test_padding_carries_line_noise(utterance: Utterance) -> None:
    lead = mulaw.decode(utterance.audio[: 250 * 8]).astype(np.float64)
    level = 20 * np.log10(np.sqrt(np.mean(lead**2)) / 32768)
    assert -60 < level < -50


@pytest.mark.parametrize("utterance", load_script(), ids=lambda u: u.id)
def test_endpointing_finds_the_true_speech_bounds(utterance: Utterance, detect_turns) -> None:  # type: ignore[no-untyped-def]
    events = detect_turns(utterance.audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded], events
    started, ended = events
    assert isinstance(ended, SpeechEnded)
    assert started.onset_frame == ended.onset_frame
    assert abs(ended.onset_frame * FRAME_MS - utterance.onset_ms) <= TOLERANCE_MS
    assert abs(ended.end_frame * FRAME_MS - utterance.end_ms) <= TOLERANCE_MS


def test_all_utterances_back_to_back_give_one_turn_each(
    utterances: list[Utterance], detect_turns
) -> None:  # type: ignore[no-untyped-def]
    call = b"".join(u.audio for u in utterances)
    events = detect_turns(call)
    assert len(events) == 2 * len(utterances)
    offset_ms = 0
    for utterance, ended in zip(utterances, events[1::2], strict=True):
        assert isinstance(ended, SpeechEnded)
        assert abs(ended.onset_frame * FRAME_MS - (offset_ms + utterance.onset_ms)) <= 60
        assert abs(ended.end_frame * FRAME_MS - (offset_ms + utterance.end_ms)) <= 60
        offset_ms += utterance.duration_ms
