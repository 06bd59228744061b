from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import openai
import pytest
import soundfile

from loadtest.standins.openai_server import StandinOpenAI
from voice_agent.providers.base import ProviderError, SpeechToText
from voice_agent.providers.openai.stt import OpenAISpeechToText

TONE = (np.sin(np.arange(4000) / 8000 * 2 * np.pi * 440) * 8000).astype(np.int16)


async def test_uploads_the_turn_as_a_pcm16_wav_and_returns_the_text(
    standin: StandinOpenAI, client: openai.AsyncOpenAI
) -> None:
    standin.add_script("  I'd like a quote for my roof.  ")
    stt = OpenAISpeechToText(client, model="whisper-1")
    assert isinstance(stt, SpeechToText)

    transcript = await stt.transcribe(TONE, 8000)

    assert transcript.text == "I'd like a quote for my roof."
    assert 0 < transcript.duration_s < 2
    (request,) = standin.recorded("transcriptions")
    assert request.path == "/v1/audio/transcriptions"
    assert request.body["model"] == "whisper-1"
    assert request.body["language"] == "en"
    assert request.body["filename"].endswith(".wav")
    assert request.file is not None
    samples, rate = soundfile.read(io.BytesIO(request.file), dtype="int16")
    info = soundfile.info(io.BytesIO(request.file))
    assert (rate, info.subtype, info.channels) == (8000, "PCM_16", 1)
    np.testing.assert_array_equal(samples, TONE)


async def test_server_error_becomes_provider_error(
    standin: StandinOpenAI, client: openai.AsyncOpenAI
) -> None:
    standin.fail("transcriptions", status=500)

    with pytest.raises(ProviderError, match="500") as raised:
        await OpenAISpeechToText(client).transcribe(TONE, 8000)
    assert raised.value.stage == "stt"


async def test_hang_past_the_timeout_becomes_provider_error_in_time(
    standin: StandinOpenAI, client_for: Callable[..., openai.AsyncOpenAI]
) -> None:
    standin.fail("transcriptions", status=None, hang_s=30)
    stt = OpenAISpeechToText(client_for(timeout=0.5), timeout=0.5)

    started = time.perf_counter()
    with pytest.raises(ProviderError, match="timed out"):
        await stt.transcribe(TONE, 8000)
    assert time.perf_counter() - started < 1.5


async def test_bad_key_becomes_provider_error(
    standin: StandinOpenAI, client_for: Callable[..., openai.AsyncOpenAI]
) -> None:
    stt = OpenAISpeechToText(client_for(api_key="sk-wrong"))

    with pytest.raises(ProviderError, match="401"):
        await stt.transcribe(TONE, 8000)
    assert standin.recorded("transcriptions") == []


async def test_unreachable_server_becomes_provider_error() -> None:
    async with StandinOpenAI() as server:
        base_url = server.base_url  # a port nobody listens on once stopped
    client = openai.AsyncOpenAI(api_key="sk-x", base_url=base_url, max_retries=0, timeout=1)

    with pytest.raises(ProviderError) as raised:
        await OpenAISpeechToText(client).transcribe(TONE, 8000)
    assert raised.value.stage == "stt"
