"""Per-request and per-chunk costs of the provider clients (run with --benchmark-enable).

Each pair measures the path the cascade used before and the one it uses now, so the
gain is read off one table: `--benchmark-group-by=group`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from openai._utils import async_maybe_transform
from openai.types.chat import completion_create_params

from voice_agent.providers.base import ChatMessage, ToolCall
from voice_agent.providers.openai.dialogue import to_openai_messages
from voice_agent.providers.tools import tool_specs
from voice_agent.providers.watchdog import StallWatchdog

CHUNKS = 100
_PARAMS = completion_create_params.CompletionCreateParamsStreaming


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _runner(
    loop: asyncio.AbstractEventLoop, work: Callable[[], Coroutine[Any, Any, object]]
) -> Callable[[], object]:
    return lambda: loop.run_until_complete(work())


def _history(turns: int = 6) -> list[dict[str, Any]]:
    history: list[ChatMessage] = []
    for _ in range(turns):
        history.append(ChatMessage("user", "I'd like to book a table for four next Tuesday."))
        history.append(ChatMessage("assistant", "Of course. What time would suit you best?"))
    history.append(ChatMessage("assistant", None, tool_calls=[ToolCall("c1", "end_call", {})]))
    history.append(ChatMessage("tool", "ending the call", tool_call_id="c1"))
    system = {"role": "system", "content": "You are the receptionist. " * 40}
    return [system, *to_openai_messages(history)]


def _request(messages: object, tools: object | None) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools is not None:
        request["tools"] = tools
    return request


@pytest.mark.benchmark(group="chat request body, 15 messages")
def test_sdk_transforms_history_and_tools(
    benchmark: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    """Before: history and tools as arguments, walked by the SDK on every request."""
    request = _request(_history(), tool_specs(["end_call", "transfer_call"]))
    body = benchmark(_runner(loop, lambda: async_maybe_transform(request, _PARAMS)))
    assert body["messages"] == request["messages"]  # the walk changes nothing in them


@pytest.mark.benchmark(group="chat request body, 15 messages")
def test_plain_history_and_tools_in_extra_body(
    benchmark: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    """Now: what the SDK still walks when history and tools go in `extra_body`."""
    request = _request((), None)
    body = benchmark(_runner(loop, lambda: async_maybe_transform(request, _PARAMS)))
    assert body["messages"] == []


async def _chunks_with_timeout_each() -> int:
    received = 0
    for _ in range(CHUNKS):
        async with asyncio.timeout(10.0):
            await asyncio.sleep(0)
        received += 1
    return received


async def _chunks_with_watchdog() -> int:
    received = 0
    async with StallWatchdog(10.0) as dog:
        for _ in range(CHUNKS):
            dog.waiting()
            await asyncio.sleep(0)
            dog.arrived()
            received += 1
    return received


@pytest.mark.benchmark(group=f"stall bound over {CHUNKS} streamed chunks")
def test_asyncio_timeout_per_chunk(
    benchmark: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    assert benchmark(_runner(loop, _chunks_with_timeout_each)) == CHUNKS


@pytest.mark.benchmark(group=f"stall bound over {CHUNKS} streamed chunks")
def test_one_watchdog_per_stream(
    benchmark: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    assert benchmark(_runner(loop, _chunks_with_watchdog)) == CHUNKS
