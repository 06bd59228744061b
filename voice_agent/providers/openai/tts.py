"""Text to speech through OpenAI's speech endpoint, streamed as raw 24 kHz PCM."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import openai

from prompts.voices import OPENAI_TTS_VOICES
from voice_agent.providers.openai.client import REQUEST_ERRORS, ClientStage, provider_error
from voice_agent.providers.watchdog import StallWatchdog

#: `response_format="pcm"` is headerless 24 kHz signed 16-bit little-endian mono.
PCM_SAMPLE_RATE = 24_000

#: Built-in voices; an agent file written for another engine (a Piper voice name, say)
#: falls back to the configured default instead of failing every sentence with HTTP 400.
OPENAI_VOICES = OPENAI_TTS_VOICES


class OpenAITextToSpeech(ClientStage):
    sample_rate: int = PCM_SAMPLE_RATE

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str = "tts-1",
        voice: str = "alloy",
        timeout: float = 10.0,
    ) -> None:
        # Resolved here, at start-up: the SDK imports its resource modules on first use,
        # and start-up's objects are the ones frozen out of the garbage collector's way.
        self._client = client
        self._speech = client.audio.speech.with_streaming_response
        self._model = model
        #: The name this stage's usage is metered and priced under.
        self.usage_model = model
        self._voice = voice
        self._timeout = timeout

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncGenerator[bytes, None]:
        carry = b""
        try:
            # The SDK timeout bounds the wait for the response headers; the loop below
            # bounds the first byte and every stall after it.
            async with (
                StallWatchdog(self._timeout) as watchdog,
                self._speech.create(
                    model=self._model,
                    voice=voice if voice in OPENAI_VOICES else self._voice,
                    input=text,
                    response_format="pcm",
                    timeout=self._timeout,
                ) as response,
            ):
                pieces = response.iter_bytes().__aiter__()
                while True:
                    watchdog.waiting()
                    try:
                        piece = await anext(pieces)
                    except StopAsyncIteration:
                        break
                    finally:
                        watchdog.arrived()
                    if carry:
                        piece = carry + piece
                        carry = b""
                    # Network chunks may split a sample; samples must stay whole downstream.
                    if len(piece) & 1:
                        carry = piece[-1:]
                        piece = piece[:-1]
                    if piece:
                        yield piece
        except REQUEST_ERRORS as exc:
            raise provider_error("tts", exc) from exc
