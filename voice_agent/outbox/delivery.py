"""What a topic's sender implements, and the outcomes it reports per message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from voice_agent.storage.outbox import OutboxItem


@dataclass(frozen=True, slots=True)
class Delivered:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again later: after ``after_s`` when the receiver said when (Retry-After), else
    after the worker's backoff."""

    reason: str
    after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """Never try again: the receiver refused this message for good."""

    reason: str


Outcome = Delivered | Retry | Rejected


class Delivery(Protocol):
    topic: str
    batch_size: int

    async def deliver(self, items: list[OutboxItem]) -> list[Outcome]:
        """One outcome per item, in the same order. Items have distinct keys, so they may
        be sent concurrently. An exception counts as Retry for every item."""
        ...


class Gate(Protocol):
    """A rate limit: ``wait`` returns when the next request may leave (e.g. CpsGate)."""

    async def wait(self) -> object: ...
