"""Fixtures for whole calls on the cascade pipeline: the OpenAI stand-in on loopback with a
fixture-aware transcriber, and a runner that serves the app and places one call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from loadtest.caller import CallerTurn, place_call
from loadtest.fixtures import Utterance, load_script
from loadtest.standins.openai_server import Latency, StandinOpenAI
from tests.calls.cascade_support import CallRun, FixtureTranscriber, RunCall
from tests.conftest import TWILIO_TOKEN
from voice_agent.demo import running_server
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

    async def run(
        turns: list[CallerTurn],
        *,
        settings: Settings | None = None,
        hangup_wait_s: float = 3.0,
        reply_timeout_s: float = 10.0,
        call_sid: str | None = None,
    ) -> CallRun:
        settings = settings or cascade_settings()
        async with running_server(settings) as runtime:
            result = await place_call(
                settings.public_base_url,
                turns,
                auth_token=TWILIO_TOKEN,
                hangup_wait_s=hangup_wait_s,
                reply_timeout_s=reply_timeout_s,
                call_sid=call_sid,
            )
            assert await runtime.writes.flush(5.0)
            stored = await runtime.calls.get_call(result.call_sid)
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(settings.public_base_url + "/metrics")).text
        assert result.error is None, result.error
        assert stored is not None
        return CallRun(result, stored, metrics)

    return run
