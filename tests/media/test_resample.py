from __future__ import annotations

import itertools

import numpy as np
import pytest

from media.resample import StreamResampler


def sine(rate: int, seconds: float, hz: float = 440.0, amplitude: float = 10000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.round(amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def run_chunked(resampler: StreamResampler, pcm: np.ndarray, sizes: list[int]) -> np.ndarray:
    out = []
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(pcm):
            break
        out.append(resampler.process(pcm[position : position + size]))
        position += size
    out.append(resampler.flush())
    return np.concatenate(out)


def one_shot(in_rate: int, out_rate: int, pcm: np.ndarray) -> np.ndarray:
    resampler = StreamResampler(in_rate, out_rate)
    return np.concatenate([resampler.process(pcm), resampler.flush()])


ODD_SIZES = [1, 0, 7, 160, 0, 333, 1, 1000, 3, 479]
RATE_PAIRS = [(24000, 8000), (22050, 8000), (8000, 16000)]


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_chunked_output_equals_one_shot(in_rate: int, out_rate: int) -> None:
    pcm = sine(in_rate, 1.0)
    chunked = run_chunked(StreamResampler(in_rate, out_rate), pcm, ODD_SIZES)
    whole = one_shot(in_rate, out_rate, pcm)
    assert chunked.dtype == np.int16
    assert len(chunked) == len(whole)
    # soxr dithers its int16 output, so runs may differ in the last couple of bits.
    assert np.abs(chunked.astype(np.int32) - whole).max() <= 2


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
@pytest.mark.parametrize("seconds", [0.5, 1.0, 1.37])
def test_total_length_follows_the_rate_ratio(in_rate: int, out_rate: int, seconds: float) -> None:
    pcm = sine(in_rate, seconds)
    out = run_chunked(StreamResampler(in_rate, out_rate), pcm, [160, 1, 77])
    assert abs(len(out) - len(pcm) * out_rate / in_rate) <= 1


@pytest.mark.parametrize(("in_rate", "out_rate"), RATE_PAIRS)
def test_no_discontinuity_at_chunk_boundaries(in_rate: int, out_rate: int) -> None:
    hz, amplitude = 300.0, 10000.0
    pcm = sine(in_rate, 1.0, hz, amplitude)
    out = run_chunked(StreamResampler(in_rate, out_rate), pcm, [1, 13, 160, 7]).astype(np.int32)
    # Skip the filter's ramp-in and ramp-out at the ends of the stream.
    edge = out_rate // 50
    body = out[edge:-edge]
    steepest = 2 * np.pi * hz * amplitude / out_rate  # largest step of the ideal sine
    assert np.abs(np.diff(body)).max() <= steepest * 1.05 + 4
    # ... and it is still the sine, at full level.
    assert np.abs(body).max() == pytest.approx(amplitude, rel=0.02)


def test_flush_readies_the_resampler_for_the_next_stream() -> None:
    pcm = sine(24000, 0.3)
    resampler = StreamResampler(24000, 8000)
    first = np.concatenate([resampler.process(pcm), resampler.flush()])
    second = np.concatenate([resampler.process(pcm), resampler.flush()])
    assert len(first) == len(second) == 2400
    assert np.abs(first.astype(np.int32) - second).max() <= 2


def test_reset_drops_held_samples() -> None:
    pcm = sine(24000, 0.3)
    resampler = StreamResampler(24000, 8000)
    resampler.process(sine(24000, 0.1, hz=1000.0))
    resampler.reset()
    after_reset = np.concatenate([resampler.process(pcm), resampler.flush()])
    fresh = one_shot(24000, 8000, pcm)
    assert len(after_reset) == len(fresh)
    assert np.abs(after_reset.astype(np.int32) - fresh).max() <= 2


def test_same_rate_passes_samples_through() -> None:
    pcm = sine(8000, 0.1)
    resampler = StreamResampler(8000, 8000)
    assert resampler.process(pcm) is pcm
    assert len(resampler.flush()) == 0
    assert (resampler.in_rate, resampler.out_rate) == (8000, 8000)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(0, 8000), (8000, 0), (-1, 8000)])
def test_rejects_non_positive_rates(in_rate: int, out_rate: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(in_rate, out_rate)


@pytest.mark.parametrize("pcm", [np.zeros(10, dtype=np.float32), np.zeros((10, 1), dtype=np.int16)])
def test_rejects_other_than_1d_int16(pcm: np.ndarray) -> None:
    with pytest.raises(ValueError, match="1-D int16"):
        StreamResampler(24000, 8000).process(pcm)
