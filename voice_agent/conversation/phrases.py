"""Fixed phrases (greetings, apologies) synthesised once and kept as line-ready mu-law."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np

from media import mulaw
from media.resample import StreamResampler
from voice_agent.providers.base import TextToSpeech

LINE_RATE = 8000


class PhraseCache:
    """Greeting audio must leave within milliseconds of the call starting, so it is made
    before the call, once per (text, voice), and shared by every call."""

    def __init__(self, tts: TextToSpeech, max_entries: int = 512) -> None:
        self._tts = tts
        self._max = max_entries
        self._ready: dict[tuple[str, str | None], bytes] = {}
        self._making: dict[tuple[str, str | None], asyncio.Future[bytes]] = {}

    async def get(self, text: str, voice: str | None = None) -> bytes:
        key = (text, voice)
        audio = self._ready.get(key)
        if audio is not None:
            return audio
        making = self._making.get(key)
        if making is None:
            making = asyncio.ensure_future(self._synthesise(text, voice))
            self._making[key] = making
            making.add_done_callback(lambda _: self._making.pop(key, None))
        audio = await asyncio.shield(making)
        if len(self._ready) >= self._max:
            self._ready.pop(next(iter(self._ready)))
        self._ready[key] = audio
        return audio

    async def _synthesise(self, text: str, voice: str | None) -> bytes:
        resampler = StreamResampler(self._tts.sample_rate, LINE_RATE)
        pcm = bytearray()
        async with contextlib.aclosing(self._tts.synthesize(text, voice)) as stream:
            async for piece in stream:
                pcm += piece
        samples = np.frombuffer(bytes(pcm[: len(pcm) // 2 * 2]), dtype=np.int16)
        line = np.concatenate([resampler.process(samples), resampler.flush()])
        return mulaw.encode(line)
