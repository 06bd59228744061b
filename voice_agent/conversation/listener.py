"""Caller audio in: VAD, endpointing, and the audio of the turn in progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from media import mulaw
from media.endpoint import Endpointer, SpeechEnded, SpeechStarted
from media.framing import FrameSplitter
from media.vad import VoiceActivity

FRAME_MS = 20
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law
_PCM_FRAME = FRAME_BYTES * 2
#: Audio kept from before the detected onset, and after the end, for the recogniser.
_PAD_FRAMES = 5


@dataclass(slots=True)
class CallerSpeech:
    pcm16: np.ndarray
    #: perf_counter() when the first and last voiced frames arrived.
    onset_at: float
    end_at: float
    #: Wall clock (time.time()) of the onset, for the transcript.
    onset_wall: float


def _ignore(_: object) -> None:
    pass


class Listener:
    """Feeds 8 kHz mu-law through VAD and the endpointer; calls back on speech start and end.

    Per frame this does one table decode, one C VAD call and a few integer updates.
    """

    def __init__(
        self,
        on_start: Callable[[float], None],
        on_end: Callable[[CallerSpeech], None],
        *,
        start_ms: int,
        silence_ms: int,
        aggressiveness: int,
    ) -> None:
        self._on_start = on_start
        self._on_end = on_end
        self._vad = VoiceActivity(aggressiveness, sample_rate=8000)
        self._endpointer = Endpointer(frame_ms=FRAME_MS, start_ms=start_ms, silence_ms=silence_ms)
        self._splitter = FrameSplitter(FRAME_BYTES)
        self._audio = bytearray()
        self._origin = 0  # endpointer frame index of the first frame held in _audio
        self._keep = (start_ms // FRAME_MS + _PAD_FRAMES) * _PCM_FRAME
        self._last_voiced_at = 0.0
        self._onset_at = 0.0
        self._onset_wall = 0.0

    def close(self) -> None:
        """Drop the callbacks. They are usually the owner's methods, and owner and listener
        holding each other would outlive the call until a full collection."""
        self._on_start = _ignore
        self._on_end = _ignore

    @property
    def speaking(self) -> bool:
        return self._endpointer.in_speech

    def push(self, ulaw: bytes) -> None:
        for frame in self._splitter.push(ulaw):
            self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        # The int16 array goes to the VAD and the turn buffer as it is: a bytes copy
        # would make the VAD's loudness check rebuild an array from it, every frame.
        pcm = mulaw.decode(frame)
        voiced = self._vad.is_speech(pcm)
        self._audio += pcm.data
        now = time.perf_counter()
        if voiced:
            self._last_voiced_at = now
        event = self._endpointer.push(voiced)
        if event is None:
            if not self.speaking and len(self._audio) > 4 * self._keep:
                self._drop_to(len(self._audio) - self._keep)
            return
        if isinstance(event, SpeechStarted):
            back = (self._endpointer.frame_index - event.onset_frame) * FRAME_MS / 1000.0
            self._onset_at = now - back
            self._onset_wall = time.time() - back
            self._on_start(self._onset_at)
        elif isinstance(event, SpeechEnded):
            first = max(0, event.onset_frame - _PAD_FRAMES - self._origin) * _PCM_FRAME
            last = (event.end_frame + _PAD_FRAMES - self._origin) * _PCM_FRAME
            speech = np.frombuffer(bytes(self._audio[first:last]), dtype=np.int16)
            self._drop_to(len(self._audio) - self._keep)
            onset, end, wall = self._onset_at, self._last_voiced_at, self._onset_wall
            self._on_end(CallerSpeech(speech, onset, end, wall))

    def _drop_to(self, byte_offset: int) -> None:
        byte_offset = max(0, byte_offset - byte_offset % _PCM_FRAME)
        del self._audio[:byte_offset]
        self._origin += byte_offset // _PCM_FRAME
