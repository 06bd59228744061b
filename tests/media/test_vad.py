from __future__ import annotations

import numpy as np
import pytest

from loadtest.fixtures import Utterance
from media import mulaw
from media.vad import VoiceActivity

FRAME = 160  # 20 ms at 8 kHz


def speech_frames(utterance: Utterance) -> np.ndarray:
    """The fixture's 20 ms frames that lie wholly inside the true speech span."""
    pcm = mulaw.decode(utterance.audio)
    first = -(-utterance.onset_ms * 8 // FRAME)
    last = utterance.end_ms * 8 // FRAME
    return pcm[first * FRAME : last * FRAME].reshape(-1, FRAME)


def test_line_noise_is_not_speech(utterances: list[Utterance]) -> None:
    vad = VoiceActivity()
    pcm = mulaw.decode(utterances[0].audio)
    frames_before_speech = utterances[0].onset_ms * 8 // FRAME - 1
    leading = pcm[: frames_before_speech * FRAME].reshape(-1, FRAME)
    # WebRTC's VAD needs a few frames to learn the noise; give it 100 ms.
    assert not any(vad.is_speech(frame) for frame in leading[5:])


def test_most_speech_frames_are_speech(utterances: list[Utterance]) -> None:
    vad = VoiceActivity()
    for utterance in utterances:
        frames = speech_frames(utterance)
        voiced = sum(vad.is_speech(frame) for frame in frames)
        # Pauses between words and sentences are inside the span too.
        assert voiced >= 0.65 * len(frames), utterance.id


def test_bytes_and_array_frames_agree(utterances: list[Utterance]) -> None:
    as_array = VoiceActivity()
    as_bytes = VoiceActivity()
    frames = mulaw.decode(utterances[1].audio)[: 100 * FRAME].reshape(-1, FRAME)
    array_votes = [as_array.is_speech(frame) for frame in frames]
    assert array_votes == [as_bytes.is_speech(frame.tobytes()) for frame in frames]
    assert any(array_votes) and not all(array_votes)


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_every_frame_length_is_accepted(frame_ms: int, utterances: list[Utterance]) -> None:
    vad = VoiceActivity()
    samples = 8 * frame_ms
    pcm = speech_frames(utterances[1]).ravel()
    votes = [vad.is_speech(pcm[i : i + samples]) for i in range(0, 40 * samples, samples)]
    assert sum(votes) >= 30


def test_the_whole_frame_is_classified_not_just_its_first_half(
    utterances: list[Utterance],
) -> None:
    # A frame whose first half is silence and second half speech: webrtcvad's own
    # wrapper, given an int16 array, would look at the silent half only.
    vad = VoiceActivity()
    speech = speech_frames(utterances[1]).ravel()
    votes = []
    for i in range(0, 50 * FRAME, FRAME):
        frame = np.concatenate([np.zeros(FRAME // 2, np.int16), speech[i : i + FRAME // 2]])
        votes.append(vad.is_speech(frame))
    assert sum(votes) >= 25


def test_quiet_frames_are_gated_unless_the_gate_is_off(utterances: list[Utterance]) -> None:
    speech = speech_frames(utterances[1])
    # 30 dB down puts the speech near -60 dBFS, under the default -50 dBFS floor.
    quiet = (speech.astype(np.float32) * 10 ** (-30 / 20)).astype(np.int16)
    gated, ungated = VoiceActivity(), VoiceActivity(min_level_dbfs=None)
    gated_votes = sum(gated.is_speech(frame) for frame in quiet)
    ungated_votes = sum(ungated.is_speech(frame) for frame in quiet)
    assert gated_votes <= 0.1 * len(quiet)
    assert ungated_votes >= 0.4 * len(quiet)


@pytest.mark.parametrize("aggressiveness", [-1, 4, True, 2.5])
def test_rejects_bad_aggressiveness(aggressiveness: object) -> None:
    with pytest.raises(ValueError, match="aggressiveness must be 0, 1, 2 or 3"):
        VoiceActivity(aggressiveness=aggressiveness)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [0, 11025, 22050, 44100])
def test_rejects_bad_sample_rate(rate: int) -> None:
    with pytest.raises(ValueError, match="sample_rate must be one of"):
        VoiceActivity(sample_rate=rate)


@pytest.mark.parametrize("level", [1.0, -97.0])
def test_rejects_bad_level_floor(level: float) -> None:
    with pytest.raises(ValueError, match="min_level_dbfs"):
        VoiceActivity(min_level_dbfs=level)


@pytest.mark.parametrize(
    "frame",
    [b"", b"\x00" * 100, b"\x00" * 321, np.zeros(100, np.int16), np.zeros(80, np.float32)],
)
def test_rejects_frames_of_the_wrong_size_or_type(frame: object) -> None:
    with pytest.raises(ValueError, match="frame"):
        VoiceActivity().is_speech(frame)  # type: ignore[arg-type]


def test_rejects_non_contiguous_arrays() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        VoiceActivity().is_speech(np.zeros(2 * FRAME, np.int16)[::2])


def test_frame_bytes_and_properties() -> None:
    vad = VoiceActivity(aggressiveness=3, sample_rate=16000)
    assert (vad.aggressiveness, vad.sample_rate) == (3, 16000)
    assert [vad.frame_bytes(ms) for ms in (10, 20, 30)] == [320, 640, 960]
    with pytest.raises(ValueError, match="frame_ms"):
        vad.frame_bytes(25)
