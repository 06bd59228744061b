"""Per-request and per-chunk costs of the provider clients (run with --benchmark-enable).

Each pair measures the path the cascade used before and the one it uses now, so the
gain is read off one table: `--benchmark-group-by=group`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx2
import openai
import orjson
import pytest
from openai._streaming import AsyncStream
from openai._utils import async_maybe_transform
from openai.types.chat import ChatCompletionChunk, completion_create_params

from voice_agent.providers.base import ChatMessage, ToolCall
from voice_agent.providers.openai.dialogue import (
    OpenAIDialogue,
    SSEEvents,
    ToolCallAccumulator,
    to_openai_messages,
)
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


def _chat_stream_body(tokens: int = CHUNKS) -> bytes:
    """A streamed reply as the API sends it: one SSE event per token, usage, [DONE]."""
    events: list[bytes] = []
    for n in range(tokens):
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "system_fingerprint": "fp_1",
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": f" word{n}"},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
            "usage": None,
        }
        events.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    usage = {"prompt_tokens": 100, "completion_tokens": tokens, "total_tokens": 100 + tokens}
    events.append(b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)


def _network_pieces(body: bytes, size: int = 512) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.benchmark(group=f"chat stream parse, {CHUNKS} tokens")
def test_sdk_chunk_models_per_token(
    benchmark: pytest.FixtureRequest, loop: asyncio.AbstractEventLoop
) -> None:
    """Before: the SDK's AsyncStream, one pydantic ChatCompletionChunk per token."""
    client = openai.AsyncOpenAI(api_key="sk-bench", base_url="http://127.0.0.1:9/v1")
    body = _chat_stream_body()

    async def parse() -> int:
        response = httpx2.Response(
            200,
            content=body,
            headers={"content-type": "text/event-stream"},
            request=httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions"),
        )
        stream = AsyncStream(cast_to=ChatCompletionChunk, response=response, client=client)
        words = 0
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    words += 1
        return words

    assert benchmark(_runner(loop, parse)) == CHUNKS


@pytest.mark.benchmark(group=f"chat stream parse, {CHUNKS} tokens")
def test_sse_lines_read_with_orjson(benchmark: pytest.FixtureRequest) -> None:
    """Now: SSE `data:` lines split from the raw bytes, the fields read with orjson."""
    dialogue = OpenAIDialogue(
        openai.AsyncOpenAI(api_key="sk-bench", base_url="http://127.0.0.1:9/v1"),
        "gpt-4o",
        10.0,
        system_prompt="",
        tools=[],
    )
    pieces = _network_pieces(_chat_stream_body())

    def parse() -> int:
        events = SSEEvents()
        calls = ToolCallAccumulator()
        words = 0
        for piece in pieces:
            for data in events.feed(piece):
                if data != b"[DONE]":
                    words += len(dialogue._chunk(orjson.loads(data), calls, None))
        return words

    assert benchmark(parse) == CHUNKS
