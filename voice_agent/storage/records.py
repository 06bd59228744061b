"""What the app writes about a call, and what it reads back.

Write records are small frozen value objects: the conversation core builds them
on the real-time path and hands them to the write queue, so they hold plain
values only and no database state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True, frozen=True)
class CallStarted:
    call_sid: str
    tenant: str
    direction: str  # "inbound" | "outbound"
    from_number: str
    to_number: str
    agent: str  # agent definition slug
    pipeline: str  # "offline" | "cascade" | "realtime" …
    started_at: datetime
    metadata: dict[str, Any] | None = None
    #: The tenant agent version the call ran (None: the template) and a portal test (#13).
    agent_version: int | None = None
    is_test: bool = False


@dataclass(slots=True, frozen=True)
class TurnRecord:
    """One turn. Written again with the same (call_sid, seq) it replaces the earlier version,
    e.g. once barge-in has trimmed an agent turn to what the caller actually heard."""

    call_sid: str
    seq: int
    role: str  # "caller" | "agent" | "event"
    text: str
    started_at: datetime
    ended_at: datetime | None = None
    interrupted: bool = False
    # Milliseconds, each None when the stage did not run or was not measured.
    endpointing_ms: float | None = None  # silence waited before deciding the caller finished
    stt_ms: float | None = None
    llm_first_token_ms: float | None = None
    llm_ms: float | None = None  # to the first complete sentence
    tts_first_byte_ms: float | None = None
    total_ms: float | None = None  # end of caller speech to first agent audio sent
    server_ms: float | None = None  # our own share of total_ms, providers excluded


@dataclass(slots=True, frozen=True)
class CallEnded:
    call_sid: str
    ended_at: datetime
    status: str  # "completed" | "failed" | …
    end_reason: str | None  # "hangup" | "caller-stop" | "transfer" | "error" | …


@dataclass(slots=True, frozen=True)
class OutboxMessage:
    """Something to send out of the process (voice_agent.outbox delivers it).

    Messages with the same topic and key are delivered one at a time, in the order they were
    enqueued; enqueueing one whose (topic, dedupe) is already stored changes nothing."""

    topic: str  # "events" | "twenty" | "stripe" ...
    tenant: str
    key: str  # ordering key
    dedupe: str  # idempotency key, unique per topic
    payload: dict[str, Any]


@dataclass(slots=True, frozen=True)
class UsageRecord:
    """One measured quantity that costs money (#14). ``key`` makes writing it twice a no-op
    and is the identifier Stripe deduplicates the meter event on."""

    key: str
    tenant: str
    call_sid: str | None
    meter: str
    quantity: float
    model: str
    at: datetime


WriteRecord = CallStarted | TurnRecord | CallEnded | OutboxMessage | UsageRecord


@dataclass(slots=True)
class StoredTurn:
    seq: int
    role: str
    text: str
    started_at: datetime
    ended_at: datetime | None
    interrupted: bool
    endpointing_ms: float | None = None
    stt_ms: float | None = None
    llm_first_token_ms: float | None = None
    llm_ms: float | None = None
    tts_first_byte_ms: float | None = None
    total_ms: float | None = None
    server_ms: float | None = None


@dataclass(slots=True)
class StoredCall:
    id: int
    call_sid: str
    tenant: str
    direction: str
    from_number: str
    to_number: str
    agent: str
    pipeline: str
    status: str
    end_reason: str | None
    started_at: datetime
    ended_at: datetime | None
    metadata: dict[str, Any] | None
    turns: list[StoredTurn] = field(default_factory=list)
    #: The post-call analysis once made (#12): summary, outcome, fields and how it was made.
    analysis: dict[str, Any] | None = None

    @property
    def duration_s(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()
