"""The stand-in's "Whisper" for load tests: it names the fixture utterances it hears.

The server uploads the very samples the caller sent (mu-law decoding is exact), cut on
the caller's 20 ms grid, so every voiced frame of an upload is a frame of one fixture.
Looking frames up is exact, costs microseconds, and is immune to how the VAD pads a turn.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import numpy as np
import soundfile

from loadtest.fixtures import Utterance

FRAME_SAMPLES = 160
#: Frames quieter than this (peak, int16) are silence or breath, alike in every fixture.
_VOICED_PEAK = 500
# G.711 mu-law expansion (the same table every decoder uses), kept here so the load
# generator imports nothing of the server's.
_CODES = ~np.arange(256, dtype=np.int32) & 0xFF
_MAGNITUDE = ((((_CODES & 0x0F) << 3) + 0x84) << ((_CODES >> 4) & 0x07)) - 0x84
_DECODE = np.where(_CODES & 0x80, -_MAGNITUDE, _MAGNITUDE).astype(np.int16)


class FixtureTranscriber:
    def __init__(self, utterances: Iterable[Utterance]) -> None:
        self._frames: dict[bytes, str] = {}
        self._texts: dict[str, str] = {}
        shared: set[bytes] = set()
        for utterance in utterances:
            self._texts[utterance.id] = utterance.text
            pcm = _DECODE.take(np.frombuffer(utterance.audio, dtype=np.uint8))
            for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
                frame = pcm[start : start + FRAME_SAMPLES]
                if int(np.abs(frame.astype(np.int32)).max()) < _VOICED_PEAK:
                    continue
                key = frame.tobytes()
                if self._frames.get(key, utterance.id) != utterance.id:
                    shared.add(key)
                self._frames[key] = utterance.id
        for key in shared:
            del self._frames[key]

    def ids(self, wav: bytes) -> list[str]:
        pcm, rate = soundfile.read(io.BytesIO(wav), dtype="int16")
        if rate != 8000:
            raise ValueError(f"expected 8 kHz audio, got {rate} Hz")
        return self.ids_of_samples(pcm)

    def ids_of_samples(self, pcm: np.ndarray) -> list[str]:
        """The fixtures heard in 8 kHz int16 samples cut on the caller's 20 ms grid."""
        found: list[str] = []
        for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            name = self._frames.get(pcm[start : start + FRAME_SAMPLES].tobytes())
            if name is not None and (not found or found[-1] != name):
                found.append(name)
        return found

    def text_of(self, ids: Iterable[str]) -> str:
        return " ".join(self._texts[i] for i in ids)

    def __call__(self, wav: bytes) -> str:
        return self.text_of(self.ids(wav))

    def samples(self, pcm: np.ndarray) -> str:
        """Transcript of raw samples (the Realtime stand-in hears mu-law, not a file)."""
        return self.text_of(self.ids_of_samples(pcm))
