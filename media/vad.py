"""Voice activity per frame, by WebRTC's VAD (a small C classifier, ~µs per frame).

WebRTC's VAD keeps answering "speech" for 60-100 ms after speech has fallen to the
noise floor (its hangover), which would make every turn end that much later. A frame
the VAD calls speech is therefore also required to be louder than ``min_level_dbfs``;
the check costs about a microsecond and runs only on frames the VAD calls speech.

With ``adaptive=True`` that level is not fixed but follows the line's noise floor
(``media.noise_floor``): a quiet caller on a quiet line is heard, and line noise that
the VAD takes for speech is not. Then every frame's energy is measured (the floor has
to see the noise), a microsecond more per frame.
"""

from __future__ import annotations

import _webrtcvad  # the C half of webrtcvad-wheels; see VoiceActivity.is_speech for why
import numpy as np

from media.noise_floor import NoiseFloor

__all__ = ["FRAME_MS_CHOICES", "SAMPLE_RATE_CHOICES", "Frame", "VoiceActivity"]

SAMPLE_RATE_CHOICES = (8000, 16000, 32000, 48000)
FRAME_MS_CHOICES = (10, 20, 30)

Frame = bytes | bytearray | memoryview | np.ndarray


class VoiceActivity:
    """Classifies 10, 20 or 30 ms frames of mono int16 audio as speech or not.

    ``aggressiveness`` 0 lets the most through as speech, 3 filters hardest. A frame may
    be bytes or a C-contiguous int16 array (straight from ``media.mulaw.decode``).
    """

    __slots__ = (
        "_aggressiveness",
        "_energy_floor",
        "_frame_sizes",
        "_noise",
        "_sample_rate",
        "_vad",
    )

    def __init__(
        self,
        aggressiveness: int = 2,
        sample_rate: int = 8000,
        min_level_dbfs: float | None = -50.0,
        adaptive: bool = False,
        margin_db: float = 6.0,
    ) -> None:
        if isinstance(aggressiveness, bool) or aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0, 1, 2 or 3, got {aggressiveness!r}")
        if isinstance(sample_rate, bool) or sample_rate not in SAMPLE_RATE_CHOICES:
            raise ValueError(
                f"sample_rate must be one of {SAMPLE_RATE_CHOICES} Hz, got {sample_rate!r}"
            )
        if min_level_dbfs is not None and not -96.0 <= min_level_dbfs <= 0.0:
            raise ValueError(f"min_level_dbfs must be in [-96, 0] or None, got {min_level_dbfs}")
        self._aggressiveness = aggressiveness
        self._sample_rate = sample_rate
        self._frame_sizes = frozenset(sample_rate * ms // 1000 * 2 for ms in FRAME_MS_CHOICES)
        # Mean square of a full-scale-relative level, in int16 units: compared against
        # sum(x*x) / n without taking a square root or a log per frame.
        self._energy_floor = (
            0.0 if min_level_dbfs is None else (32768.0 * 10 ** (min_level_dbfs / 20)) ** 2
        )
        # Adaptive: min_level_dbfs (if given) is only the lowest the gate may go.
        self._noise = (
            NoiseFloor(margin_db, -62.0 if min_level_dbfs is None else min_level_dbfs)
            if adaptive
            else None
        )
        self._vad = _webrtcvad.create()
        _webrtcvad.init(self._vad)
        _webrtcvad.set_mode(self._vad, aggressiveness)

    @property
    def aggressiveness(self) -> int:
        return self._aggressiveness

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    def frame_bytes(self, frame_ms: int) -> int:
        """Size in bytes of one int16 frame of ``frame_ms`` at this sample rate."""
        if frame_ms not in FRAME_MS_CHOICES:
            raise ValueError(f"frame_ms must be one of {FRAME_MS_CHOICES}, got {frame_ms!r}")
        return self._sample_rate * frame_ms // 1000 * 2

    def is_speech(self, frame: Frame) -> bool:
        """True when the frame holds speech."""
        # webrtcvad.Vad.is_speech takes len(buf) / 2 as the sample count, which for an
        # int16 array is half the frame: the classifier would silently see only its
        # first half. So the sample count is worked out here from the byte size.
        if isinstance(frame, np.ndarray):
            if frame.dtype != np.int16:
                raise ValueError(f"a frame array must be int16, got {frame.dtype}")
            size = frame.nbytes
        else:
            size = len(frame)
        if size not in self._frame_sizes:
            raise ValueError(
                f"a frame must be one of {sorted(self._frame_sizes)} bytes (10/20/30 ms of "
                f"int16 at {self._sample_rate} Hz), got {size}"
            )
        samples = size >> 1
        if self._noise is not None:
            pcm = frame if isinstance(frame, np.ndarray) else np.frombuffer(frame, dtype=np.int16)
            as_float = pcm.astype(np.float32)
            mean_square = float(np.dot(as_float, as_float)) / samples
            loud = mean_square > self._noise.threshold(mean_square)
            # The VAD sees every frame either way: its own noise model adapts on them.
            voiced = _webrtcvad.process(self._vad, self._sample_rate, frame, samples)
            return bool(voiced) and loud
        if not _webrtcvad.process(self._vad, self._sample_rate, frame, samples):
            return False
        if not self._energy_floor:
            return True
        pcm = frame if isinstance(frame, np.ndarray) else np.frombuffer(frame, dtype=np.int16)
        as_float = pcm.astype(np.float32)
        return float(np.dot(as_float, as_float)) > self._energy_floor * samples
