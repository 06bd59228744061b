"""G.711 mu-law, the codec of Twilio Media Streams, as table lookups.

Decoding uses the 256-entry G.711 expansion table. Encoding goes through a 65 536-entry
table indexed by the int16 sample's bit pattern, so one ``take`` converts a whole frame
with no shifting or masking temporaries.

G.711 defines mu-law on 14-bit uniform PCM; an int16 sample is reduced to 14 bits by an
arithmetic shift right by two before sign and magnitude are split. That is the rule
CPython's ``audioop.lin2ulaw`` (and its ``audioop-lts`` fork) follows, so the bytes we
send are the ones any audioop-based tool would produce for the same samples.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DECODE_TABLE", "ENCODE_TABLE", "decode", "encode"]

_BIAS = 33  # the 14-bit G.711 bias (0x84 >> 2)
_TOP = 0x1FFF  # largest biased magnitude: segment 7, mantissa 15
# Largest biased 14-bit magnitude of each of the eight segments.
_SEGMENT_TOPS = np.array([(64 << s) - 1 for s in range(8)], dtype=np.int32)


def _build_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32)
    inverted = ~codes & 0xFF  # mu-law transmits every bit inverted
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    values = np.where(inverted & 0x80, -magnitude, magnitude)
    table = values.astype(np.int16)
    table.flags.writeable = False
    return table


def _build_encode_table() -> np.ndarray:
    samples = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    reduced = samples >> 2
    negative = reduced < 0
    biased = np.minimum(np.abs(reduced) + _BIAS, _TOP)
    segment = np.searchsorted(_SEGMENT_TOPS, biased, side="left")
    mantissa = (biased >> (segment + 1)) & 0x0F
    code = (segment << 4) | mantissa
    table = (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8)
    table.flags.writeable = False
    return table


DECODE_TABLE: np.ndarray = _build_decode_table()
"""int16 sample for each of the 256 mu-law codes."""

ENCODE_TABLE: np.ndarray = _build_encode_table()
"""mu-law code for each int16 sample, indexed by the sample viewed as uint16."""


def decode(ulaw: bytes | bytearray | memoryview) -> np.ndarray:
    """Expand mu-law bytes into a new int16 array of the same length."""
    return DECODE_TABLE.take(np.frombuffer(ulaw, dtype=np.uint8))


def encode(pcm: np.ndarray) -> bytes:
    """Compress int16 samples into mu-law bytes, one byte per sample."""
    if pcm.dtype != np.int16:
        raise TypeError(f"mu-law encoding takes int16 samples, got {pcm.dtype}")
    # A same-size view reinterprets the bits without copying, even for a strided array.
    return ENCODE_TABLE.take(pcm.view(np.uint16)).tobytes()
