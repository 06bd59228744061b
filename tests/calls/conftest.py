"""Fixtures for whole calls on the cascade pipeline: the OpenAI stand-in on loopback with a
fixture-aware transcriber, and a runner that serves the app and places one call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from loadtest.fixtures import Utterance, load_script
from loadtest.standins.openai_server import Latency, StandinOpenAI
from tests.calls.cascade_support import FixtureTranscriber, RunCall, call_runner
from voice_agent.settings import Settings


@pytest.fixture(scope="session")
def utterances() -> dict[str, Utterance]:
    return {u.id: u for u in load_script()}


@pytest.fixture
def transcriber(utterances: dict[str, Utterance]) -> FixtureTranscriber:
    return FixtureTranscriber(utterances.values())


@pytest.fixture
async def standin(transcriber: FixtureTranscriber) -> AsyncIterator[StandinOpenAI]:
    async with StandinOpenAI(Latency.none(), transcriber=transcriber) as server:
        yield server


@pytest.fixture
def cascade_settings(
    cascade_settings: Callable[..., Settings],
) -> Callable[..., Settings]:
    """The suite's cascade settings without the post-call analysis: these tests count and
    read the dialogue's chat requests, and the analysis adds one after each call (its own
    tests are in tests/analysis)."""

    def make(**overrides: object) -> Settings:
        return cascade_settings(**({"analysis_enabled": False} | overrides))

    return make


@pytest.fixture
def run_call(cascade_settings: Callable[..., Settings]) -> RunCall:
    """`await run_call(turns, ...)`: serve the app, place one call through it, and return
    what the caller got, the stored call and /metrics."""

    return call_runner(cascade_settings)
