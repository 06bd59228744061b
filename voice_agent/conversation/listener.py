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
    #: The pause that ended the turn (see ``Listener.on_pause``); 0 when none was offered.
    pause: int = 0


@dataclass(frozen=True, slots=True)
class TurnWaits:
    """Text-aware end of turn (#18): how long a pause must last, by what was said so far.

    At ``speculation_ms`` into a pause the turn's audio is offered for a speculative
    transcript; its verdict then sets the wait: ``min_wait_ms`` for a finished turn,
    ``max_wait_ms`` for one visibly going on, the ordinary silence wait otherwise. Until
    the verdict is back the turn does not end (short of ``max_wait_ms``).
    """

    speculation_ms: int = 100
    min_wait_ms: int = 200
    max_wait_ms: int = 1500
    #: For a "likely" verdict (a finished sentence that may yet be the first of several);
    #: 0: the ordinary silence wait.
    likely_wait_ms: int = 1100

    def wait_for(self, verdict: str, silence_ms: int) -> int:
        """The pause (ms) that ends the turn, given the verdict on what was said."""
        if verdict == "complete":
            return self.min_wait_ms
        if verdict == "incomplete":
            return self.max_wait_ms
        if verdict == "likely" and self.likely_wait_ms:
            return self.likely_wait_ms
        return silence_ms


@dataclass(slots=True)
class PausedSpeech:
    """The turn so far, offered at a short pause. ``pause`` names it in ``verdict``."""

    pcm16: np.ndarray
    pause: int


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
        waits: TurnWaits | None = None,
        on_pause: Callable[[PausedSpeech], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
        adaptive_floor: bool = False,
        lowest_dbfs: float = -62.0,
    ) -> None:
        self._on_start = on_start
        self._on_end = on_end
        self._clock = clock
        self._wall = wall
        self._vad = (
            VoiceActivity(aggressiveness, 8000, min_level_dbfs=lowest_dbfs, adaptive=True)
            if adaptive_floor
            else VoiceActivity(aggressiveness, sample_rate=8000)
        )
        # With text-aware waits the endpointer itself only stops at the longest wait;
        # shorter ones end the turn through end_now().
        self._waits = waits if on_pause is not None else None
        longest = silence_ms if self._waits is None else max(silence_ms, self._waits.max_wait_ms)
        self._endpointer = Endpointer(frame_ms=FRAME_MS, start_ms=start_ms, silence_ms=longest)
        self._on_pause = on_pause or _ignore
        self._base_frames = -(-silence_ms // FRAME_MS)
        self._wait_frames = self._base_frames
        self._speculate_frames = (
            0 if self._waits is None else max(1, self._waits.speculation_ms // FRAME_MS)
        )
        self._pause = 0  # id of the pause now running (or last run)
        self._offered = False  # this pause's audio has gone out for a verdict
        self._pending = False  # ... and its verdict has not come back yet
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
        self._on_pause = _ignore

    @property
    def speaking(self) -> bool:
        return self._endpointer.in_speech

    def push(self, ulaw: bytes) -> None:
        for frame in self._splitter.push(ulaw):
            self._frame(frame)

    def verdict(self, pause: int, wait_ms: int) -> None:
        """How long pause ``pause`` must last to end the turn, now that what was said is
        known. Ignored once the caller has spoken again (a newer pause) or the turn ended."""
        if pause != self._pause or not self._offered or not self._endpointer.in_speech:
            return
        self._pending = False
        self._wait_frames = max(1, -(-wait_ms // FRAME_MS))
        silent = self._endpointer.silence_frames
        if silent and silent >= self._wait_frames:
            self._finish(self._endpointer.end_now())

    def _frame(self, frame: bytes) -> None:
        # The int16 array goes to the VAD and the turn buffer as it is: a bytes copy
        # would make the VAD's loudness check rebuild an array from it, every frame.
        pcm = mulaw.decode(frame)
        voiced = self._vad.is_speech(pcm)
        self._audio += pcm.data
        now = self._clock()
        if voiced:
            self._last_voiced_at = now
        endpointer = self._endpointer
        event = endpointer.push(voiced)
        if event is None:
            silent = endpointer.silence_frames
            if silent:
                if self._waits is not None:
                    self._pausing(silent)
            elif self._offered:
                # The caller went on: that verdict is stale.
                self._offered = self._pending = False
                self._wait_frames = self._base_frames
            elif not self.speaking and len(self._audio) > 4 * self._keep:
                self._drop_to(len(self._audio) - self._keep)
            return
        if isinstance(event, SpeechStarted):
            back = (endpointer.frame_index - event.onset_frame) * FRAME_MS / 1000.0
            self._onset_at = now - back
            self._onset_wall = self._wall() - back
            self._on_start(self._onset_at)
        elif isinstance(event, SpeechEnded):
            self._finish(event)

    def _pausing(self, silent: int) -> None:
        if silent == 1:
            self._pause += 1
            self._offered = self._pending = False
            self._wait_frames = self._base_frames
        if silent == self._speculate_frames and not self._offered:
            self._offered = self._pending = True
            endpointer = self._endpointer
            audio = self._turn_audio(endpointer.onset_frame, endpointer.end_frame)
            self._on_pause(PausedSpeech(audio, self._pause))
        # While the verdict is out, the turn is held (up to the longest wait): ending it
        # at the ordinary silence would cut off exactly the turns the verdict is for.
        if silent >= self._wait_frames and not self._pending:
            self._finish(self._endpointer.end_now())

    def _turn_audio(self, onset_frame: int, end_frame: int) -> np.ndarray:
        first = max(0, onset_frame - _PAD_FRAMES - self._origin) * _PCM_FRAME
        last = (end_frame + _PAD_FRAMES - self._origin) * _PCM_FRAME
        return np.frombuffer(bytes(self._audio[first:last]), dtype=np.int16)

    def _finish(self, event: SpeechEnded | None) -> None:
        if event is None:
            return
        speech = self._turn_audio(event.onset_frame, event.end_frame)
        self._drop_to(len(self._audio) - self._keep)
        pause = self._pause if self._offered else 0
        self._offered = self._pending = False
        self._wait_frames = self._base_frames
        onset, end, wall = self._onset_at, self._last_voiced_at, self._onset_wall
        self._on_end(CallerSpeech(speech, onset, end, wall, pause))

    def _drop_to(self, byte_offset: int) -> None:
        byte_offset = max(0, byte_offset - byte_offset % _PCM_FRAME)
        del self._audio[:byte_offset]
        self._origin += byte_offset // _PCM_FRAME
