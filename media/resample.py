"""Streaming sample-rate conversion that keeps its filter state between chunks.

Audio arrives in pieces (TTS chunks, 20 ms telephone frames), and resampling each piece
on its own would restart the filter every time: clicks at every boundary and lengths
that drift. One ``StreamResampler`` per direction per call avoids both.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import soxr

__all__ = ["StreamResampler"]

Quality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]

_EMPTY = np.zeros(0, dtype=np.int16)
_EMPTY.flags.writeable = False


class StreamResampler:
    """Mono int16 resampler for one continuous stream.

    ``process`` may return fewer samples than the input warrants while the filter fills;
    ``flush`` returns the rest at the end of the stream and readies the resampler for
    the next, unrelated stream.
    """

    __slots__ = ("_in_rate", "_out_rate", "_stream")

    def __init__(self, in_rate: int, out_rate: int, quality: Quality = "HQ") -> None:
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self._in_rate = in_rate
        self._out_rate = out_rate
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)

    @property
    def in_rate(self) -> int:
        return self._in_rate

    @property
    def out_rate(self) -> int:
        return self._out_rate

    def process(self, pcm: np.ndarray) -> np.ndarray:
        """Feed the next mono int16 chunk (any length, even empty); return what is ready."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"expected 1-D int16 samples, got {pcm.dtype} with {pcm.ndim} dims")
        if self._in_rate == self._out_rate:
            return pcm
        return self._stream.resample_chunk(pcm)

    def flush(self) -> np.ndarray:
        """End the stream: return the samples still held in the filter, then start afresh."""
        if self._in_rate == self._out_rate:
            return _EMPTY
        tail = self._stream.resample_chunk(_EMPTY, last=True)
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Drop the held samples without producing them (e.g. the caller barged in)."""
        self._stream.clear()
