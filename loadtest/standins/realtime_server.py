"""A stand-in for the OpenAI Realtime API (speech to speech over a websocket) on loopback.

It speaks the wire format of integrations.md §5.4, GA event names by default and the beta
names when the client sends ``OpenAI-Beta: realtime=v1``, so the agent drives it through
the unmodified `openai` SDK. Per connection it keeps a conversation, runs a server VAD on
the caller's mu-law (frame energy, like the fixtures' voiced frames), transcribes the
caller's turn by fixture lookup, and answers after a set latency with canned mu-law audio
streamed as deltas, plus transcripts and function calls. Faults can be switched on: refuse
the session with an error event, stall a response, drop the socket mid-response.

Stands alone: imports nothing from the agent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from loadtest.standins.openai_server import (
    CHARS_PER_SECOND,
    Reply,
    ScriptedToolCall,
    default_responder,
    split_arguments,
    synthetic_voice,
    tokenize,
)

LINE_RATE = 8000
FRAME_BYTES = 160  # 20 ms of mu-law
#: Peak (int16) above which a frame counts as voiced; the fixtures' silence stays below.
VOICED_PEAK = 500
#: Voiced audio needed before speech counts as started.
_PREFIX_MS = 60
DEFAULT_SILENCE_MS = 500
DEFAULT_MODEL = "gpt-realtime"
#: Audio per `response.output_audio.delta` (the real API sends pieces of this order).
DELTA_MS = 100
#: Roughly 10 audio tokens per second of input and 20 per second of output (billing only).
_AUDIO_IN_TOKENS_PER_S = 10
_AUDIO_OUT_TOKENS_PER_S = 20

#: (conversation so far as chat-style messages, tools in chat format) -> the reply.
Responder = Callable[[list[dict[str, Any]], list[dict[str, Any]]], Reply]
#: The caller's turn as 8 kHz int16 samples -> its transcript.
Transcriber = Callable[[np.ndarray], str]

# G.711 mu-law tables, kept here so the stand-in imports nothing of the server's.
_CODES = ~np.arange(256, dtype=np.int32) & 0xFF
_MAGNITUDE = ((((_CODES & 0x0F) << 3) + 0x84) << ((_CODES >> 4) & 0x07)) - 0x84
DECODE = np.where(_CODES & 0x80, -_MAGNITUDE, _MAGNITUDE).astype(np.int16)
_PEAK = np.abs(DECODE.astype(np.int32))


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 samples to G.711 mu-law (the standard bias-and-segment encoder)."""
    x = np.clip(pcm.astype(np.int32), -32635, 32635)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.abs(x) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def canned_voice(seconds: float = 4.0) -> bytes:
    """The stand-in's voice as line-ready mu-law: the OpenAI stand-in's synthetic speech
    made at 8 kHz, computed once and served as slices."""
    pcm = np.frombuffer(synthetic_voice(seconds, LINE_RATE), dtype="<i2")
    return mulaw_encode(pcm)


@dataclass(frozen=True, slots=True)
class RealtimeLatency:
    """How slow the stand-in is. The defaults are typical of the real service."""

    #: From the end of caller speech being detected (speech_stopped) to the first audio.
    response_ms: float = 450.0
    #: From the committed turn to its input transcription.
    transcription_ms: float = 250.0
    #: Seconds of audio produced per second of wall time once the first delta is out.
    realtime_factor: float = 4.0

    @classmethod
    def none(cls) -> RealtimeLatency:
        return cls(0.0, 0.0, math.inf)


@dataclass(slots=True)
class Faults:
    """Faults for the connections and responses to come; each is used up once."""

    #: Refuse this many next sessions with an error event of this code.
    refuse: int = 0
    refuse_code: str = "insufficient_quota"
    refuse_message: str = "You exceeded your current quota, please check your plan."
    #: Stall the next response this long after `response.created` (then go on).
    stall_s: float = 0.0
    #: Drop the socket (no close frame) once the next response has sent this much audio.
    drop_after_ms: float | None = None
    #: Every new session waits this long before `session.created` (a slow connect).
    connect_delay_s: float = 0.0


@dataclass(slots=True)
class Truncation:
    item_id: str
    audio_end_ms: int
    #: Audio the item had in all when it was truncated.
    audio_ms: float


@dataclass(slots=True)
class SessionRecord:
    """What one connection did, for assertions."""

    beta: bool
    model: str
    authorized: bool
    session: dict[str, Any] = field(default_factory=dict)
    #: Every client event's type, in order.
    received: list[str] = field(default_factory=list)
    #: `conversation.item.create` items as sent.
    items_created: list[dict[str, Any]] = field(default_factory=list)
    truncations: list[Truncation] = field(default_factory=list)
    function_outputs: list[dict[str, Any]] = field(default_factory=list)
    responses: int = 0
    cancelled: int = 0
    audio_in_ms: float = 0.0
    speech_started: list[int] = field(default_factory=list)
    #: The `usage` of every response.done sent.
    usage: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):012d}"


class _Names:
    """Event names of one interface generation."""

    def __init__(self, beta: bool) -> None:
        self.audio_delta = "response.audio.delta" if beta else "response.output_audio.delta"
        self.audio_done = "response.audio.done" if beta else "response.output_audio.done"
        prefix = "response.audio_transcript" if beta else "response.output_audio_transcript"
        self.transcript_delta = prefix + ".delta"
        self.transcript_done = prefix + ".done"
        self.item_added = "conversation.item.created" if beta else "conversation.item.added"
        self.audio_part = "audio" if beta else "output_audio"


class _Connection:
    """One client's session: conversation, VAD over its audio, and its responses."""

    def __init__(self, server: StandinRealtime, ws: ServerConnection, record: SessionRecord):
        self.server = server
        self.ws = ws
        self.record = record
        self.names = _Names(record.beta)
        self.turn_detection: dict[str, Any] | None = {"type": "server_vad"}
        self.tools: list[dict[str, Any]] = []
        #: Chat-style messages for the responder, with item ids.
        self.messages: list[dict[str, Any]] = []
        self.audio_items: dict[str, float] = {}  # assistant item -> audio ms sent
        self.buffer = bytearray()  # the uncommitted input audio
        self.buffer_start_ms = 0.0  # input-audio time of buffer[0]
        self.voiced_ms = 0
        self.silent_ms = 0
        self.in_speech = False
        self.speech_start_ms = 0.0
        self.response: asyncio.Task[None] | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    # --- sending -----------------------------------------------------------------------

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", _id("event"))
        await self.ws.send(orjson.dumps(event).decode())

    async def error(self, message: str, code: str, kind: str = "invalid_request_error") -> None:
        await self.send(
            {
                "type": "error",
                "error": {"type": kind, "code": code, "message": message, "param": None},
            }
        )

    def spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def session_view(self) -> dict[str, Any]:
        s = dict(self.record.session)
        s.setdefault("id", _id("sess"))
        s.setdefault("model", self.record.model)
        if not self.record.beta:
            s.setdefault("type", "realtime")
        return s

    # --- client events -----------------------------------------------------------------

    async def handle(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        self.record.received.append(kind)
        if kind == "input_audio_buffer.append":
            self.append(base64.b64decode(event.get("audio", "")))
        elif kind == "session.update":
            await self.update_session(event.get("session") or {})
        elif kind == "conversation.item.create":
            await self.create_item(event.get("item") or {})
        elif kind == "response.create":
            self.start_response()
        elif kind == "response.cancel":
            await self.cancel_response()
        elif kind == "conversation.item.truncate":
            await self.truncate(event)
        elif kind == "input_audio_buffer.commit":
            await self.commit(self.take_buffer(self.buffer_start_ms + len(self.buffer) / 8.0))
        elif kind == "input_audio_buffer.clear":
            self.buffer_start_ms += len(self.buffer) / 8.0
            self.buffer.clear()
        else:
            await self.error(f"Unknown event type {kind!r}.", "unknown_event")

    async def update_session(self, session: dict[str, Any]) -> None:
        if self.record.beta:
            self.turn_detection = session.get("turn_detection", self.turn_detection)
        else:
            audio_in = (session.get("audio") or {}).get("input") or {}
            self.turn_detection = audio_in.get("turn_detection", self.turn_detection)
        self.tools = list(session.get("tools") or self.tools)
        self.record.session.update(session)
        await self.send({"type": "session.updated", "session": self.session_view()})

    async def create_item(self, item: dict[str, Any]) -> None:
        self.record.items_created.append(item)
        item = {**item, "id": item.get("id") or _id("item")}
        kind = item.get("type")
        if kind == "function_call_output":
            self.record.function_outputs.append(item)
            self.messages.append(
                {"role": "tool", "content": str(item.get("output", "")), "id": item["id"]}
            )
        elif kind == "message":
            text = " ".join(
                str(part.get("text") or part.get("transcript") or "")
                for part in item.get("content") or []
                if isinstance(part, dict)
            )
            self.messages.append({"role": item.get("role", "user"), "content": text, **item})
        elif kind == "function_call":
            self.messages.append({"role": "assistant", "content": "", "id": item["id"]})
        await self.send({"type": self.names.item_added, "item": item, "previous_item_id": None})

    async def truncate(self, event: dict[str, Any]) -> None:
        item_id = str(event.get("item_id", ""))
        end_ms = event.get("audio_end_ms")
        if item_id not in self.audio_items:
            await self.error(f"Item {item_id!r} not found.", "item_not_found")
            return
        audio_ms = self.audio_items[item_id]
        if not isinstance(end_ms, int) or end_ms < 0 or end_ms > audio_ms:
            await self.error(
                f"Audio content of {audio_ms:.0f}ms is shorter than {end_ms}ms.",
                "invalid_value",
            )
            return
        self.record.truncations.append(Truncation(item_id, end_ms, audio_ms))
        # The model forgets what was not heard: its transcript is cut to the same share.
        for message in self.messages:
            if message.get("id") == item_id and audio_ms > 0:
                text = str(message.get("content") or "")
                message["content"] = text[: int(len(text) * end_ms / audio_ms)]
        await self.send(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": int(event.get("content_index", 0)),
                "audio_end_ms": end_ms,
            }
        )

    # --- server VAD --------------------------------------------------------------------

    def append(self, ulaw: bytes) -> None:
        self.record.audio_in_ms += len(ulaw) / 8.0
        if self.turn_detection is None:
            self.buffer += ulaw
            return
        silence_ms = int(self.turn_detection.get("silence_duration_ms") or DEFAULT_SILENCE_MS)
        codes = np.frombuffer(ulaw, dtype=np.uint8)
        for start in range(0, len(codes), FRAME_BYTES):
            frame = codes[start : start + FRAME_BYTES]
            frame_ms = len(frame) // 8
            voiced = int(_PEAK.take(frame).max(initial=0)) >= VOICED_PEAK
            self.buffer += frame.tobytes()
            now_ms = self.buffer_start_ms + len(self.buffer) / 8.0
            if voiced:
                self.voiced_ms += frame_ms
                self.silent_ms = 0
            else:
                self.silent_ms += frame_ms
                if not self.in_speech:
                    self.voiced_ms = 0
            if not self.in_speech and self.voiced_ms >= _PREFIX_MS:
                self.in_speech = True
                self.speech_start_ms = now_ms - self.voiced_ms
                self.spawn(self.speech_started())
            elif self.in_speech and self.silent_ms >= silence_ms:
                self.in_speech = False
                self.voiced_ms = 0
                end_ms = now_ms - self.silent_ms
                self.spawn(self.speech_stopped(end_ms, self.take_buffer(now_ms)))
            elif not self.in_speech and len(self.buffer) > 8 * 1000:
                # Keep a second of lead-in; the rest of the silence is not a turn.
                drop = len(self.buffer) - 4000
                del self.buffer[:drop]
                self.buffer_start_ms += drop / 8.0

    async def speech_started(self) -> None:
        start = int(self.speech_start_ms)
        self.record.speech_started.append(start)
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": start,
                "item_id": _id("item"),
            }
        )
        if self.response is not None and not self.response.done():
            td = self.turn_detection or {}
            if td.get("interrupt_response", True):
                await self.cancel_response()

    async def speech_stopped(self, end_ms: float, audio: bytes) -> None:
        await self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": int(end_ms)})
        await self.commit(audio)

    def take_buffer(self, now_ms: float) -> bytes:
        """The turn's audio, taken at once: frames appended before the commit's events go
        out belong to the next turn (and the lead-in trim must not eat this one)."""
        audio = bytes(self.buffer)
        self.buffer_start_ms = now_ms
        self.buffer.clear()
        return audio

    async def commit(self, audio: bytes) -> None:
        item_id = _id("item")
        transcript = self.server.transcribe(audio)
        self.messages.append({"role": "user", "content": transcript, "id": item_id})
        await self.send(
            {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": None}
        )
        item = {
            "id": item_id,
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.send({"type": self.names.item_added, "item": item, "previous_item_id": None})
        self.spawn(self.transcribed(item_id, transcript, len(audio) / 8000.0))
        td = self.turn_detection or {}
        if td.get("create_response", True) and self.turn_detection is not None:
            self.start_response()

    async def transcribed(self, item_id: str, transcript: str, seconds: float) -> None:
        await asyncio.sleep(self.server.latency.transcription_ms / 1000.0)
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": round(seconds, 3)},
            }
        )

    # --- responses ---------------------------------------------------------------------

    def start_response(self) -> None:
        if self.response is not None and not self.response.done():
            self.spawn(self.error("Conversation already has an active response", "active_response"))
            return
        self.record.responses += 1
        self.response = asyncio.create_task(self.respond())

    async def cancel_response(self) -> None:
        task = self.response
        if task is None or task.done():
            await self.error("No active response to cancel.", "response_cancel_not_active")
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def respond(self) -> None:
        response_id = _id("resp")
        latency = self.server.latency
        faults = self.server.faults
        reply = self.server.responder(self.messages, _chat_tools(self.tools))
        status = "completed"
        audio_out_ms = 0.0
        text_out = ""
        items: list[dict[str, Any]] = []
        await self.send(
            {
                "type": "response.created",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "in_progress",
                },
            }
        )
        try:
            stall, faults.stall_s = faults.stall_s, 0.0
            drop_after, faults.drop_after_ms = faults.drop_after_ms, None
            await asyncio.sleep(latency.response_ms / 1000.0 + stall)
            if reply.text:
                item_id = _id("item")
                items.append({"id": item_id, "type": "message", "role": "assistant"})
                self.messages.append({"role": "assistant", "content": reply.text, "id": item_id})
                text_out = reply.text
                audio_out_ms = await self.speak(response_id, item_id, reply.text, drop_after)
            for index, call in enumerate(reply.tool_calls, start=len(items)):
                items.append(await self.function_call(response_id, index, call))
        except asyncio.CancelledError:
            status = "cancelled"
            self.record.cancelled += 1
        in_tokens = int(self.record.audio_in_ms / 1000.0 * _AUDIO_IN_TOKENS_PER_S)
        text_in = sum(len(tokenize(str(m.get("content") or ""))) for m in self.messages)
        audio_out = int(audio_out_ms / 1000.0 * _AUDIO_OUT_TOKENS_PER_S)
        text_tokens_out = len(tokenize(text_out))
        usage = {
            "total_tokens": in_tokens + text_in + audio_out + text_tokens_out,
            "input_tokens": in_tokens + text_in,
            "output_tokens": audio_out + text_tokens_out,
            "input_token_details": {"audio_tokens": in_tokens, "text_tokens": text_in},
            "output_token_details": {"audio_tokens": audio_out, "text_tokens": text_tokens_out},
        }
        self.record.usage.append(usage)
        with contextlib.suppress(ConnectionClosed):
            await self.send(
                {
                    "type": "response.done",
                    "response": {
                        "id": response_id,
                        "object": "realtime.response",
                        "status": status,
                        "output": items,
                        "usage": usage,
                    },
                }
            )

    async def speak(
        self, response_id: str, item_id: str, text: str, drop_after_ms: float | None
    ) -> float:
        names = self.names
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress"}
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        audio = self.server.audio_for(text)
        total_ms = len(audio) / 8.0
        self.audio_items[item_id] = 0.0
        ids = {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
        }
        words = tokenize(text)
        step = DELTA_MS * 8
        pieces = max(1, math.ceil(len(audio) / step))
        per_piece = max(1, math.ceil(len(words) / pieces))
        pace = DELTA_MS / 1000.0 / self.server.latency.realtime_factor
        sent_ms = 0.0
        for index, start in enumerate(range(0, len(audio), step)):
            chunk = audio[start : start + step]
            said = "".join(words[index * per_piece : (index + 1) * per_piece])
            if said:
                await self.send({"type": names.transcript_delta, **ids, "delta": said})
            await self.send(
                {"type": names.audio_delta, **ids, "delta": base64.b64encode(chunk).decode()}
            )
            sent_ms += len(chunk) / 8.0
            self.audio_items[item_id] = sent_ms
            if drop_after_ms is not None and sent_ms >= drop_after_ms:
                self.ws.transport.abort()  # no close frame: the network went away
                raise asyncio.CancelledError
            if pace > 0 and sent_ms < total_ms:
                await asyncio.sleep(pace)
        await self.send({"type": names.audio_done, **ids})
        await self.send({"type": names.transcript_done, **ids, "transcript": text})
        item["status"] = "completed"
        item["content"] = [{"type": names.audio_part, "transcript": text}]
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        return sent_ms

    async def function_call(
        self, response_id: str, index: int, call: ScriptedToolCall
    ) -> dict[str, Any]:
        item_id, call_id = _id("item"), _id("call")
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "call_id": call_id,
            "name": call.name,
            "arguments": "",
        }
        self.messages.append({"role": "assistant", "content": "", "id": item_id})
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": index,
                "item": item,
            }
        )
        arguments = call.arguments_json()
        ids = {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": index,
            "call_id": call_id,
        }
        for piece in split_arguments(arguments):
            await self.send(
                {"type": "response.function_call_arguments.delta", **ids, "delta": piece}
            )
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                **ids,
                "name": call.name,
                "arguments": arguments,
            }
        )
        item = {**item, "status": "completed", "arguments": arguments}
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": index,
                "item": item,
            }
        )
        return item

    async def close(self) -> None:
        self.record.closed = True
        tasks = [t for t in (self.response, *self.tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _chat_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Realtime tool definitions (flat) in the chat format the shared responders read."""
    return [{"type": "function", "function": {"name": t.get("name", "")}} for t in tools]


class StandinRealtime:
    """Serve the stand-in on 127.0.0.1 (a free port) inside the running event loop.

    >>> async with StandinRealtime() as rt:
    ...     client = AsyncOpenAI(api_key=rt.api_key, websocket_base_url=rt.url)
    """

    def __init__(
        self,
        latency: RealtimeLatency | None = None,
        *,
        transcriber: Transcriber | None = None,
        responder: Responder = default_responder,
        api_key: str = "sk-standin",
        max_recorded: int | None = None,
    ) -> None:
        self.latency = latency or RealtimeLatency()
        self.transcriber = transcriber
        self.responder = responder
        self.api_key = api_key
        self.faults = Faults()
        self.sessions: list[SessionRecord] = []
        self._max_recorded = max_recorded
        self._voice = canned_voice()
        self._server: Server | None = None
        self._connections: set[_Connection] = set()
        self.url = ""

    async def start(self) -> str:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/v1"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> StandinRealtime:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def drop_connections(self) -> None:
        """Cut every open socket at once, without a close frame."""
        for connection in list(self._connections):
            connection.ws.transport.abort()

    def transcribe(self, ulaw: bytes) -> str:
        if self.transcriber is None:
            return "hello"
        return self.transcriber(DECODE.take(np.frombuffer(ulaw, dtype=np.uint8)))

    def audio_for(self, text: str) -> bytes:
        """The canned voice cut to the length `text` takes to say."""
        wanted = max(FRAME_BYTES, round(len(text) / CHARS_PER_SECOND * LINE_RATE))
        voice = self._voice
        if wanted <= len(voice):
            return voice[:wanted]
        return (voice * (wanted // len(voice) + 1))[:wanted]

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        headers = request.headers
        beta = headers.get("OpenAI-Beta", "") == "realtime=v1"
        query = parse_qs(request.path.partition("?")[2])
        model = query.get("model", [""])[0]
        authorized = headers.get("Authorization", "") == f"Bearer {self.api_key}"
        record = SessionRecord(beta=beta, model=model or DEFAULT_MODEL, authorized=authorized)
        self.sessions.append(record)
        if self._max_recorded is not None and len(self.sessions) > self._max_recorded:
            del self.sessions[: len(self.sessions) - self._max_recorded]
        connection = _Connection(self, ws, record)
        if not authorized:
            await connection.error(
                "Incorrect API key provided.", "invalid_api_key", "invalid_request_error"
            )
            await ws.close(1008, "invalid api key")
            return
        if self.faults.refuse > 0:
            self.faults.refuse -= 1
            await connection.error(
                self.faults.refuse_message, self.faults.refuse_code, "insufficient_quota"
            )
            await ws.close(1008, self.faults.refuse_code)
            return
        self._connections.add(connection)
        try:
            if self.faults.connect_delay_s:
                await asyncio.sleep(self.faults.connect_delay_s)
            await connection.send({"type": "session.created", "session": connection.session_view()})
            async for message in ws:
                try:
                    event = orjson.loads(message)
                except orjson.JSONDecodeError:
                    await connection.error("Invalid JSON.", "invalid_json")
                    continue
                await connection.handle(event)
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(connection)
            await connection.close()
