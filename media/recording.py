"""A two-track call recording kept as mu-law in preallocated blocks: caller on one track,
agent on the other, both on one timeline that starts at the call's start.

Per 20 ms frame the caller track takes one slice assignment into a block allocated ahead;
nothing is decoded or written on the audio path. ``pcm`` decodes both tracks at the end.
"""

from __future__ import annotations

import numpy as np

from media import mulaw

RATE = 8000
#: mu-law code for digital silence.
SILENCE = 0xFF
BLOCK = RATE * 30  # samples per preallocated block (30 s, 240 kB)
_SILENT_BLOCK = bytes([SILENCE]) * BLOCK


class _Track:
    __slots__ = ("_blocks", "length")

    def __init__(self) -> None:
        self._blocks: list[bytearray] = [bytearray(_SILENT_BLOCK)]
        self.length = 0  # samples up to the end of the last audio written

    def write(self, at: int, ulaw: bytes | memoryview) -> None:
        size = len(ulaw)
        end = at + size
        index, inner = divmod(at, BLOCK)
        if inner + size <= BLOCK and index < len(self._blocks):
            # The per-frame case: one copy into a block allocated ahead.
            self._blocks[index][inner : end - index * BLOCK] = ulaw
            if end > self.length:
                self.length = end
            return
        while end > len(self._blocks) * BLOCK:
            self._blocks.append(bytearray(_SILENT_BLOCK))
        view = memoryview(ulaw)
        offset = 0
        while offset < len(view):
            index, inner = divmod(at + offset, BLOCK)
            take = min(BLOCK - inner, len(view) - offset)
            self._blocks[index][inner : inner + take] = view[offset : offset + take]
            offset += take
        if end > self.length:
            self.length = end

    def silence(self, start: int, end: int) -> None:
        """Blank [start, end): audio that was sent but never played."""
        end = min(end, len(self._blocks) * BLOCK)
        position = start
        while position < end:
            index, inner = divmod(position, BLOCK)
            take = min(BLOCK - inner, end - position)
            self._blocks[index][inner : inner + take] = _SILENT_BLOCK[:take]
            position += take

    def ulaw(self, length: int) -> np.ndarray:
        joined = np.frombuffer(b"".join(self._blocks), dtype=np.uint8)
        if length <= len(joined):
            return joined[:length]
        return np.concatenate([joined, np.full(length - len(joined), SILENCE, np.uint8)])


class CallRecording:
    """Caller audio is continuous (Twilio sends a frame every 20 ms), so its position is its
    sample count. Agent audio plays when sent, or after what is still queued, and a clear
    discards what had not played yet."""

    __slots__ = ("_agent", "_agent_end", "_caller")

    def __init__(self) -> None:
        self._caller = _Track()
        self._agent = _Track()
        self._agent_end = 0  # where queued agent audio will have finished playing

    def caller(self, ulaw: bytes) -> None:
        self._caller.write(self._caller.length, ulaw)

    def agent(self, ulaw: bytes, at: int) -> None:
        """Agent audio sent at sample ``at`` of the call's timeline."""
        start = max(at, self._agent_end)
        self._agent.write(start, ulaw)
        self._agent_end = start + len(ulaw)

    def clear(self, at: int) -> None:
        """The line was cleared at sample ``at``: nothing queued after it was heard."""
        if self._agent_end > at:
            self._agent.silence(at, self._agent_end)
            self._agent.length = min(self._agent.length, max(at, 0))
            self._agent_end = at

    @property
    def samples(self) -> int:
        return max(self._caller.length, self._agent.length)

    def pcm(self, length: int | None = None) -> np.ndarray:
        """(samples, 2) int16: column 0 the caller, column 1 the agent."""
        n = self.samples if length is None else length
        out = np.empty((n, 2), dtype=np.int16)
        out[:, 0] = mulaw.decode(self._caller.ulaw(n))
        out[:, 1] = mulaw.decode(self._agent.ulaw(n))
        return out
