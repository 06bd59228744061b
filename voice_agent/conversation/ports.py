"""What a call session talks to: the phone line (out) and whoever records what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol


class CallTransport(Protocol):
    """The caller's line. Implemented over Twilio Media Streams; in tests over anything."""

    async def send_audio(self, ulaw: bytes) -> None:
        """Queue 8 kHz mu-law audio for playback after what is already queued."""
        ...

    async def send_mark(self, name: str) -> None:
        """Ask to be told (via CallSession.on_mark) when playback reaches this point."""
        ...

    async def send_clear(self) -> None:
        """Drop every queued, unplayed sample at once."""
        ...

    async def hangup(self) -> None: ...

    async def transfer(self, number: str) -> None:
        """Bridge the caller to `number`; the media stream ends."""
        ...


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_sid: str
    stream_sid: str
    tenant: str
    direction: Literal["inbound", "outbound"]
    from_number: str
    to_number: str
    agent: str
    pipeline: str
    #: Per-call values for the agent's templates (lead name, business name…).
    variables: dict[str, str] = field(default_factory=dict)
    #: The tenant agent version this call runs (None: the template); a portal test call.
    agent_version: int | None = None
    is_test: bool = False


@dataclass(slots=True)
class TurnLatency:
    """Milliseconds from the end of caller speech to the first agent audio, by stage."""

    endpointing_ms: float
    stt_ms: float
    llm_first_token_ms: float | None
    llm_ms: float | None
    tts_first_byte_ms: float | None
    total_ms: float

    @property
    def server_ms(self) -> float:
        """Our own share: total less the silence window and the providers' time."""
        provider = self.stt_ms + (self.llm_ms or 0.0) + (self.tts_first_byte_ms or 0.0)
        return max(0.0, self.total_ms - self.endpointing_ms - provider)


@dataclass(slots=True)
class TurnEvent:
    seq: int
    role: Literal["caller", "agent", "event"]
    text: str
    started_at: datetime
    ended_at: datetime | None = None
    interrupted: bool = False
    latency: TurnLatency | None = None


@dataclass(slots=True)
class CallEndedEvent:
    ended_at: datetime
    reason: str
    #: Time from the caller's barge-in onset to our `clear`, per interruption.
    clear_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """Something a provider measured that costs money, counted where it happened."""

    meter: str  # one of METERS below
    quantity: float
    model: str = ""


METERS = (
    "stt_seconds",
    "llm_input_tokens",
    "llm_output_tokens",
    "tts_characters",
    "realtime_audio_input_tokens",
    "realtime_audio_output_tokens",
    "realtime_text_input_tokens",
    "realtime_text_output_tokens",
)


class SessionSink(Protocol):
    """Receives what happened on a call. Must not block: it is called on the audio path."""

    def call_started(self, call: CallInfo, at: datetime) -> None: ...

    def turn(self, call: CallInfo, turn: TurnEvent) -> None: ...

    def call_ended(self, call: CallInfo, event: CallEndedEvent) -> None: ...

    def greeting_sent(self, call: CallInfo, first_audio_ms: float) -> None: ...

    def barge_in(self, call: CallInfo, clear_ms: float) -> None: ...

    def provider_error(self, call: CallInfo, stage: str) -> None: ...

    def usage(self, call: CallInfo, usage: UsageEvent) -> None: ...
