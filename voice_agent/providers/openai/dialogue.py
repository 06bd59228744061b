"""The agent's side of the conversation through streamed Chat Completions with tools."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import openai
import orjson

from prompts import AgentDefinition
from prompts.voices import language_instruction
from voice_agent.providers.base import (
    ChatMessage,
    DialogueEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
)
from voice_agent.providers.openai.client import REQUEST_ERRORS, ClientStage, provider_error
from voice_agent.providers.tools import tool_specs
from voice_agent.providers.watchdog import StallWatchdog

logger = logging.getLogger(__name__)


def to_openai_messages(history: list[ChatMessage]) -> list[dict[str, Any]]:
    """Chat history in the Chat Completions message shape (assistant tool calls carry
    their arguments re-encoded as JSON; tool results refer back by call id)."""
    messages: list[dict[str, Any]] = []
    for message in history:
        if message.role == "tool":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id or "",
                    "content": message.content or "",
                }
            )
        elif message.role == "assistant" and message.tool_calls:
            messages.append(
                {
                    "role": "assistant",
                    # Null content is how the API expects a tool-only turn.
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {
                                "name": call.name,
                                "arguments": json.dumps(call.arguments),
                            },
                        }
                        for call in message.tool_calls
                    ],
                }
            )
        else:
            messages.append({"role": message.role, "content": message.content or ""})
    return messages


@dataclass(slots=True)
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: str = ""


class ToolCallAccumulator:
    """Reassembles streamed tool-call fragments, keyed by their index (§5.1 of the
    integration notes): id and name arrive once, arguments arrive in pieces."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}

    def add(self, index: int, call_id: str | None, name: str | None, arguments: str | None) -> None:
        partial = self._calls.get(index)
        if partial is None:
            partial = self._calls[index] = _PartialCall()
        if call_id:
            partial.id = call_id
        if name:
            partial.name = name
        if arguments:
            partial.arguments += arguments

    def finish(self) -> list[ToolCall]:
        calls: list[ToolCall] = []
        for index in sorted(self._calls):
            partial = self._calls[index]
            if not partial.name:
                logger.warning("dropping tool call %d without a name", index)
                continue
            calls.append(
                ToolCall(
                    id=partial.id or f"call_{index}",
                    name=partial.name,
                    arguments=_parse_arguments(partial.name, partial.arguments),
                )
            )
        return calls


def _parse_arguments(name: str, raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError:
        logger.warning("tool call %s: arguments are not valid JSON: %.200r", name, raw)
        return {}
    if not isinstance(arguments, dict):
        logger.warning("tool call %s: arguments are not a JSON object: %.200r", name, raw)
        return {}
    return arguments


@dataclass(slots=True)
class Usage:
    """Tokens billed for one call's dialogue so far."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0


class OpenAIDialogue:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        timeout: float,
        system_prompt: str,
        tools: list[dict[str, Any]],
        temperature: float | None = None,
    ) -> None:
        # The raw byte stream: the SDK would otherwise validate a pydantic
        # ChatCompletionChunk for every token (~25 µs each); orjson reads the few fields
        # used here from the SSE `data:` lines directly.
        self._streaming = client.chat.completions.with_streaming_response
        self._model = model
        self._timeout = timeout
        self._system = {"role": "system", "content": system_prompt}
        self._tools = tools
        self._temperature = temperature
        self.usage = Usage()

    async def respond(self, history: list[ChatMessage]) -> AsyncGenerator[DialogueEvent, None]:
        # The history and tools are already plain API-shaped JSON. Given as arguments, the
        # SDK would walk them against its TypedDict unions on every request (~2.5 ms for
        # a 15-message history, growing each turn); `extra_body` is sent as it is, and
        # its keys replace the (empty) arguments of the same name in the request body.
        plain: dict[str, Any] = {"messages": [self._system, *to_openai_messages(history)]}
        if self._tools:
            plain["tools"] = self._tools
        request: dict[str, Any] = {
            "model": self._model,
            "messages": (),
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": self._timeout,
            "extra_body": plain,
        }
        if self._temperature is not None:
            request["temperature"] = self._temperature
        calls = ToolCallAccumulator()
        self.usage.requests += 1
        billed = (self.usage.prompt_tokens, self.usage.completion_tokens)
        try:
            # Bounds the time to the response headers, then to each network read after
            # it, so a server that answers and then says nothing is caught too.
            async with StallWatchdog(self._timeout) as watchdog:
                watchdog.waiting()
                async with self._streaming.create(**request) as response:
                    watchdog.arrived()
                    http = response.http_response
                    pieces = http.aiter_bytes().__aiter__()
                    events = SSEEvents()
                    while True:
                        watchdog.waiting()
                        try:
                            piece = await anext(pieces)
                        except StopAsyncIteration:
                            break
                        finally:
                            watchdog.arrived()
                        for data in events.feed(piece):
                            if data == b"[DONE]":
                                # The last event; the body is still read to its end so
                                # the connection goes back to the pool.
                                continue
                            for text in self._chunk(orjson.loads(data), calls, http.request):
                                yield TextDelta(text)
        except REQUEST_ERRORS as exc:
            raise provider_error("llm", exc) from exc
        for call in calls.finish():
            yield call
        input_tokens = self.usage.prompt_tokens - billed[0]
        output_tokens = self.usage.completion_tokens - billed[1]
        if input_tokens or output_tokens:
            yield TokenUsage(input_tokens, output_tokens, self._model)

    def _chunk(
        self, chunk: dict[str, Any], calls: ToolCallAccumulator, request: object
    ) -> list[str]:
        """The text in one streamed chunk; its tool-call fragments go to `calls`."""
        error = chunk.get("error")
        if error:
            # An error reported inside a 200 stream, as the SDK would raise it.
            message = error.get("message") if isinstance(error, dict) else None
            raise openai.APIError(
                message if isinstance(message, str) and message else "error in the stream",
                request,  # type: ignore[arg-type]
                body=error,
            )
        usage = chunk.get("usage")
        if usage:
            self.usage.prompt_tokens += usage.get("prompt_tokens") or 0
            self.usage.completion_tokens += usage.get("completion_tokens") or 0
        texts: list[str] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            for fragment in delta.get("tool_calls") or ():
                function = fragment.get("function") or {}
                calls.add(
                    fragment.get("index", 0),
                    fragment.get("id"),
                    function.get("name"),
                    function.get("arguments"),
                )
            # A refusal is still what the agent says to the caller.
            text = delta.get("content") or delta.get("refusal")
            if text:
                texts.append(text)
            if choice.get("finish_reason") == "length":
                logger.warning("reply cut off at the token limit")
        return texts


class SSEEvents:
    """Server-sent events from network pieces: the joined `data:` lines of each event
    (events end at a blank line; other fields and comments are not used by the API)."""

    __slots__ = ("_data", "_partial")

    def __init__(self) -> None:
        self._partial = b""
        self._data: list[bytes] = []

    def feed(self, piece: bytes) -> list[bytes]:
        lines = (self._partial + piece).split(b"\n") if self._partial else piece.split(b"\n")
        self._partial = lines.pop()
        done: list[bytes] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    done.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
        return done


class OpenAIDialogueEngine(ClientStage):
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str = "gpt-4o",
        timeout: float = 10.0,
        temperature: float | None = None,
    ) -> None:
        self._client = client
        # Resolved at start-up: the SDK imports its resource modules on first use, and
        # start-up's objects are the ones frozen out of the garbage collector's way.
        self._warm = client.chat.completions.with_streaming_response
        self._model = model
        self._timeout = timeout
        self._temperature = temperature

    def start(self, agent: AgentDefinition, variables: Mapping[str, str]) -> OpenAIDialogue:
        return OpenAIDialogue(
            self._client,
            self._model,
            self._timeout,
            system_prompt=agent.render(agent.system_prompt, variables)
            + language_instruction(agent.language),
            tools=tool_specs(agent.tools),
            temperature=self._temperature,
        )
