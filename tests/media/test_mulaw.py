from __future__ import annotations

import bisect
import importlib
import warnings

import numpy as np
import pytest

from media import mulaw

ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def reference_expand(code: int) -> int:
    """G.711 mu-law expansion from the standard's interval description: the code is sent
    inverted; segment s has 16 intervals of width 2**(s+1) on the 14-bit magnitude scale;
    the output is the interval's midpoint, scaled from 14 to 16 bits."""
    inverted = code ^ 0xFF
    negative = bool(inverted & 0x80)
    segment = (inverted >> 4) & 7
    mantissa = inverted & 0x0F
    step = 2 << segment
    lower_edge = ((16 + mantissa) << (segment + 1)) - 33
    value = 4 * (lower_edge + step // 2)
    return -value if negative else value


# Lower edge of each of the 128 magnitude intervals on the 14-bit scale, in code order.
_LOWER_EDGES = [((16 + m) << (s + 1)) - 33 for s in range(8) for m in range(16)]


def reference_compress(sample: int) -> int:
    """G.711 mu-law compression by interval search: reduce to 14 bits (arithmetic shift),
    split sign and magnitude, find the interval holding the magnitude, invert the bits."""
    reduced = sample >> 2
    sign_bit = 0x80 if reduced < 0 else 0x00  # before the inversion
    magnitude = min(abs(reduced), 8159)
    index = bisect.bisect_right(_LOWER_EDGES, magnitude) - 1
    return (sign_bit | index) ^ 0xFF


def test_decode_table_matches_reference_for_every_code() -> None:
    decoded = mulaw.decode(ALL_CODES)
    assert decoded.dtype == np.int16
    assert decoded.tolist() == [reference_expand(code) for code in range(256)]


def test_decode_known_values() -> None:
    assert mulaw.decode(b"\x00\x80\xff\x7f").tolist() == [-32124, 32124, 0, 0]


def test_every_int16_encodes_like_the_reference() -> None:
    encoded = mulaw.encode(ALL_SAMPLES)
    expected = bytes(reference_compress(int(sample)) for sample in ALL_SAMPLES)
    assert encoded == expected


def _audioop():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:
            pytest.skip("neither stdlib audioop nor audioop-lts is importable")


def test_matches_audioop_bit_for_bit() -> None:
    audioop = _audioop()
    assert mulaw.encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES.tobytes(), 2)
    assert mulaw.decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


def test_round_trip_of_all_codes() -> None:
    decoded = mulaw.decode(ALL_CODES)
    reencoded = mulaw.encode(decoded)
    # Two codes mean zero (0x7F is "negative zero"); the encoder writes 0xFF for it.
    expected = bytes(0xFF if code == 0x7F else code for code in range(256))
    assert reencoded == expected
    assert np.array_equal(mulaw.decode(reencoded), decoded)


def test_quantisation_error_is_within_half_a_step() -> None:
    decoded = mulaw.decode(mulaw.encode(ALL_SAMPLES)).astype(np.int32)
    error = np.abs(decoded - ALL_SAMPLES.astype(np.int32))
    clipped = np.abs(ALL_SAMPLES.astype(np.int32)) > 32124 + 512
    # Largest step is 1024 (segment 7); half of it plus the 14-bit truncation.
    assert error[~clipped].max() <= 512 + 4


def test_encode_accepts_a_strided_view_without_copy_semantics_issues() -> None:
    interleaved = np.array([100, -100, 2000, -2000, 30000, -30000], dtype=np.int16)
    assert mulaw.encode(interleaved[::2]) == mulaw.encode(interleaved[::2].copy())


def test_encode_and_decode_empty() -> None:
    assert mulaw.encode(np.zeros(0, dtype=np.int16)) == b""
    assert mulaw.decode(b"").shape == (0,)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    expected = mulaw.decode(ALL_CODES)
    assert np.array_equal(mulaw.decode(bytearray(ALL_CODES)), expected)
    assert np.array_equal(mulaw.decode(memoryview(ALL_CODES)), expected)


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.uint16])
def test_encode_rejects_other_dtypes(dtype: type) -> None:
    with pytest.raises(TypeError, match="int16"):
        mulaw.encode(np.zeros(4, dtype=dtype))


def test_tables_are_read_only() -> None:
    with pytest.raises(ValueError):
        mulaw.ENCODE_TABLE[0] = 1
    with pytest.raises(ValueError):
        mulaw.DECODE_TABLE[0] = 1
