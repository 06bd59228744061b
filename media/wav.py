"""WAV files from PCM samples, for recordings and for STT services that want a file."""

from __future__ import annotations

import io

import numpy as np
import soundfile

__all__ = ["pcm16_to_wav"]


def pcm16_to_wav(pcm: np.ndarray, sample_rate: int) -> bytes:
    """Encode int16 samples (1-D mono, or 2-D frames x channels) as a 16-bit PCM WAV."""
    if pcm.dtype != np.int16:
        raise ValueError(f"expected int16 samples, got {pcm.dtype}")
    if pcm.ndim not in (1, 2):
        raise ValueError(f"expected 1-D or 2-D samples, got {pcm.ndim} dims")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    out = io.BytesIO()
    soundfile.write(out, pcm, sample_rate, format="WAV", subtype="PCM_16")
    return out.getvalue()
