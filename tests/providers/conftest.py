"""Fixtures for provider tests: the loopback OpenAI stand-in and a client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import openai
import pytest

from loadtest.standins.openai_server import Latency, StandinOpenAI
from prompts import AgentDefinition
from voice_agent.providers.openai.client import make_client


@pytest.fixture
async def standin() -> AsyncIterator[StandinOpenAI]:
    async with StandinOpenAI(Latency.none()) as server:
        yield server


@pytest.fixture
async def client_for(
    standin: StandinOpenAI,
) -> AsyncIterator[Callable[..., openai.AsyncOpenAI]]:
    made: list[openai.AsyncOpenAI] = []

    def make(timeout: float = 2.0, api_key: str | None = None) -> openai.AsyncOpenAI:
        made.append(make_client(api_key or standin.api_key, standin.base_url, timeout))
        return made[-1]

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def client(client_for: Callable[..., openai.AsyncOpenAI]) -> openai.AsyncOpenAI:
    return client_for()


@pytest.fixture
def agent() -> AgentDefinition:
    return AgentDefinition(
        slug="roofing-intake",
        name="Ava",
        direction="inbound",
        persona="friendly",
        system_prompt="You are {agent_name} at {company}. The caller is {caller_name}.",
        greeting="Hi, this is Ava.",
        goodbye="Goodbye!",
        fallback="Sorry?",
        variables={"agent_name": "Ava", "company": "Acme"},
    )
