"""Cuts a byte stream into fixed-size frames.

Twilio's inbound media messages are observed to be 20 ms each but are not promised to
be, and the VAD needs exact 10/20/30 ms frames, so every inbound payload goes through
one of these.
"""

from __future__ import annotations

__all__ = ["FrameSplitter"]


class FrameSplitter:
    """Push bytes of any length; get back the whole frames they complete, in order.

    When nothing is pending and the input is exactly one frame (the usual case), that
    same object is returned inside a one-element tuple: no copy.
    """

    __slots__ = ("_buffer", "_frame_bytes")

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes <= 0:
            raise ValueError(f"frame_bytes must be positive, got {frame_bytes}")
        self._frame_bytes = frame_bytes
        self._buffer = bytearray()

    @property
    def frame_bytes(self) -> int:
        return self._frame_bytes

    @property
    def pending(self) -> int:
        """Bytes held back, waiting for the rest of their frame."""
        return len(self._buffer)

    def push(self, data: bytes) -> tuple[bytes, ...]:
        size = self._frame_bytes
        buffer = self._buffer
        if not buffer:
            if len(data) == size:
                return (data,)
            if len(data) < size:
                buffer += data
                return ()
            whole = len(data) - len(data) % size
            if whole < len(data):
                buffer += memoryview(data)[whole:]
            return tuple(data[start : start + size] for start in range(0, whole, size))
        buffer += data
        whole = len(buffer) - len(buffer) % size
        if not whole:
            return ()
        frames = tuple(bytes(buffer[start : start + size]) for start in range(0, whole, size))
        del buffer[:whole]
        return frames

    def take_remainder(self) -> bytes:
        """Return and forget the partial frame held back (e.g. at the end of a stream)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def reset(self) -> None:
        self._buffer.clear()
