"""Provider protocols: what the conversation core needs from speech and dialogue engines.

The core sees only these types, so one session runs unchanged on the offline,
OpenAI cascade or any other pipeline, and tests can drive it without a socket.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from prompts import AgentDefinition


class ProviderError(Exception):
    """A provider failed or timed out; the session recovers by apologising, not by dying."""

    def __init__(
        self,
        stage: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        #: The HTTP status when the provider answered one (None: timeout, network, stream).
        self.status = status
        #: Seconds the provider asked us to wait (a 429's Retry-After), when it said.
        self.retry_after = retry_after
        #: False when asking again cannot help (the request itself was refused).
        self.retryable = retryable


# --- speech to text -------------------------------------------------------------------


@dataclass(slots=True)
class Transcript:
    text: str
    # Seconds of provider work, measured by the provider itself (inference or HTTP round trip).
    duration_s: float = 0.0


@runtime_checkable
class SpeechToText(Protocol):
    async def transcribe(
        self, pcm16: np.ndarray, sample_rate: int, language: str | None = None
    ) -> Transcript:
        """Transcribe one caller turn (mono int16 samples) spoken in `language` (ISO 639-1;
        None: the provider's configured language). Raises ProviderError."""
        ...


# --- dialogue (LLM or scripted playbook) ----------------------------------------------

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class ChatMessage:
    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True, frozen=True)
class TokenUsage:
    """The tokens one model response was billed for, as the provider reported them; the
    last event of a response when the provider reports usage at all."""

    input_tokens: int
    output_tokens: int
    model: str = ""


DialogueEvent = TextDelta | ToolCall | TokenUsage


@runtime_checkable
class Dialogue(Protocol):
    """One call's conversation with the model (or playbook)."""

    def respond(self, history: list[ChatMessage]) -> AsyncGenerator[DialogueEvent, None]:
        """Stream the agent's next reply to `history` (which ends with the caller's turn,
        a DTMF event rendered as a user message, or tool results). Text arrives as
        TextDelta pieces; tool calls arrive whole. Raises ProviderError."""
        ...


@runtime_checkable
class DialogueEngine(Protocol):
    def start(self, agent: AgentDefinition, variables: Mapping[str, str]) -> Dialogue:
        """Begin one call's dialogue; `variables` fill the agent's prompt template."""
        ...


# --- text to speech -------------------------------------------------------------------


@runtime_checkable
class TextToSpeech(Protocol):
    #: Sample rate of the int16 mono PCM that `synthesize` yields.
    sample_rate: int

    def synthesize(self, text: str, voice: str | None = None) -> AsyncGenerator[bytes, None]:
        """Stream int16 little-endian mono PCM at `sample_rate` for `text`, first bytes as
        early as possible. Raises ProviderError."""
        ...


@dataclass(slots=True)
class Pipeline:
    """The provider set a session runs on."""

    name: str
    stt: SpeechToText
    dialogue: DialogueEngine
    tts: TextToSpeech
    #: The speech-to-speech model (realtime pipeline): calls talk to it, while the stages
    #: above make the cached phrases and serve text mode. A SpeechToSpeech.
    realtime: Any = None

    async def aclose(self) -> None:
        for part in (self.stt, self.dialogue, self.tts, self.realtime):
            close = getattr(part, "aclose", None)
            if close is not None:
                await close()
