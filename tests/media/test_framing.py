from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.framing import FrameSplitter


def test_an_exact_frame_comes_back_as_the_same_object() -> None:
    splitter = FrameSplitter(160)
    frame = bytes(range(160))
    (out,) = splitter.push(frame)
    assert out is frame
    assert splitter.pending == 0


def test_short_pieces_are_joined_into_frames() -> None:
    splitter = FrameSplitter(4)
    assert splitter.push(b"ab") == ()
    assert splitter.pending == 2
    assert splitter.push(b"c") == ()
    assert splitter.push(b"def") == (b"abcd",)
    assert splitter.pending == 2
    assert splitter.push(b"") == ()


def test_a_long_piece_is_split_and_the_rest_kept() -> None:
    splitter = FrameSplitter(4)
    assert splitter.push(b"0123456789") == (b"0123", b"4567")
    assert splitter.pending == 2
    assert splitter.push(b"ab") == (b"89ab",)
    assert splitter.pending == 0


def test_take_remainder_and_reset() -> None:
    splitter = FrameSplitter(4)
    splitter.push(b"012345")
    assert splitter.take_remainder() == b"45"
    assert splitter.take_remainder() == b""
    splitter.push(b"xyz")
    splitter.reset()
    assert splitter.pending == 0
    assert splitter.push(b"abcd") == (b"abcd",)


def test_frames_do_not_alias_the_internal_buffer() -> None:
    splitter = FrameSplitter(2)
    splitter.push(b"a")
    (frame,) = splitter.push(b"b")
    splitter.push(b"cd")
    assert frame == b"ab"
    assert isinstance(frame, bytes)


@pytest.mark.parametrize("size", [0, -160])
def test_rejects_non_positive_frame_size(size: int) -> None:
    with pytest.raises(ValueError, match="frame_bytes"):
        FrameSplitter(size)


@given(
    size=st.integers(min_value=1, max_value=50),
    pieces=st.lists(st.binary(max_size=200), max_size=30),
)
def test_any_chunking_yields_the_stream_in_whole_frames(size: int, pieces: list[bytes]) -> None:
    splitter = FrameSplitter(size)
    frames = [frame for piece in pieces for frame in splitter.push(piece)]
    stream = b"".join(pieces)
    assert all(len(frame) == size for frame in frames)
    assert b"".join(frames) + splitter.take_remainder() == stream
    assert splitter.frame_bytes == size
