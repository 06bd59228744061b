"""The chat stream read from its raw bytes: SSE framing however the network splits it,
errors reported inside a 200 stream, a connection lost mid-reply, and a reply abandoned
by the caller (barge-in) closing its HTTP connection."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prompts import AgentDefinition
from voice_agent.providers.base import (
    ChatMessage,
    DialogueEvent,
    ProviderError,
    TextDelta,
    TokenUsage,
    ToolCall,
)
from voice_agent.providers.openai.client import make_client
from voice_agent.providers.openai.dialogue import OpenAIDialogueEngine, SSEEvents


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _text(text: str) -> bytes:
    return _event({"choices": [{"index": 0, "delta": {"content": text}}]})


class RawChatServer:
    """A loopback HTTP/1.1 server answering each request with the given body pieces
    as they are, then closing: the wire as the SDK's HTTP client sees it."""

    def __init__(self, pieces: list[bytes], *, declared_length: int | None = None) -> None:
        self.pieces = pieces
        self.declared_length = declared_length
        self.closed_by_client = asyncio.Event()
        self.hold = asyncio.Event()  # set to let a held reply end
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawChatServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        headers = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        if self.declared_length is not None:
            headers += b"content-length: %d\r\n" % self.declared_length
        else:
            headers += b"connection: close\r\n"
        writer.write(headers + b"\r\n")
        for piece in self.pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.005)
        if self.pieces and self.pieces[-1] == b"":  # hold the reply open
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    if await reader.read() == b"":
                        self.closed_by_client.set()
        writer.close()


@pytest.fixture
async def dialogue_on() -> AsyncIterator[Callable[[str], object]]:
    clients = []

    def make(base_url: str) -> object:
        client = make_client("sk-test", base_url, timeout=2.0)
        clients.append(client)
        agent = AgentDefinition(
            slug="a",
            name="Ava",
            direction="inbound",
            persona="",
            system_prompt="Be brief.",
            greeting="Hi.",
            goodbye="Bye.",
            fallback="Sorry?",
            tools=("end_call",),
        )
        return OpenAIDialogueEngine(client, timeout=2.0).start(agent, {})

    yield make
    for client in clients:
        await client.close()


async def test_events_split_across_reads_with_crlf_comments_and_tool_calls(
    dialogue_on: Callable[[str], object],
) -> None:
    body = (
        b": keep-alive comment\r\n\r\n"
        + _text("Hello").replace(b"\n", b"\r\n")
        + b"event: ignored\n"
        + _text(" there")
        + _event(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "c1",
                                    "function": {"name": "end_call", "arguments": '{"rea'},
                                }
                            ]
                        },
                    }
                ]
            }
        )
        + _event(
            {
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [{"index": 0, "function": {"arguments": 'son": "done"}'}}]
                        },
                        "finish_reason": "tool_calls",
                    }
                ]
            }
        )
        + _event({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}})
        + b"data: [DONE]\n\n"
    )
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    async with RawChatServer(pieces) as server:
        dialogue = dialogue_on(server.base_url)
        events = [e async for e in dialogue.respond([ChatMessage("user", "hi")])]

    assert events == [
        TextDelta("Hello"),
        TextDelta(" there"),
        ToolCall("c1", "end_call", {"reason": "done"}),
        # The usage chunk, last: what the session meters for this response.
        TokenUsage(12, 5, dialogue._model),  # type: ignore[attr-defined]
    ]
    assert (dialogue.usage.prompt_tokens, dialogue.usage.completion_tokens) == (12, 5)


async def test_error_inside_a_200_stream_becomes_provider_error(
    dialogue_on: Callable[[str], object],
) -> None:
    body = _text("I") + _event({"error": {"message": "overloaded", "type": "server_error"}})
    async with RawChatServer([body]) as server:
        dialogue = dialogue_on(server.base_url)
        received: list[DialogueEvent] = []
        with pytest.raises(ProviderError, match="overloaded") as raised:
            async for event in dialogue.respond([ChatMessage("user", "hi")]):
                received.append(event)
    assert raised.value.stage == "llm"
    assert received == [TextDelta("I")]


async def test_connection_lost_mid_reply_becomes_provider_error(
    dialogue_on: Callable[[str], object],
) -> None:
    sent = _text("I") + _text(" can")
    async with RawChatServer([sent], declared_length=len(sent) + 500) as server:
        dialogue = dialogue_on(server.base_url)
        received: list[DialogueEvent] = []
        with pytest.raises(ProviderError) as raised:
            async for event in dialogue.respond([ChatMessage("user", "hi")]):
                received.append(event)
    assert raised.value.stage == "llm"
    assert received == [TextDelta("I"), TextDelta(" can")]


async def test_abandoned_reply_closes_its_http_connection(
    dialogue_on: Callable[[str], object],
) -> None:
    async with RawChatServer([_text("I"), b""]) as server:
        dialogue = dialogue_on(server.base_url)
        replies = dialogue.respond([ChatMessage("user", "hi")])
        assert await anext(replies) == TextDelta("I")
        await replies.aclose()  # the caller barged in
        async with asyncio.timeout(2.0):
            await server.closed_by_client.wait()


def _framed(datas: list[bytes]) -> bytes:
    return b"".join(b"data: " + d + b"\n\n" for d in datas)


@given(
    datas=st.lists(
        st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b"\r" not in b),
        min_size=1,
        max_size=8,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_sse_events_are_the_same_however_the_bytes_are_split(
    datas: list[bytes], cuts: list[int]
) -> None:
    body = _framed(datas)
    bounds = sorted({0, len(body), *(c for c in cuts if c < len(body))})
    events = SSEEvents()
    seen: list[bytes] = []
    for start, end in itertools.pairwise(bounds):
        seen.extend(events.feed(body[start:end]))
    # Only the one space after "data:" is framing; spaces of the value itself are kept.
    assert seen == datas


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert SSEEvents().feed(b"data: a\ndata:b\n\nid: 3\ndata:  c\n\n") == [b"a\nb", b" c"]
