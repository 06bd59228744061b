from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import openai
import pytest

from loadtest.standins.openai_server import (
    CHARS_PER_SECOND,
    Latency,
    StandinOpenAI,
    synthetic_voice,
)
from voice_agent.pipelines import build_pipeline
from voice_agent.providers.base import ProviderError, TextToSpeech
from voice_agent.providers.openai.client import make_client
from voice_agent.providers.openai.tts import OpenAITextToSpeech
from voice_agent.settings import Settings

SENTENCE = "Thanks for calling Acme Roofing, how can I help you today?"


async def test_streams_even_pcm_chunks_of_plausible_length(
    standin: StandinOpenAI, client: openai.AsyncOpenAI
) -> None:
    tts = OpenAITextToSpeech(client, model="tts-1", voice="alloy")
    assert isinstance(tts, TextToSpeech)
    assert tts.sample_rate == 24_000

    chunks = [chunk async for chunk in tts.synthesize(SENTENCE, voice="nova")]

    assert len(chunks) > 1
    assert all(len(chunk) % 2 == 0 and chunk for chunk in chunks)
    audio = np.frombuffer(b"".join(chunks), dtype="<i2")
    seconds = audio.size / tts.sample_rate
    assert seconds == pytest.approx(len(SENTENCE) / CHARS_PER_SECOND, abs=0.01)
    assert np.abs(audio).max() > 1000  # speech-like, not silence
    (request,) = standin.recorded("speech")
    assert request.body == {
        "model": "tts-1",
        "voice": "nova",
        "input": SENTENCE,
        "response_format": "pcm",
    }


async def test_unknown_voice_falls_back_to_the_default(
    standin: StandinOpenAI, client: openai.AsyncOpenAI
) -> None:
    tts = OpenAITextToSpeech(client, voice="shimmer")

    async for _chunk in tts.synthesize("Hello.", voice="en_US-joe-medium"):
        pass

    assert standin.recorded("speech")[0].body["voice"] == "shimmer"


async def test_odd_network_chunks_are_realigned_to_whole_samples() -> None:
    # Odd-sized, paced chunks arrive separately, so samples really are split in transit.
    latency = Latency(0, 0, 0, 0, tts_realtime_factor=20)
    async with StandinOpenAI(latency, speech_chunk_bytes=1001) as server:
        client = make_client(server.api_key, server.base_url, 2.0)
        tts = OpenAITextToSpeech(client)
        chunks = [chunk async for chunk in tts.synthesize("Hello there, how are you?")]
        await client.close()

    assert all(len(chunk) % 2 == 0 for chunk in chunks)
    assert len(chunks) > 5
    # Nothing lost or doubled at the splits: exactly the stand-in's signal, from its start.
    joined = b"".join(chunks)
    assert len(joined) == 2 * round(25 / CHARS_PER_SECOND * 24_000)
    assert joined == synthetic_voice()[: len(joined)]


async def test_first_audio_arrives_before_the_whole_sentence_is_made() -> None:
    latency = Latency(0, 0, 0, tts_first_byte_ms=50, tts_realtime_factor=10)
    async with StandinOpenAI(latency) as server:
        client = make_client(server.api_key, server.base_url, 2.0)
        started = time.perf_counter()
        first_at = None
        async for _chunk in OpenAITextToSpeech(client).synthesize(SENTENCE):
            first_at = first_at or time.perf_counter() - started
        total = time.perf_counter() - started
        await client.close()

    assert first_at is not None
    assert first_at >= 0.05
    # About 4.2 s of audio at 10x real time, streamed rather than delivered at the end.
    assert total > 0.45
    assert first_at < total / 3


@pytest.mark.parametrize(
    ("fault", "match"),
    [
        ({"status": 500}, "500"),
        ({"status": 429}, "429"),
        ({"status": None, "hang_s": 30.0}, "timed out"),
        ({"status": None, "stall_s": 30.0}, "timed out"),
    ],
    ids=["http-500", "rate-limited", "no-first-byte", "stalled-mid-stream"],
)
async def test_failures_become_provider_error_in_time(
    standin: StandinOpenAI,
    client_for: Callable[..., openai.AsyncOpenAI],
    fault: dict[str, Any],
    match: str,
) -> None:
    standin.fail("speech", **fault)
    tts = OpenAITextToSpeech(client_for(timeout=0.5), timeout=0.5)

    started = time.perf_counter()
    with pytest.raises(ProviderError, match=match) as raised:
        async for _chunk in tts.synthesize(SENTENCE):
            pass
    assert raised.value.stage == "tts"
    assert time.perf_counter() - started < 1.5


async def test_bad_key_becomes_provider_error(
    client_for: Callable[..., openai.AsyncOpenAI],
) -> None:
    tts = OpenAITextToSpeech(client_for(api_key="sk-wrong"))

    with pytest.raises(ProviderError, match="401"):
        async for _chunk in tts.synthesize("Hello."):
            pass


async def test_closing_the_cascade_pipeline_closes_each_stages_client(
    standin: StandinOpenAI,
) -> None:
    settings = Settings(
        agent_pipeline="cascade",
        openai_api_key=standin.api_key,
        openai_base_url=standin.base_url,
        fallback_offline_speech=False,  # no offline last resort: only clients to close here
    )
    pipeline = await build_pipeline(settings)
    # Each stage is its providers behind retries and breakers (#16): here the primary alone.
    tts = pipeline.tts.providers[0]  # type: ignore[attr-defined]
    assert isinstance(tts, OpenAITextToSpeech)
    assert [c async for c in tts.synthesize(SENTENCE)]  # the stage's pool has a connection

    await pipeline.aclose()

    for stage in (pipeline.stt, pipeline.dialogue, pipeline.tts):
        for provider in stage.providers:  # type: ignore[attr-defined]
            assert provider._client.is_closed()
