"""A two-track call recording kept as mu-law in preallocated blocks: caller on one track,
agent on the other, both on one timeline that starts at the call's start.

Per 20 ms frame the caller track takes one slice assignment into a block allocated ahead
(blocks are recycled through a pool, so a long call allocates nothing in steady state);
nothing is decoded or written on the audio path. Blocks that can no longer change are
handed out with ``take_final`` to be written elsewhere, so a call holds only its last few
seconds in memory; ``pcm`` decodes what is left at the end.
"""

from __future__ import annotations

import numpy as np

from media import mulaw

RATE = 8000
#: mu-law code for digital silence.
SILENCE = 0xFF
BLOCK = RATE * 5  # samples per block (5 s, 40 kB a track)
_SILENT_BLOCK = bytes([SILENCE]) * BLOCK
_POOL: list[bytearray] = []
_POOL_MAX = 512


def _new_block() -> bytearray:
    return _POOL.pop() if _POOL else bytearray(_SILENT_BLOCK)


def recycle(block: bytearray) -> None:
    """Give a block taken with ``take_final`` back, once its audio has been written."""
    if len(_POOL) < _POOL_MAX and len(block) == BLOCK:
        block[:] = _SILENT_BLOCK
        _POOL.append(block)


class _Track:
    __slots__ = ("_blocks", "_first", "length")

    def __init__(self) -> None:
        self._blocks: list[bytearray] = []
        self._first = 0  # block index of _blocks[0]; earlier blocks were taken
        self.length = 0  # samples up to the end of the last audio written

    def _block(self, index: int) -> bytearray:
        while index >= self._first + len(self._blocks):
            self._blocks.append(_new_block())
        return self._blocks[index - self._first]

    def write(self, at: int, ulaw: bytes | memoryview) -> None:
        size = len(ulaw)
        end = at + size
        index, inner = divmod(at, BLOCK)
        if index < self._first:
            return  # before what was already taken: cannot happen on one timeline
        if inner + size <= BLOCK:
            # The per-frame case: one copy into a block allocated ahead.
            self._block(index)[inner : inner + size] = ulaw
        else:
            view = memoryview(ulaw)
            offset = 0
            while offset < size:
                index, inner = divmod(at + offset, BLOCK)
                take = min(BLOCK - inner, size - offset)
                self._block(index)[inner : inner + take] = view[offset : offset + take]
                offset += take
        if end > self.length:
            self.length = end

    def silence(self, start: int, end: int) -> None:
        """Blank [start, end): audio that was sent but never played."""
        position = max(start, self._first * BLOCK)
        end = min(end, (self._first + len(self._blocks)) * BLOCK)
        while position < end:
            index, inner = divmod(position, BLOCK)
            take = min(BLOCK - inner, end - position)
            self._block(index)[inner : inner + take] = _SILENT_BLOCK[:take]
            position += take

    def take_first(self) -> bytearray:
        block = self._block(self._first)
        self._blocks.pop(0)
        self._first += 1
        return block

    def ulaw(self, length: int) -> np.ndarray:
        """The samples from the first block not taken, ``length`` of them."""
        joined = np.frombuffer(b"".join(self._blocks), dtype=np.uint8)
        if length <= len(joined):
            return joined[:length]
        return np.concatenate([joined, np.full(length - len(joined), SILENCE, np.uint8)])


class CallRecording:
    """Caller audio is continuous (Twilio sends a frame every 20 ms), so its position is its
    sample count. Agent audio plays when sent, or after what is still queued, and a clear
    discards what had not played yet."""

    __slots__ = ("_agent", "_agent_end", "_caller", "taken")

    def __init__(self) -> None:
        self._caller = _Track()
        self._agent = _Track()
        self._agent_end = 0  # where queued agent audio will have finished playing
        self.taken = 0  # samples handed out by take_final (a multiple of BLOCK)

    def caller(self, ulaw: bytes) -> None:
        self._caller.write(self._caller.length, ulaw)

    @property
    def caller_samples(self) -> int:
        return self._caller.length

    def agent(self, ulaw: bytes, at: int) -> None:
        """Agent audio sent at sample ``at`` of the call's timeline."""
        start = max(at, self._agent_end, self.taken)
        self._agent.write(start, ulaw)
        self._agent_end = start + len(ulaw)

    def clear(self, at: int) -> None:
        """The line was cleared at sample ``at``: nothing queued after it was heard."""
        if self._agent_end > at:
            self._agent.silence(at, self._agent_end)
            self._agent.length = min(self._agent.length, max(at, 0))
            self._agent_end = max(at, 0)

    @property
    def samples(self) -> int:
        return max(self._caller.length, self._agent.length)

    def take_final(self, now: int) -> list[tuple[bytearray, bytearray]]:
        """(caller, agent) blocks wholly before ``now`` and before the caller's last frame:
        nothing can change them any more (agent audio only ever lands at or after now)."""
        final = min(now, self._caller.length) // BLOCK
        blocks: list[tuple[bytearray, bytearray]] = []
        while self.taken // BLOCK < final:
            blocks.append((self._caller.take_first(), self._agent.take_first()))
            self.taken += BLOCK
        return blocks

    def pcm(self, length: int | None = None) -> np.ndarray:
        """(samples, 2) int16 of what was not taken, up to ``length`` samples from the start
        of the call: column 0 the caller, column 1 the agent."""
        n = max(0, (self.samples if length is None else length) - self.taken)
        out = np.empty((n, 2), dtype=np.int16)
        out[:, 0] = mulaw.decode(self._caller.ulaw(n))
        out[:, 1] = mulaw.decode(self._agent.ulaw(n))
        return out


def blocks_pcm(blocks: list[tuple[bytearray, bytearray]]) -> np.ndarray:
    """Decode taken blocks into (samples, 2) int16."""
    out = np.empty((len(blocks) * BLOCK, 2), dtype=np.int16)
    for i, (caller, agent) in enumerate(blocks):
        rows = slice(i * BLOCK, (i + 1) * BLOCK)
        out[rows, 0] = mulaw.decode(caller)
        out[rows, 1] = mulaw.decode(agent)
    return out
