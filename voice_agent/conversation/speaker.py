"""Agent audio out: TTS PCM to 8 kHz mu-law chunks on the line, each followed by a mark."""

from __future__ import annotations

import contextlib
import time

import numpy as np

from media import mulaw
from media.resample import StreamResampler
from voice_agent.conversation.playback import Playback, SpokenReply
from voice_agent.conversation.ports import CallTransport
from voice_agent.providers.base import ProviderError, TextToSpeech

LINE_RATE = 8000
#: Audio per media message (and per mark): fine enough to know what was heard to ~160 ms.
CHUNK_BYTES = 1280
_BYTES_PER_MS = LINE_RATE // 1000
#: While less of the reply than this is queued at Twilio, audio goes out piece by piece as
#: TTS yields it; past it, in whole chunks (fewer messages and marks). A reply's start is
#: where a stall of the server's loop would first run the caller's line dry.
_THIN_MS = 400.0


def _queued_ms(reply: SpokenReply) -> float:
    """Audio of `reply` sent and, by the clock, not yet played."""
    if reply.first_audio_at is None:
        return 0.0
    return reply.sent_ms - (time.perf_counter() - reply.first_audio_at) * 1000.0


class Speaker:
    """Sends one call's agent audio; refuses to send for a reply that was cancelled."""

    __slots__ = ("_playback", "_transport")

    def __init__(self, transport: CallTransport, playback: Playback) -> None:
        self._transport = transport
        self._playback = playback

    async def play(self, ulaw: bytes, reply: SpokenReply, sentence: int, offset_ms: float) -> float:
        """Send ready mu-law audio in chunks; returns the ms of sentence audio sent so far."""
        for start in range(0, len(ulaw), CHUNK_BYTES):
            if reply.cancelled:
                return offset_ms
            chunk = ulaw[start : start + CHUNK_BYTES]
            offset_ms += len(chunk) / _BYTES_PER_MS
            playback = self._playback
            if playback.holding:
                # The caller may be interrupting: kept, and sent only if they were not.
                playback.keep(reply, sentence, offset_ms, chunk)
                continue
            await self._transport.send_audio(chunk)
            await self._transport.send_mark(playback.sent(reply, sentence, offset_ms, chunk))
            if not reply.audio_sent:
                reply.audio_sent = True
                reply.first_audio_at = time.perf_counter()
            reply.sent_ms += len(chunk) / _BYTES_PER_MS
        return offset_ms

    async def resume(self) -> float:
        """Send the held audio again, in order, then let new audio through; returns the ms
        sent. A reply still being made adds to the held queue meanwhile, behind."""
        playback = self._playback
        sent_ms = 0.0
        while (piece := playback.take_held()) is not None:
            if piece.reply.cancelled:
                continue
            await self._transport.send_audio(piece.audio)
            name = playback.sent(piece.reply, piece.sentence, piece.sentence_ms, piece.audio)
            await self._transport.send_mark(name)
            piece.reply.sent_ms += len(piece.audio) / _BYTES_PER_MS
            sent_ms += len(piece.audio) / _BYTES_PER_MS
        return sent_ms

    async def speak(
        self, tts: TextToSpeech, text: str, reply: SpokenReply, voice: str | None = None
    ) -> float | None:
        """Synthesise and send one sentence as it streams. Returns the TTS first-byte time in
        ms (None if cancelled before any audio)."""
        sentence = reply.add_sentence(text)
        resampler = StreamResampler(tts.sample_rate, LINE_RATE)
        pending = bytearray()
        sent_ms = 0.0
        first_byte_ms: float | None = None
        started = time.perf_counter()
        carry = b""
        # Closing the stream on barge-in stops the provider's work at once.
        try:
            async with contextlib.aclosing(tts.synthesize(text, voice)) as stream:
                async for piece in stream:
                    if reply.cancelled:
                        return first_byte_ms
                    if first_byte_ms is None:
                        first_byte_ms = (time.perf_counter() - started) * 1000.0
                    pcm = carry + piece if carry else piece
                    carry = b""
                    if len(pcm) % 2:
                        pcm, carry = pcm[:-1], pcm[-1:]
                    samples = np.frombuffer(pcm, dtype=np.int16)
                    pending += mulaw.encode(resampler.process(samples))
                    whole = len(pending)
                    if _queued_ms(reply) >= _THIN_MS:
                        whole -= whole % CHUNK_BYTES
                    if whole:
                        sent_ms = await self.play(bytes(pending[:whole]), reply, sentence, sent_ms)
                        del pending[:whole]
        except ProviderError:
            if sent_ms == 0.0 and sentence == len(reply.sentences) - 1:
                # None of it reached the line: the caller never heard it, so neither the
                # transcript nor the model's history may say it was said.
                reply.sentences.pop()
                reply.durations_ms.pop()
            raise
        pending += mulaw.encode(resampler.flush())
        if pending and not reply.cancelled:
            sent_ms = await self.play(bytes(pending), reply, sentence, sent_ms)
        reply.durations_ms[sentence] = sent_ms
        return first_byte_ms
