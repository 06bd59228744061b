from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile

from media.wav import pcm16_to_wav


def test_mono_round_trip_and_header() -> None:
    pcm = np.arange(-4000, 4000, 7, dtype=np.int16)
    wav = pcm16_to_wav(pcm, 8000)
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
    fmt_tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", wav[20:36])
    assert (fmt_tag, channels, rate, bits) == (1, 1, 8000, 16)
    data, read_rate = soundfile.read(io.BytesIO(wav), dtype="int16")
    assert read_rate == 8000
    assert np.array_equal(data, pcm)


def test_stereo_round_trip() -> None:
    pcm = np.stack([np.arange(100), -np.arange(100)], axis=1).astype(np.int16)
    data, rate = soundfile.read(io.BytesIO(pcm16_to_wav(pcm, 16000)), dtype="int16")
    assert rate == 16000
    assert np.array_equal(data, pcm)


def test_empty_audio_is_a_valid_file() -> None:
    data, _ = soundfile.read(io.BytesIO(pcm16_to_wav(np.zeros(0, np.int16), 8000)))
    assert len(data) == 0


@pytest.mark.parametrize(
    ("pcm", "rate", "message"),
    [
        (np.zeros(10, np.float32), 8000, "int16"),
        (np.zeros((2, 2, 2), np.int16), 8000, "1-D or 2-D"),
        (np.zeros(10, np.int16), 0, "sample_rate"),
    ],
)
def test_rejects_bad_input(pcm: np.ndarray, rate: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pcm16_to_wav(pcm, rate)
