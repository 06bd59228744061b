"""Fixtures shared by the whole suite: hermetic settings, the loaded offline models, and a
running server on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis.asyncio

from loadtest.standins.openai_server import Latency, StandinOpenAI
from voice_agent.demo import free_port
from voice_agent.providers.base import Pipeline
from voice_agent.settings import Settings, load_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TWILIO_TOKEN = "test-auth-token-0123456789abcdef"
TWILIO_ACCOUNT = "AC" + "1" * 32


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from each test, never from the machine running it."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="session")
def offline_pipeline() -> Iterator[Pipeline]:
    """The bundled Whisper and Piper models, loaded once for the session.

    On a pool of its own, not the process-wide one: tests of that pool shut it down."""
    from voice_agent.providers.offline.piper import PiperTextToSpeech
    from voice_agent.providers.offline.playbook import PlaybookEngine
    from voice_agent.providers.offline.whisper import WhisperSpeechToText

    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="inference")
    stt = WhisperSpeechToText(pool)
    tts = PiperTextToSpeech(pool)
    stt.warm_up()
    tts.warm_up()
    try:
        yield Pipeline("offline", stt, PlaybookEngine(), tts)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def make_settings(tmp_path: os.PathLike[str]) -> Callable[..., Settings]:
    """Settings for one test server: its own SQLite file and port, signed webhooks."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": f"sqlite:///{tmp_path}/voice_agent.db",
            "public_base_url": f"http://127.0.0.1:{free_port()}",
            "twilio_auth_token": TWILIO_TOKEN,
            "data_dir": str(tmp_path),
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
async def standin() -> AsyncIterator[StandinOpenAI]:
    """The OpenAI stand-in on loopback, answering at once. Folders may override it."""
    async with StandinOpenAI(Latency.none()) as server:
        yield server


@pytest.fixture
def cascade_settings(
    make_settings: Callable[..., Settings], standin: StandinOpenAI
) -> Callable[..., Settings]:
    """Settings for a cascade server whose OpenAI is the stand-in: fast, no models."""

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "openai_api_key": standin.api_key,
            "openai_base_url": standin.base_url,
            "agent_pipeline": "cascade",
            # Loading the offline models takes seconds of CPU per server start; the
            # tests of the offline last resort turn it on.
            "fallback_offline_speech": False,
        }
        values.update(overrides)
        return make_settings(**values)

    return make


@pytest.fixture
async def redis_client() -> AsyncIterator[redis.asyncio.Redis]:
    """A client of the real Redis on loopback."""
    client = redis.asyncio.Redis(host="127.0.0.1", port=6379)
    try:
        yield client
    finally:
        await client.aclose()
