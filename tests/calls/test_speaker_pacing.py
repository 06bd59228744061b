"""How agent audio is cut into media messages: piece by piece while little of the reply is
queued at Twilio (a stall of the server then cannot run the line dry as soon), in whole
160 ms chunks after that."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import numpy as np

from voice_agent.conversation.playback import Playback, SpokenReply
from voice_agent.conversation.speaker import CHUNK_BYTES, Speaker

_RATE = 24_000
_PIECE_MS = 100


class _Tts:
    """Twenty 100 ms pieces of a tone, as fast as they are asked for."""

    sample_rate = _RATE

    def __init__(self) -> None:
        self.yielded = 0

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncGenerator[bytes, None]:
        t = np.arange(_RATE * _PIECE_MS // 1000 * 20) / _RATE
        pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
        piece = len(pcm) // 20
        for start in range(0, len(pcm), piece):
            self.yielded += 1
            yield pcm[start : start + piece]


class _Line:
    """The caller's line: which TTS piece each media message went out on, and its size."""

    def __init__(self, tts: _Tts) -> None:
        self.tts = tts
        self.sent: list[tuple[int, int]] = []

    async def send_audio(self, ulaw: bytes) -> None:
        self.sent.append((self.tts.yielded, len(ulaw)))

    async def send_mark(self, name: str) -> None:
        pass

    async def send_clear(self) -> None:
        pass

    async def hangup(self) -> None:
        pass

    async def transfer(self, number: str) -> None:
        pass


async def test_a_reply_starts_piece_by_piece_then_goes_in_whole_chunks() -> None:
    tts = _Tts()
    line = _Line(tts)
    reply = SpokenReply(1)
    await Speaker(line, Playback()).speak(tts, "Hello there.", reply)

    total = sum(size for _, size in line.sent)
    assert total == reply.sent_ms * 8
    assert abs(total - 20 * _PIECE_MS * 8) <= 40  # all of it, give or take resampler edges
    # Until 400 ms is out, every piece that yields audio sends it at once.
    sent = 0
    thin = []
    for piece, size in line.sent:
        if sent >= 400 * 8:
            break
        thin.append(piece)
        sent += size
    # One message on every piece from the first: none held back to fill a chunk.
    assert len(thin) >= 4
    assert thin == list(range(thin[0], thin[0] + len(thin)))
    # Then whole chunks, and the remainder at the end.
    rest = [size for _, size in line.sent[len(thin) :]]
    assert rest[:-1] and all(size == CHUNK_BYTES for size in rest[:-1])
    assert 0 < rest[-1] <= CHUNK_BYTES
