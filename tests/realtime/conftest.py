"""Whole calls on the realtime pipeline: the Realtime stand-in on loopback (through the
openai SDK's websocket client), the OpenAI HTTP stand-in for the cached phrases, and a
runner that serves the app and places one call over the real media websocket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from loadtest.fixtures import Utterance, load_script
from loadtest.standins.fixture_transcriber import FixtureTranscriber
from loadtest.standins.openai_server import StandinOpenAI
from loadtest.standins.realtime_server import RealtimeLatency, StandinRealtime
from tests.calls.cascade_support import RunCall, call_runner
from voice_agent.settings import Settings

#: Fast, but with a first-audio latency the tests can tell from our own share.
LATENCY = RealtimeLatency(response_ms=150.0, transcription_ms=50.0, realtime_factor=8.0)


@pytest.fixture(scope="session")
def utterances() -> dict[str, Utterance]:
    return {u.id: u for u in load_script()}


@pytest.fixture
async def realtime(
    utterances: dict[str, Utterance], standin: StandinOpenAI
) -> AsyncIterator[StandinRealtime]:
    transcriber = FixtureTranscriber(utterances.values())
    async with StandinRealtime(
        LATENCY, transcriber=transcriber.samples, api_key=standin.api_key
    ) as server:
        yield server


@pytest.fixture
def realtime_settings(
    cascade_settings: Callable[..., Settings], realtime: StandinRealtime
) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "agent_pipeline": "realtime",
            "openai_realtime_url": realtime.url,
            "analysis_enabled": False,
        }
        return cascade_settings(**(values | overrides))

    return make


@pytest.fixture
def run_call(realtime_settings: Callable[..., Settings]) -> RunCall:
    return call_runner(realtime_settings)
