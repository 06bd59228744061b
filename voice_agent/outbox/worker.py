"""The outbox worker: one loop per registered topic, claiming, delivering and settling.

Claims carry a lease: a worker that dies mid-delivery leaves its messages pending, and
they are claimable again once the lease lapses (so delivery is at least once). Failed
messages come back after capped exponential backoff with jitter, so a receiver coming back
after an outage is not hit by every worker at the same instant; one that has failed for
longer than ``max_age_s`` is given up on and kept as rejected (replayable).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

from voice_agent.clock import Clock, utc_now
from voice_agent.outbox.delivery import Delivered, Delivery, Gate, Outcome, Rejected, Retry
from voice_agent.storage.outbox import (
    DELIVERED,
    PENDING,
    REJECTED,
    OutboxItem,
    OutboxRepository,
    Settlement,
    TopicStats,
)

log = logging.getLogger(__name__)


def backoff_s(
    attempts: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Delay before attempt ``attempts + 1``: base·2^(attempts-1), capped, times a jitter in
    [0.5, 1). The jitter's range keeps the sequence from ever shrinking: attempt n+1's
    shortest wait equals attempt n's longest."""
    delay = min(cap_s, base_s * 2 ** max(0, attempts - 1))
    return delay * (0.5 + 0.5 * (rng or random).random())


@dataclass
class _Lane:
    delivery: Delivery
    gate: Gate | None
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    delivered: int = 0
    retried: int = 0
    rejected: int = 0


class OutboxWorker:
    def __init__(
        self,
        repository: OutboxRepository,
        *,
        lease_s: float = 60.0,
        poll_s: float = 1.0,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 600.0,
        max_age_s: float = 3 * 86400.0,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self._repo = repository
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._base_backoff_s = base_backoff_s
        self._max_backoff_s = max_backoff_s
        self._max_age = timedelta(seconds=max_age_s)
        self._clock = clock
        self._rng = rng or random.Random()
        self._lanes: dict[str, _Lane] = {}
        self._closing = False
        self._running = False

    @property
    def repository(self) -> OutboxRepository:
        return self._repo

    @property
    def topics(self) -> list[str]:
        return list(self._lanes)

    def register(self, delivery: Delivery, gate: Gate | None = None) -> None:
        """Deliver ``delivery.topic``'s messages with it; ``gate.wait()`` is awaited once per
        message before it is handed over (a rate limit)."""
        if delivery.topic in self._lanes:
            raise ValueError(f"outbox topic {delivery.topic!r} already has a delivery")
        lane = _Lane(delivery, gate)
        self._lanes[delivery.topic] = lane
        if self._running:
            self._start_lane(delivery.topic, lane)

    def start(self) -> None:
        self._running = True
        for topic, lane in self._lanes.items():
            if lane.task is None:
                self._start_lane(topic, lane)

    def _start_lane(self, topic: str, lane: _Lane) -> None:
        lane.task = asyncio.get_running_loop().create_task(
            self._run(topic, lane), name=f"outbox-{topic}"
        )

    def wake(self, topic: str) -> None:
        """Look for due messages of ``topic`` now rather than at the next poll."""
        lane = self._lanes.get(topic)
        if lane is not None:
            lane.wakeup.set()

    def wake_all(self, topics: set[str]) -> None:
        for topic in topics:
            self.wake(topic)

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Stop claiming; let deliveries in flight finish within ``timeout``. Whatever is
        cut short keeps its lease and is delivered again after it lapses."""
        self._closing = True
        self._running = False
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for lane in self._lanes.values():
            lane.wakeup.set()
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for lane in self._lanes.values():
            lane.task = None

    async def stats(self) -> list[TopicStats]:
        """What waits in the outbox (every worker's view: read from the table)."""
        return await self._repo.stats()

    def counters(self) -> dict[str, dict[str, int]]:
        """This process's own deliveries per topic since it started."""
        return {
            topic: {"delivered": lane.delivered, "retried": lane.retried, "rejected": lane.rejected}
            for topic, lane in self._lanes.items()
        }

    # --- one topic's loop -------------------------------------------------------------

    async def _run(self, topic: str, lane: _Lane) -> None:
        failures = 0  # consecutive database failures, for this loop's own backoff
        while not self._closing:
            lane.wakeup.clear()
            try:
                token, items = await self._repo.claim(
                    topic, lane.delivery.batch_size, self._lease_s
                )
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("outbox %s: cannot claim messages: %s", topic, _reason(exc))
                await self._sleep(lane, backoff_s(failures, 0.5, 30.0, self._rng))
                continue
            if failures:
                log.warning("outbox %s: claiming again after %d failures", topic, failures)
                failures = 0
            if not items:
                await self._sleep(lane, self._poll_s)
                continue
            outcomes = await self._deliver(lane, items)
            try:
                await self._repo.settle(token, self._settlements(topic, lane, items, outcomes))
            except Exception as exc:
                # The lease lapses and the messages go out again: at least once, not lost.
                log.warning("outbox %s: cannot record outcomes: %s", topic, _reason(exc))

    async def _deliver(self, lane: _Lane, items: list[OutboxItem]) -> list[Outcome]:
        try:
            # Bounded by the lease: past it another worker may take the same messages.
            async with asyncio.timeout(self._lease_s * 0.9):
                if lane.gate is not None:
                    for _ in items:
                        await lane.gate.wait()
                outcomes = await lane.delivery.deliver(items)
            if len(outcomes) != len(items):
                raise ValueError(f"{len(outcomes)} outcomes for {len(items)} messages")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("outbox %s: delivery failed: %s", lane.delivery.topic, _reason(exc))
            return [Retry(_reason(exc))] * len(items)
        return outcomes

    def _settlements(
        self, topic: str, lane: _Lane, items: list[OutboxItem], outcomes: list[Outcome]
    ) -> list[Settlement]:
        now = self._clock()
        settled: list[Settlement] = []
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, Delivered):
                lane.delivered += 1
                settled.append(Settlement(item.id, DELIVERED))
            elif isinstance(outcome, Rejected):
                lane.rejected += 1
                log.warning(
                    "outbox %s: message %d (%s) rejected: %s",
                    topic,
                    item.id,
                    item.message.dedupe,
                    outcome.reason,
                )
                settled.append(Settlement(item.id, REJECTED, outcome.reason))
            elif now - item.created_at > self._max_age:
                lane.rejected += 1
                reason = f"gave up after {item.attempts} attempts: {outcome.reason}"
                log.error("outbox %s: message %d %s", topic, item.id, reason)
                settled.append(Settlement(item.id, REJECTED, reason))
            else:
                lane.retried += 1
                delay = outcome.after_s
                if delay is None:
                    delay = backoff_s(
                        item.attempts, self._base_backoff_s, self._max_backoff_s, self._rng
                    )
                retry_at = now + timedelta(seconds=delay)
                settled.append(Settlement(item.id, PENDING, outcome.reason, retry_at))
        return settled

    async def _sleep(self, lane: _Lane, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await lane.wakeup.wait()
        except TimeoutError:
            pass


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
