"""``Events.emit``: the one way a fact becomes an event (runtime.events).

Synchronous and non-blocking, so it can be called from a session sink on the audio path:
the event goes onto the write queue, which stores it as an outbox row (with the call's
own records, in the order they were put) and wakes the events delivery once committed.
A tenant whose events have nowhere to go (no global webhook, none of its own) emits
nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from voice_agent.clock import Clock, utc_now
from voice_agent.events.record import build_event, event_message
from voice_agent.events.targets import Targets
from voice_agent.storage.write_queue import WriteQueue


class Events:
    def __init__(self, writes: WriteQueue, targets: Targets, clock: Clock = utc_now) -> None:
        self._writes = writes
        self.targets = targets
        self._clock = clock
        self.emitted = 0
        #: Its sender (EventDelivery), closed with it; set by events.setup.
        self.delivery: Any = None

    async def aclose(self) -> None:
        if self.delivery is not None:
            await self.delivery.aclose()

    def emit(
        self,
        tenant: str,
        event_type: str,
        data: dict[str, Any],
        *,
        key: str,
        order: str | None = None,
        at: datetime | None = None,
    ) -> str | None:
        """Queue one event; returns its id (None when the tenant has no webhook).

        ``key`` names the fact (the same key, type and tenant give the same id, so a
        second emit of one fact is dropped as a duplicate); ``order`` is the ordering
        key, the key by default: events sharing it are delivered one at a time, in order.
        """
        if not self.targets.wants(tenant):
            return None
        event = build_event(tenant, event_type, data, key, at or self._clock())
        self._writes.put(event_message(event, order or key))
        self.emitted += 1
        return str(event["id"])
