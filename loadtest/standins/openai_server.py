"""A stand-in for the OpenAI HTTP API on loopback, with set latencies.

It speaks the real wire format of the three endpoints the voice agent uses
(transcriptions, streamed chat completions with tool calls, PCM speech), so the
agent runs against it through the unmodified `openai` SDK. Replies are scripted,
latencies are chosen, failures can be switched on per endpoint, and every request is
recorded for assertions. It is cheap enough for a few hundred concurrent calls on one
core: the speech audio is computed once and served as slices.

Stands alone: imports nothing from the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from loadtest.standins.embedded import EmbeddedServer
from loadtest.standins.structured import structured_reply

#: `response_format="pcm"`: headerless 24 kHz signed 16-bit little-endian mono.
SPEECH_RATE = 24_000
#: How fast the synthetic voice "speaks", in characters of input per second of audio.
CHARS_PER_SECOND = 14.0
#: Audio is streamed in pieces of this length (OpenAI's chunking is similar in size).
SPEECH_CHUNK_S = 0.1

ENDPOINTS = ("transcriptions", "chat", "speech")
#: Ways a structured (json_schema) reply can be scripted to go wrong, one reply each.
STRUCTURED_FAULTS = ("not-json", "wrong-shape")


@dataclass(frozen=True, slots=True)
class Latency:
    """How slow the stand-in is, per endpoint. The defaults are typical of the real API."""

    stt_ms: float = 350.0
    llm_first_token_ms: float = 400.0
    #: Between streamed tokens (and tool-call argument fragments).
    llm_token_ms: float = 20.0
    tts_first_byte_ms: float = 250.0
    #: Seconds of audio produced per second of wall time once the first byte is out.
    tts_realtime_factor: float = 5.0

    @classmethod
    def none(cls) -> Latency:
        """As fast as possible (for functional tests)."""
        return cls(0.0, 0.0, 0.0, 0.0, math.inf)


@dataclass(frozen=True, slots=True)
class ScriptedToolCall:
    name: str
    #: Sent JSON-encoded; a string is sent verbatim (to script malformed arguments).
    arguments: Mapping[str, Any] | str = field(default_factory=dict)

    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return orjson.dumps(self.arguments).decode()


@dataclass(frozen=True, slots=True)
class Reply:
    """What the "model" answers: text (streamed token by token), then tool calls."""

    text: str = ""
    tool_calls: tuple[ScriptedToolCall, ...] = ()


#: (messages, tools) as sent in the request body -> the reply to stream.
Responder = Callable[[list[dict[str, Any]], list[dict[str, Any]]], Reply]
#: Uploaded audio file bytes -> transcript text.
Transcriber = Callable[[bytes], str]


@dataclass(slots=True)
class Failure:
    """An injected fault on one endpoint."""

    #: Answer with this HTTP status instead of a result (None: answer normally).
    status: int | None = 500
    #: Wait this long before answering at all (headers included).
    hang_s: float = 0.0
    #: For streams: pause this long after the first piece of content.
    stall_s: float = 0.0
    #: How many requests it applies to (None: until cleared).
    times: int | None = None
    #: With a status of 429 (or 503): the Retry-After header, in seconds.
    retry_after_s: float | None = None
    #: For streams: stall this long after the headers, before any content (the first
    #: token or audio byte never comes).
    first_stall_s: float = 0.0
    #: For streams: after this many content pieces the connection is cut mid-stream.
    cut_after: int | None = None


#: What `fault_rate` picks from, evenly: an error, a rate limit, a hang before any
#: answer, a first token that never comes, a stream cut mid-way.
RANDOM_FAULTS = (
    Failure(status=500),
    Failure(status=429, retry_after_s=0.2),
    Failure(status=None, hang_s=4.0),
    Failure(status=None, first_stall_s=4.0),
    Failure(status=None, cut_after=2),
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    endpoint: str
    path: str
    #: JSON body, or the non-file multipart fields plus "filename" and "content_type".
    body: Mapping[str, Any]
    #: The uploaded audio, for transcriptions.
    file: bytes | None = None


# --- default behaviour ---------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z0-9']+")
_GOODBYE = re.compile(r"\b(?:good\s*bye|bye)\b", re.IGNORECASE)
# Roughly how a tokenizer cuts English: words with their leading space, punctuation alone.
_TOKEN = re.compile(r"\s*[A-Za-z0-9']+|\s*[^\sA-Za-z0-9']|\s+$")


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def tool_names(tools: Iterable[Mapping[str, Any]]) -> set[str]:
    return {
        tool["function"]["name"]
        for tool in tools
        if tool.get("type") == "function" and isinstance(tool.get("function"), dict)
    }


def default_responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
    """Says goodbye (and ends the call, if allowed) when the caller does; otherwise
    echoes a few of the caller's words in a two-sentence reply."""
    if messages and messages[-1].get("role") == "tool":
        return Reply("All right.")
    said = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    if _GOODBYE.search(said):
        calls = (
            (ScriptedToolCall("end_call", {"reason": "caller said goodbye"}),)
            if "end_call" in tool_names(tools)
            else ()
        )
        return Reply("Thanks for calling. Goodbye!", calls)
    words = _WORD.findall(said)[:4]
    echo = " ".join(words) if words else "nothing yet"
    return Reply(f"I heard you say {echo}. Could you tell me a little more about that?")


def tokenize(text: str) -> list[str]:
    tokens = _TOKEN.findall(text)
    return tokens if "".join(tokens) == text else [text]


def split_arguments(arguments: str, size: int = 6) -> list[str]:
    """Cut a JSON string into token-sized fragments, the way the API streams arguments."""
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def synthetic_voice(seconds: float = 4.0, rate: int = SPEECH_RATE) -> bytes:
    """A voiced, speech-like int16 signal: a 125 Hz harmonic tone shaped into syllables
    (4 per second) and words (three syllables, then a gap). The length is a whole
    number of word periods and pitch cycles, so slices can wrap around seamlessly."""
    t = np.arange(int(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * 125.0 * k * t) / k for k in range(1, 9))
    syllable = np.sin(np.pi * ((t * 4.0) % 1.0)) ** 2
    word_gap = ((t * 4.0) % 4.0) < 3.0
    signal = tone * syllable * word_gap
    signal *= 0.3 * 32767 / np.max(np.abs(signal))
    return signal.astype("<i2").tobytes()


# --- the server ----------------------------------------------------------------------------


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
    )


class StandinOpenAI:
    """Serve the stand-in on 127.0.0.1 (a free port) inside the running event loop.

    >>> async with StandinOpenAI(Latency.none(), ["hi there"]) as api:
    ...     client = AsyncOpenAI(api_key=api.api_key, base_url=api.base_url)
    """

    def __init__(
        self,
        latency: Latency | None = None,
        script: Iterable[str] = (),
        *,
        transcriber: Transcriber | None = None,
        responder: Responder | None = None,
        api_key: str = "sk-standin",
        max_recorded: int = 10_000,
        speech_chunk_bytes: int = 2 * round(SPEECH_CHUNK_S * SPEECH_RATE),
        fault_rate: float = 0.0,
        fault_seed: int = 1,
    ) -> None:
        self.latency = latency or Latency()
        self.api_key = api_key
        self._script = deque(script)
        self.transcriber: Transcriber = transcriber or self._next_scripted
        self.responder: Responder = responder or default_responder
        self.requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        #: The usage objects streamed to clients that read them, for metering tests.
        self.usage_sent: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        # Any size, odd ones included: clients must cope with samples split across chunks.
        self.speech_chunk_bytes = speech_chunk_bytes
        #: Requests answered, per endpoint (failures included).
        self.served: Counter[str] = Counter()
        #: Faults injected, per endpoint.
        self.faults: Counter[str] = Counter()
        #: Share of requests given a random fault (see RANDOM_FAULTS), for load tests.
        self.fault_rate = fault_rate
        self._random = random.Random(fault_seed)
        self._failures: dict[str, Failure] = {}
        #: Faults for the next structured replies, one each (see `malform_structured`).
        self._structured_faults: deque[str] = deque()
        self._voice = synthetic_voice()
        # Twice over, so any chunk starting in the first copy is one contiguous slice.
        self._voice_loop = memoryview(self._voice + self._voice)
        self._stopping = asyncio.Event()
        self.base_url = ""
        self.app = Starlette(
            routes=[
                Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/audio/speech", self._speech, methods=["POST"]),
            ]
        )
        self._server = EmbeddedServer(
            self.app,
            "stand-in OpenAI server",
            timeout_keep_alive=75,  # like the real API: pooled connections stay usable
            timeout_graceful_shutdown=2,
        )

    # --- lifecycle ---

    async def start(self) -> str:
        """Start serving; returns the base URL ("http://127.0.0.1:PORT/v1")."""
        if self._server.running:
            return self.base_url
        self._stopping = asyncio.Event()
        port = await self._server.start()
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    async def stop(self) -> None:
        if not self._server.running:
            return
        # Hangs and streams end early, so shutdown does not wait them out.
        self._stopping.set()
        await self._server.stop()

    async def __aenter__(self) -> StandinOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- control ---

    def fail(
        self,
        endpoint: str,
        *,
        status: int | None = 500,
        hang_s: float = 0.0,
        stall_s: float = 0.0,
        times: int | None = None,
        retry_after_s: float | None = None,
        first_stall_s: float = 0.0,
        cut_after: int | None = None,
    ) -> None:
        """Inject a fault on "transcriptions", "chat" or "speech": an error status (429
        with `retry_after_s`), a hang before answering, a stall before the first piece or
        after it, or a stream cut after `cut_after` pieces (use status=None for streams)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}, not {endpoint!r}")
        self._failures[endpoint] = Failure(
            status, hang_s, stall_s, times, retry_after_s, first_stall_s, cut_after
        )

    def clear_failures(self) -> None:
        self._failures.clear()
        self._structured_faults.clear()

    def malform_structured(self, *faults: str) -> None:
        """Make the next structured-output replies break their schema, one per fault:
        "not-json" (text that does not parse) or "wrong-shape" (JSON, not the schema)."""
        for fault in faults:
            if fault not in STRUCTURED_FAULTS:
                raise ValueError(f"fault must be one of {STRUCTURED_FAULTS}, not {fault!r}")
        self._structured_faults.extend(faults)

    def add_script(self, *texts: str) -> None:
        """Queue more transcripts for the default transcriber."""
        self._script.extend(texts)

    def recorded(self, endpoint: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    # --- plumbing ---

    def _next_scripted(self, _audio: bytes) -> str:
        return self._script.popleft() if self._script else "hello"

    def _unauthorized(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
            )
        if header[7:] != self.api_key:
            return _error(
                401,
                f"Incorrect API key provided: {header[7:11]}****.",
                "invalid_request_error",
                "invalid_api_key",
            )
        return None

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    async def _hang(self, seconds: float) -> None:
        # Long waits end when the server stops, so tests do not wait out a hang.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def _inject(self, endpoint: str) -> tuple[Response | None, Failure | None]:
        """Apply a configured fault: (error response or None, the stream's fault)."""
        failure = self._failures.get(endpoint)
        if failure is None and self.fault_rate and self._random.random() < self.fault_rate:
            failure = self._random.choice(RANDOM_FAULTS)
            failure = Failure(
                failure.status,
                failure.hang_s,
                failure.stall_s,
                None,
                failure.retry_after_s,
                failure.first_stall_s,
                failure.cut_after,
            )
            self.faults[endpoint] += 1
            return await self._apply(failure)
        if failure is None:
            return None, None
        if failure.times is not None:
            failure.times -= 1
            if failure.times <= 0:
                del self._failures[endpoint]
        self.faults[endpoint] += 1
        return await self._apply(failure)

    async def _apply(self, failure: Failure) -> tuple[Response | None, Failure | None]:
        if failure.hang_s > 0:
            await self._hang(failure.hang_s)
        if failure.status is not None:
            if failure.status == 429:
                response = _error(
                    429,
                    "Rate limit reached for requests. Please try again later.",
                    "requests",
                    "rate_limit_exceeded",
                )
            else:
                response = _error(failure.status, "The server had an error.", "server_error")
            if failure.retry_after_s is not None:
                response.headers["retry-after"] = f"{failure.retry_after_s:g}"
            return response, None
        return None, failure

    async def _json_body(self, request: Request) -> dict[str, Any] | Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.", "invalid_request_error")
        return body

    # --- POST /v1/audio/transcriptions ---

    async def _transcriptions(self, request: Request) -> Response:
        self.served["transcriptions"] += 1
        if (denied := self._unauthorized(request)) is not None:
            return denied
        async with request.form() as form:
            upload = form.get("file")
            model = form.get("model")
            if not isinstance(upload, UploadFile):
                return _error(400, "Missing required parameter: 'file'.", "invalid_request_error")
            if not isinstance(model, str) or not model:
                return _error(400, "Missing required parameter: 'model'.", "invalid_request_error")
            audio = await upload.read()
            fields: dict[str, Any] = {
                key: value for key, value in form.multi_items() if isinstance(value, str)
            }
            fields["filename"] = upload.filename
            fields["content_type"] = upload.content_type
        self.requests.append(RecordedRequest("transcriptions", request.url.path, fields, audio))
        failed, fault = await self._inject("transcriptions")
        if failed is not None:
            return failed
        if fault is not None and fault.first_stall_s:
            await self._hang(fault.first_stall_s)
        await self._pause(self.latency.stt_ms / 1000)
        text = self.transcriber(audio)
        if fields.get("response_format") == "text":
            return PlainTextResponse(text + "\n")
        return Response(orjson.dumps({"text": text}), media_type="application/json")

    # --- POST /v1/chat/completions ---

    async def _chat(self, request: Request) -> Response:
        self.served["chat"] += 1
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        self.requests.append(RecordedRequest("chat", request.url.path, body))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not body.get("model"):
            return _error(
                400, "'model' and a non-empty 'messages' are required.", "invalid_request_error"
            )
        failed, fault = await self._inject("chat")
        if failed is not None:
            return failed
        stall = fault.stall_s if fault is not None else 0.0
        tools = body.get("tools") or []
        reply = self._structured(body) or self.responder(messages, tools)
        model = str(body["model"])
        if body.get("stream"):
            options = body.get("stream_options") or {}
            return StreamingResponse(
                _faulty(
                    self._chat_events(
                        reply, model, messages, tools, bool(options.get("include_usage")), stall
                    ),
                    fault,
                    self._hang,
                ),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        await self._pause(
            (
                self.latency.llm_first_token_ms
                + self.latency.llm_token_ms * len(tokenize(reply.text))
            )
            / 1000
        )
        return Response(
            orjson.dumps(self._completion(reply, model, messages, tools)),
            media_type="application/json",
        )

    def _structured(self, body: Mapping[str, Any]) -> Reply | None:
        """The reply to a `response_format: json_schema` request, read from the messages."""
        response_format = body.get("response_format")
        if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
            return None
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        conversation = "\n".join(message_text(m) for m in body.get("messages") or ())
        fault = self._structured_faults.popleft() if self._structured_faults else None
        if fault == "not-json":
            return Reply('{"summary": "The caller asked about')
        value = structured_reply(schema, conversation)
        if fault == "wrong-shape":
            value = {"verdict": value} if not isinstance(value, dict) else {**value, "extra": 1}
        return Reply(orjson.dumps(value).decode())

    def _completion(
        self, reply: Reply, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or None,
            "refusal": None,
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": _call_id(),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json()},
                }
                for call in reply.tool_calls
            ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_standin",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            "usage": _usage(messages, reply, tools),
        }

    async def _chat_events(
        self,
        reply: Reply,
        model: str,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        include_usage: bool,
        stall_s: float,
    ) -> AsyncIterator[bytes]:
        # The fields every chunk repeats, serialised once: each event splices its own
        # "choices" (and "usage") onto this prefix.
        head = orjson.dumps(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_standin",
            }
        )[:-1]

        def event(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
            tail = orjson.dumps({"choices": choices, "usage": usage})
            return b"data: " + head + b"," + tail[1:] + b"\n\n"

        def delta(content: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

        token_s = self.latency.llm_token_ms / 1000
        await self._pause(self.latency.llm_first_token_ms / 1000)
        tokens = tokenize(reply.text) if reply.text else []
        opening: dict[str, Any] = {
            "role": "assistant",
            "content": "" if tokens else None,
            "refusal": None,
        }
        pending_calls = list(enumerate(reply.tool_calls))
        if not tokens and pending_calls:
            # A tool-only reply opens with the first call's header in the role chunk.
            index, call = pending_calls[0]
            opening["tool_calls"] = [_call_header(index, call.name)]
        yield event(delta(opening))
        for position, token in enumerate(tokens):
            if self._stopping.is_set():
                return
            await self._pause(token_s)
            yield event(delta({"content": token}))
            if position == 0:
                await self._pause(stall_s)
        for index, call in pending_calls:
            if tokens or index > 0:
                await self._pause(token_s)
                yield event(delta({"tool_calls": [_call_header(index, call.name)]}))
            for piece in split_arguments(call.arguments_json()):
                if self._stopping.is_set():
                    return
                await self._pause(token_s)
                yield event(
                    delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
            if not tokens and index == 0:
                await self._pause(stall_s)
        yield event(delta({}, "tool_calls" if reply.tool_calls else "stop"))
        if include_usage:
            usage = _usage(messages, reply, tools)
            yield event([], usage)
            self.usage_sent.append(usage)
        yield b"data: [DONE]\n\n"

    # --- POST /v1/audio/speech ---

    async def _speech(self, request: Request) -> Response:
        self.served["speech"] += 1
        if (denied := self._unauthorized(request)) is not None:
            return denied
        body = await self._json_body(request)
        if isinstance(body, Response):
            return body
        self.requests.append(RecordedRequest("speech", request.url.path, body))
        for name in ("model", "input", "voice"):
            if not body.get(name):
                return _error(
                    400, f"Missing required parameter: '{name}'.", "invalid_request_error"
                )
        text = body["input"]
        if not isinstance(text, str) or len(text) > 4096:
            return _error(
                400, "'input' must be a string of at most 4096 characters.", "invalid_request_error"
            )
        if body.get("response_format") != "pcm":
            # The stand-in only produces raw PCM, the format the agent asks for.
            return _error(
                400, "The stand-in only serves response_format 'pcm'.", "invalid_request_error"
            )
        failed, fault = await self._inject("speech")
        if failed is not None:
            return failed
        stall = fault.stall_s if fault is not None else 0.0
        return StreamingResponse(
            _faulty(self._speech_chunks(text, stall), fault, self._hang),
            media_type="application/octet-stream",
        )

    async def _speech_chunks(self, text: str, stall_s: float) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        total = 2 * max(1, round(len(text) / CHARS_PER_SECOND * SPEECH_RATE))
        chunk = self.speech_chunk_bytes
        period = len(self._voice)
        # Sent on a schedule relative to the first byte, so sleeps do not drift.
        pace = chunk / (2 * SPEECH_RATE) / self.latency.tts_realtime_factor
        await self._pause(self.latency.tts_first_byte_ms / 1000)
        started = loop.time()
        sent = 0
        while sent < total:
            if self._stopping.is_set():
                return
            size = min(chunk, total - sent)
            start = sent % period
            yield bytes(self._voice_loop[start : start + size])
            sent += size
            if sent == size:
                await self._pause(stall_s)
                started += stall_s
            due = started + (sent // chunk) * pace
            await self._pause(due - loop.time())


class StreamCut(Exception):
    """Raised inside a streamed body to make the server drop the connection mid-stream."""


async def _faulty(
    pieces: AsyncIterator[bytes],
    fault: Failure | None,
    hang: Callable[[float], Any],
) -> AsyncIterator[bytes]:
    """`pieces`, with a stream fault applied: a stall before the first piece (after the
    headers went out), or the connection cut after `cut_after` pieces."""
    if fault is None:
        async for piece in pieces:
            yield piece
        return
    if fault.first_stall_s:
        await hang(fault.first_stall_s)
    count = 0
    async for piece in pieces:
        if fault.cut_after is not None and count >= fault.cut_after:
            raise StreamCut("stream cut by an injected fault")
        count += 1
        yield piece


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _call_header(index: int, name: str) -> dict[str, Any]:
    return {
        "index": index,
        "id": _call_id(),
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }


#: Chat framing per message and for priming the reply, as OpenAI's token-counting guide
#: gives them for the gpt-4 family.
_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMING_TOKENS = 3


def _text_tokens(text: str) -> int:
    # About four characters of English per token (OpenAI's rule of thumb), at least one.
    return max(1, -(-len(text) // 4)) if text else 0


def _usage(
    messages: list[dict[str, Any]], reply: Reply, tools: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The usage object as the API reports it: the prompt (messages, their framing and the
    tool definitions) and the completion (each streamed text token, each tool call's name
    and arguments), with the detail objects real responses carry."""
    prompt = _REPLY_PRIMING_TOKENS + sum(
        _TOKENS_PER_MESSAGE + _text_tokens(str(m.get("role", ""))) + _text_tokens(message_text(m))
        for m in messages
    )
    if tools:
        prompt += _text_tokens(orjson.dumps(tools).decode())
    completion = len(tokenize(reply.text)) if reply.text else 0
    for call in reply.tool_calls:
        completion += _TOKENS_PER_MESSAGE + _text_tokens(call.name)
        completion += _text_tokens(call.arguments_json())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
