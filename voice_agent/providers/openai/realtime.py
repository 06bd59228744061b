"""OpenAI Realtime (speech to speech) over the SDK's websocket client, GA interface.

Events go out and come in as raw JSON (orjson) through the SDK connection's `send_raw` and
`recv_bytes`: the SDK's typed models cost a pydantic parse per audio delta, and the
session needs a handful of fields. The SDK still builds the URL, headers and handshake,
so `OPENAI_BASE_URL` / `OPENAI_REALTIME_URL` point it at a stand-in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import openai
import orjson
from websockets.exceptions import ConnectionClosed, InvalidStatus

from prompts.voices import REALTIME_VOICES
from voice_agent.providers.base import ProviderError
from voice_agent.providers.speech_to_speech import (
    STAGE,
    AgentTranscript,
    AudioDelta,
    CallerTranscript,
    ConnectionLost,
    FunctionCall,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeUsage,
    ResponseDone,
    ResponseStarted,
    ServiceError,
    SessionRefused,
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "marin"
GA_VOICES = REALTIME_VOICES
#: Error codes that mean the session will not be served however often we retry.
REFUSALS = {
    "invalid_api_key",
    "insufficient_quota",
    "model_not_found",
    "invalid_model",
    "account_deactivated",
    "billing_hard_limit_reached",
}
#: Caller audio is sent in one append per this many bytes at most (100 ms of mu-law):
#: frames that queue while the socket is busy go out together.
_MAX_APPEND = 800


def realtime_tools(specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat-format tool definitions ({"type","function":{…}}) in Realtime's flat form."""
    tools = []
    for spec in specs:
        function = spec.get("function", spec)
        tools.append(
            {
                "type": "function",
                "name": function["name"],
                "description": function.get("description", ""),
                "parameters": function.get("parameters", {"type": "object", "properties": {}}),
            }
        )
    return tools


def session_update(model: str, config: RealtimeConfig) -> dict[str, Any]:
    """The GA `session.update` for telephony: mu-law both ways, no resampling."""
    voice = config.voice if config.voice in GA_VOICES else DEFAULT_VOICE
    server_barge_in = config.barge_in == "server"
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "model": model,
            "output_modalities": ["audio"],
            "instructions": config.instructions,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {
                        "model": "gpt-4o-mini-transcribe",
                        "language": config.language,
                    },
                    "turn_detection": {
                        "type": "server_vad",
                        "silence_duration_ms": config.silence_ms,
                        "create_response": True,
                        "interrupt_response": server_barge_in,
                    },
                },
                "output": {"format": {"type": "audio/pcmu"}, "voice": voice},
            },
            "tools": realtime_tools(config.tools),
            "tool_choice": "auto",
        },
    }


def _usage(raw: dict[str, Any] | None) -> RealtimeUsage | None:
    if not raw:
        return None
    inp = raw.get("input_token_details") or {}
    out = raw.get("output_token_details") or {}
    return RealtimeUsage(
        audio_input_tokens=int(inp.get("audio_tokens") or 0),
        audio_output_tokens=int(out.get("audio_tokens") or 0),
        text_input_tokens=int(inp.get("text_tokens") or 0),
        text_output_tokens=int(out.get("text_tokens") or 0),
    )


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def parse_event(event: dict[str, Any]) -> RealtimeEvent | None:
    """One server event as the session's typed event; None for those it does not use.
    GA names, and the beta names where they differ."""
    kind = event.get("type")
    if kind in ("response.output_audio.delta", "response.audio.delta"):
        return AudioDelta(
            event.get("response_id", ""), event.get("item_id", ""), base64.b64decode(event["delta"])
        )
    if kind in ("response.output_audio_transcript.delta", "response.audio_transcript.delta"):
        return TranscriptDelta(event.get("item_id", ""), event.get("delta", ""))
    if kind in ("response.output_audio_transcript.done", "response.audio_transcript.done"):
        return AgentTranscript(event.get("item_id", ""), event.get("transcript", ""))
    if kind == "input_audio_buffer.speech_started":
        return SpeechStarted(int(event.get("audio_start_ms") or 0))
    if kind == "input_audio_buffer.speech_stopped":
        return SpeechStopped(int(event.get("audio_end_ms") or 0))
    if kind == "conversation.item.input_audio_transcription.completed":
        return CallerTranscript(event.get("item_id", ""), event.get("transcript") or "")
    if kind == "response.created":
        return ResponseStarted((event.get("response") or {}).get("id", ""))
    if kind == "response.function_call_arguments.done":
        return FunctionCall(
            event.get("call_id", ""), event.get("name", ""), _arguments(event.get("arguments", ""))
        )
    if kind == "response.done":
        response = event.get("response") or {}
        return ResponseDone(
            response.get("id", ""), response.get("status", ""), _usage(response.get("usage"))
        )
    if kind == "error":
        error = event.get("error") or {}
        code = str(error.get("code") or error.get("type") or "error")
        message = str(error.get("message") or "")
        if code in REFUSALS:
            raise SessionRefused(code, message)
        return ServiceError(code, message)
    return None


class OpenAIRealtimeConnection:
    """One call's Realtime session."""

    def __init__(self, connection: Any) -> None:
        self._conn = connection
        self._audio: asyncio.Queue[bytes] = asyncio.Queue()
        self._sender = asyncio.create_task(self._send_audio())
        self._closed = False

    async def _send(self, event: dict[str, Any]) -> None:
        if self._closed:
            return
        try:
            await self._conn.send_raw(orjson.dumps(event))
        except (ConnectionClosed, OSError, openai.OpenAIError) as exc:
            # The receive side sees the drop too and reports it; nothing to add here.
            log.debug("realtime send failed: %s", exc)

    def append_audio(self, ulaw: bytes) -> None:
        if not self._closed:
            self._audio.put_nowait(ulaw)

    async def _send_audio(self) -> None:
        queue = self._audio
        while True:
            pending = bytearray(await queue.get())
            while not queue.empty() and len(pending) < _MAX_APPEND:
                pending += queue.get_nowait()
            audio = base64.b64encode(pending).decode()
            await self._send({"type": "input_audio_buffer.append", "audio": audio})

    async def create_response(self) -> None:
        await self._send({"type": "response.create"})

    async def cancel_response(self) -> None:
        await self._send({"type": "response.cancel"})

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        await self._send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            }
        )

    async def function_output(self, call_id: str, output: str) -> None:
        await self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )

    async def add_message(self, role: Literal["user", "assistant"], text: str) -> None:
        part = "input_text" if role == "user" else "output_text"
        await self._send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": role,
                    "content": [{"type": part, "text": text}],
                },
            }
        )

    async def seed(self, config: RealtimeConfig) -> None:
        for item in config.seed:
            await self.add_message(item.role, item.text)

    async def events(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            try:
                raw = await self._conn.recv_bytes()
            except ConnectionClosed as exc:
                if self._closed:
                    return
                raise ConnectionLost(f"socket closed ({exc})") from exc
            except OSError as exc:
                raise ConnectionLost(f"{type(exc).__name__}: {exc}") from exc
            event = parse_event(orjson.loads(raw))
            if event is not None:
                yield event

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender
        with contextlib.suppress(Exception):
            await self._conn.close()


class OpenAIRealtime:
    """SpeechToSpeech over OpenAI Realtime: one websocket per call, from one SDK client."""

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        *,
        base_url: str | None = None,
        websocket_base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.usage_model = model
        self._model = model
        self._timeout = timeout
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            websocket_base_url=websocket_base_url,
            timeout=timeout,
            max_retries=0,
        )
        # The SDK imports its Realtime resource and websocket helper on first use: ~250 ms
        # of one core and a heap of new objects, which must not land on a live call.
        _ = self._client.realtime
        with contextlib.suppress(ImportError):
            importlib.import_module("openai.lib._websocket")

    async def connect(self, config: RealtimeConfig) -> OpenAIRealtimeConnection:
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._client.realtime.connect(model=self._model).enter()
                first = orjson.loads(await raw.recv_bytes())
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise SessionRefused("invalid_api_key", f"HTTP {status}") from exc
            if status == 429:
                raise SessionRefused("insufficient_quota", "HTTP 429") from exc
            raise ProviderError(STAGE, f"HTTP {status} on connect") from exc
        except TimeoutError as exc:
            raise ProviderError(STAGE, "connect timed out") from exc
        except (ConnectionClosed, OSError, openai.OpenAIError) as exc:
            raise ProviderError(STAGE, f"connect failed: {type(exc).__name__}: {exc}") from exc
        if first.get("type") == "error":
            with contextlib.suppress(Exception):
                await raw.close()
            error = first.get("error") or {}
            raise SessionRefused(str(error.get("code") or "error"), str(error.get("message") or ""))
        connection = OpenAIRealtimeConnection(raw)
        await connection._send(session_update(self._model, config))
        await connection.seed(config)
        return connection

    async def aclose(self) -> None:
        await self._client.close()
