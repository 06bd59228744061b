"""The speech-to-speech provider protocol: one live model connection per call.

The conversation core sees these typed events and this protocol only, never the wire
format (OpenAI Realtime's JSON over a websocket is in providers/openai/realtime.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from voice_agent.providers.base import ProviderError

STAGE = "realtime"


class SessionRefused(ProviderError):
    """The service would not open a session (bad key, no quota, unknown model): retrying
    will not help, so the call ends politely with `code` stored as the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(STAGE, f"{code}: {message}")
        self.code = code


class ConnectionLost(ProviderError):
    """The socket went away mid-call; a new connection may carry on."""

    def __init__(self, message: str) -> None:
        super().__init__(STAGE, message)


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The model's VAD heard the caller start (ms into the audio sent this connection)."""

    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class CallerTranscript:
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    response_id: str


@dataclass(frozen=True, slots=True)
class AudioDelta:
    response_id: str
    item_id: str
    ulaw: bytes


@dataclass(frozen=True, slots=True)
class TranscriptDelta:
    """Text of what the model is saying, as it says it."""

    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class AgentTranscript:
    """The whole text of one spoken item."""

    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class FunctionCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RealtimeUsage:
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    text_input_tokens: int = 0
    text_output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str  # completed, cancelled, failed, incomplete
    usage: RealtimeUsage | None = None


@dataclass(frozen=True, slots=True)
class ServiceError:
    """An error event that does not end the session (a rejected truncate, say)."""

    code: str
    message: str


RealtimeEvent = (
    SpeechStarted
    | SpeechStopped
    | CallerTranscript
    | ResponseStarted
    | AudioDelta
    | TranscriptDelta
    | AgentTranscript
    | FunctionCall
    | ResponseDone
    | ServiceError
)


@dataclass(frozen=True, slots=True)
class SeedItem:
    """A turn of the conversation so far, given to a new connection (after a reconnect, or
    the greeting we played ourselves)."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    instructions: str
    voice: str | None
    #: Tool definitions in chat format (providers.tools); the provider converts them.
    tools: Sequence[dict[str, Any]] = ()
    #: "server": the model's VAD ends turns and interrupts its own replies; "local": the
    #: model still ends turns, but barge-in is ours (the model must not cancel on its own).
    barge_in: Literal["server", "local"] = "server"
    silence_ms: int = 500
    seed: Sequence[SeedItem] = field(default_factory=tuple)
    #: ISO 639-1 code the caller's speech is transcribed in.
    language: str = "en"


class RealtimeConnection(Protocol):
    def append_audio(self, ulaw: bytes) -> None:
        """Queue caller audio (8 kHz mu-law) for the model; never blocks."""
        ...

    async def create_response(self) -> None: ...

    async def cancel_response(self) -> None: ...

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        """Tell the model only `audio_end_ms` of item `item_id` was heard."""
        ...

    async def function_output(self, call_id: str, output: str) -> None: ...

    async def add_message(self, role: Literal["user", "assistant"], text: str) -> None:
        """Put a text turn in the model's conversation (DTMF, re-seeding)."""
        ...

    def events(self) -> AsyncIterator[RealtimeEvent]:
        """The model's events until the connection closes; raises ConnectionLost when it
        drops and SessionRefused when the service ends the session with an error."""
        ...

    async def aclose(self) -> None: ...


class SpeechToSpeech(Protocol):
    #: The model name usage is priced under.
    usage_model: str

    async def connect(self, config: RealtimeConfig) -> RealtimeConnection:
        """Open and configure one call's session. Raises SessionRefused or ProviderError."""
        ...
