"""A text-to-speech provider heard at another sample rate.

A stage's providers must share one sample rate (a re-asked stream is joined by bytes), and
the bundled Piper voice speaks at 22.05 kHz where OpenAI's speech is 24 kHz: wrapped in
this, Piper can stand behind OpenAI as the last resort of the same stage.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import numpy as np

from media.resample import StreamResampler
from voice_agent.providers.base import TextToSpeech


class ResampledTextToSpeech:
    """`inner`'s speech, converted to `sample_rate` as it streams (one resampler per
    stream, so the filter's state carries across chunks and nothing clicks)."""

    def __init__(self, inner: TextToSpeech, sample_rate: int) -> None:
        self._inner = inner
        self.sample_rate = sample_rate
        self.usage_model: str = getattr(inner, "usage_model", "")

    @property
    def inner(self) -> TextToSpeech:
        return self._inner

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncGenerator[bytes, None]:
        resampler = StreamResampler(self._inner.sample_rate, self.sample_rate)
        async with contextlib.aclosing(self._inner.synthesize(text, voice)) as stream:
            async for piece in stream:
                # An odd byte cannot happen with int16 audio; a provider that sent one
                # would fail here loudly rather than shift every later sample.
                out = resampler.process(np.frombuffer(piece, dtype=np.int16))
                if out.size:
                    yield out.tobytes()
        tail = resampler.flush()
        if tail.size:
            yield tail.tobytes()

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()
