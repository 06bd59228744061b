"""Endpointing: turns a stream of per-frame voiced/unvoiced flags into turn boundaries.

A hysteresis state machine, with every duration turned into a frame count up front:

    QUIET ──voiced──▶ STARTING ──enough voice──▶ SPEAKING ──unvoiced──▶ STOPPING
      ▲                  │ gap too long                ▲                 │  │
      └──────────────────┘                             └──voice again────┘  │
      ▲                                          silence long enough        │
      └─────────────────────────────────────────────────────────────────────┘

Speech start is reported late by design (after ``start_ms`` of voice) but carries the
index of the first voiced frame, so the caller can take the turn's audio from a
pre-roll buffer. Likewise the end is reported ``silence_ms`` late with the index just
after the last voiced frame.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["EndpointEvent", "EndpointState", "Endpointer", "SpeechEnded", "SpeechStarted"]


class EndpointState(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    onset_frame: int
    """Index of the first voiced frame of the run that became speech."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    onset_frame: int
    end_frame: int
    """Index just after the last voiced frame: the turn is frames [onset, end)."""


EndpointEvent = SpeechStarted | SpeechEnded


def _frames(ms: int, frame_ms: int) -> int:
    return -(-ms // frame_ms)  # round up: never shorter than asked


class Endpointer:
    """Feeds on one voiced/unvoiced flag per frame; emits speech start and end events.

    ``start_ms``: voiced audio needed before speech counts as started; a shorter blip
    (a click, a cough) is ignored. Gaps of up to ``start_gap_ms`` inside that run are
    tolerated, because the VAD misses the odd frame in real speech.
    ``silence_ms``: unvoiced audio that ends the speech; shorter pauses are part of it.
    ``resume_ms``: voiced audio needed to take a pause back into speech; a shorter click
    in the trailing silence (line noise the VAD lets through) neither extends the speech
    nor delays its end.
    """

    __slots__ = (
        "_frame_index",
        "_gap_run",
        "_last_voiced_end",
        "_max_start_gap",
        "_onset",
        "_resume_frames",
        "_resume_run",
        "_silence_frames",
        "_silence_run",
        "_start_frames",
        "_state",
        "_voiced_count",
        "frame_ms",
    )

    def __init__(
        self,
        frame_ms: int = 20,
        start_ms: int = 100,
        silence_ms: int = 500,
        start_gap_ms: int = 40,
        resume_ms: int = 40,
    ) -> None:
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, got {frame_ms}")
        if start_ms <= 0 or silence_ms <= 0:
            raise ValueError(
                f"start_ms and silence_ms must be positive, got {start_ms} and {silence_ms}"
            )
        if resume_ms <= 0:
            raise ValueError(f"resume_ms must be positive, got {resume_ms}")
        if start_gap_ms < 0:
            raise ValueError(f"start_gap_ms must not be negative, got {start_gap_ms}")
        self.frame_ms = frame_ms
        self._start_frames = _frames(start_ms, frame_ms)
        self._silence_frames = _frames(silence_ms, frame_ms)
        self._resume_frames = _frames(resume_ms, frame_ms)
        self._max_start_gap = start_gap_ms // frame_ms  # round down: never more lenient
        self.reset()

    def reset(self) -> None:
        """Forget everything, including the frame count (a new stream starts at 0)."""
        self._state = EndpointState.QUIET
        self._frame_index = 0
        self._onset = 0
        self._voiced_count = 0
        self._gap_run = 0
        self._silence_run = 0
        self._resume_run = 0
        self._last_voiced_end = 0

    @property
    def state(self) -> EndpointState:
        return self._state

    @property
    def frame_index(self) -> int:
        """Frames pushed since construction or the last ``reset``."""
        return self._frame_index

    @property
    def in_speech(self) -> bool:
        """True between SpeechStarted and SpeechEnded."""
        state = self._state
        return state is EndpointState.SPEAKING or state is EndpointState.STOPPING

    @property
    def onset_frame(self) -> int:
        """Index of the first voiced frame of the speech in progress."""
        return self._onset

    @property
    def end_frame(self) -> int:
        """Index just after the last voiced frame so far."""
        return self._last_voiced_end

    @property
    def silence_frames(self) -> int:
        """Unvoiced frames since the last voiced one, while a pause is running (STOPPING);
        0 otherwise."""
        return self._silence_run if self._state is EndpointState.STOPPING else 0

    def end_now(self) -> SpeechEnded | None:
        """End the speech at the pause now running, before ``silence_ms`` has passed:
        something else (what the caller said) decided the turn is over. None when no
        pause is running."""
        if self._state is not EndpointState.STOPPING:
            return None
        self._state = EndpointState.QUIET
        return SpeechEnded(self._onset, self._last_voiced_end)

    def push(self, voiced: bool) -> EndpointEvent | None:
        """Take the next frame's flag; return an event when a boundary is decided."""
        index = self._frame_index
        self._frame_index = index + 1
        state = self._state

        if state is EndpointState.SPEAKING:
            if voiced:
                self._last_voiced_end = index + 1
            else:
                self._state = EndpointState.STOPPING
                self._silence_run = 1
                self._resume_run = 0
                return self._maybe_end()
            return None

        if state is EndpointState.STOPPING:
            if voiced:
                self._resume_run += 1
                if self._resume_run >= self._resume_frames:
                    self._state = EndpointState.SPEAKING
                    self._last_voiced_end = index + 1
                    return None
            else:
                self._resume_run = 0
            # Until voice is back for resume_ms, the pause is still running.
            self._silence_run += 1
            return self._maybe_end()

        if state is EndpointState.QUIET:
            if voiced:
                self._state = EndpointState.STARTING
                self._onset = index
                self._voiced_count = 1
                self._gap_run = 0
                self._last_voiced_end = index + 1
                return self._maybe_start()
            return None

        # STARTING
        if voiced:
            self._voiced_count += 1
            self._gap_run = 0
            self._last_voiced_end = index + 1
            return self._maybe_start()
        self._gap_run += 1
        if self._gap_run > self._max_start_gap:
            self._state = EndpointState.QUIET
        return None

    def _maybe_start(self) -> SpeechStarted | None:
        if self._voiced_count < self._start_frames:
            return None
        self._state = EndpointState.SPEAKING
        return SpeechStarted(self._onset)

    def _maybe_end(self) -> SpeechEnded | None:
        if self._silence_run < self._silence_frames:
            return None
        self._state = EndpointState.QUIET
        return SpeechEnded(self._onset, self._last_voiced_end)
