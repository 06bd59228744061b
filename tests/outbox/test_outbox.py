"""The outbox on both backends: idempotent enqueue, per-key order through retries, leases,
backoff, and (PostgreSQL) several workers sharing one table."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from datetime import datetime

import pytest

from voice_agent.outbound.pacing import CpsGate
from voice_agent.outbox import (
    Delivered,
    OutboxItem,
    OutboxMessage,
    OutboxRepository,
    OutboxWorker,
    Outcome,
    Rejected,
    Retry,
    backoff_s,
)
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.outbox import DELIVERED, Settlement
from voice_agent.storage.write_queue import WriteQueue


def message(key: str, n: int, topic: str = "test", tenant: str = "acme") -> OutboxMessage:
    return OutboxMessage(topic, tenant, key, f"{key}-{n}", {"key": key, "n": n})


class Recorder:
    """A delivery that records what it was handed and answers from a script."""

    def __init__(
        self, topic: str = "test", batch_size: int = 10, fail: set[str] | None = None
    ) -> None:
        self.topic = topic
        self.batch_size = batch_size
        self.seen: list[tuple[str, int]] = []  # (key, n) per attempt
        self.delivered: list[tuple[str, int]] = []
        self.fail_once = set(fail or ())  # dedupes that fail their first attempt
        self.reject: set[str] = set()
        self.delay_s = 0.0
        self.called = asyncio.Event()
        self.done = asyncio.Event()
        self.expect = 0

    async def deliver(self, items: list[OutboxItem]) -> list[Outcome]:
        keys = [item.message.key for item in items]
        assert len(keys) == len(set(keys)), "one batch never holds two messages of one key"
        self.seen.extend((i.message.payload["key"], i.message.payload["n"]) for i in items)
        self.called.set()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        outcomes: list[Outcome] = []
        for item in items:
            payload = item.message.payload
            if item.message.dedupe in self.fail_once:
                self.fail_once.discard(item.message.dedupe)
                outcomes.append(Retry("receiver said 503", after_s=0.05))
            elif item.message.dedupe in self.reject:
                outcomes.append(Rejected("receiver said 400"))
            else:
                self.delivered.append((payload["key"], payload["n"]))
                outcomes.append(Delivered())
        if len(self.delivered) >= self.expect:
            self.done.set()
        return outcomes


class CountingGate(CpsGate):
    def __init__(self, cps: float) -> None:
        super().__init__(cps)
        self.passed = 0

    async def wait(self) -> None:
        await super().wait()
        self.passed += 1


def in_key_order(pairs: list[tuple[str, int]]) -> bool:
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, n in pairs:
        by_key[key].append(n)
    return all(ns == sorted(ns) for ns in by_key.values())


async def wait_for(event: asyncio.Event, timeout: float = 20.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        await event.wait()


async def test_enqueue_is_idempotent_by_dedupe(db: Database) -> None:
    repo = OutboxRepository(db)
    assert await repo.enqueue(message("a", 1), message("a", 2)) == 2
    assert await repo.enqueue(message("a", 1), message("a", 3)) == 1
    # The same dedupe on another topic is another message.
    assert await repo.enqueue(message("a", 1, topic="other")) == 1
    stats = {s.topic: s for s in await repo.stats()}
    assert stats["test"].pending == 3
    assert stats["other"].pending == 1
    _, items = await repo.claim("test", 10, 30)
    # One per key: the later ones wait until "a-1" is settled.
    assert [i.message.dedupe for i in items] == ["a-1"]


async def test_a_claim_takes_at_most_its_limit_and_no_locked_rows(db: Database) -> None:
    repo = OutboxRepository(db)
    await repo.enqueue(*(message(f"k{k}", n) for n in range(3) for k in range(20)))
    first = await asyncio.gather(repo.claim("test", 8, 30), repo.claim("test", 8, 30))
    claimed = [item.id for _, items in first for item in items]
    assert len(claimed) == 16 and len(set(claimed)) == 16
    _, rest = await repo.claim("test", 8, 30)
    assert len(rest) == 4  # the four keys nobody holds yet; the others wait for their heads


async def test_per_key_order_holds_through_retries(db: Database) -> None:
    repo = OutboxRepository(db)
    messages = [message(key, n) for n in range(5) for key in ("a", "b", "c")]
    await repo.enqueue(*messages)
    delivery = Recorder(fail={"a-0", "b-2", "c-4"})
    delivery.reject = {"b-3"}
    delivery.expect = 14
    worker = OutboxWorker(repo, poll_s=0.02, base_backoff_s=0.02)
    gate = CountingGate(1000.0)
    worker.register(delivery, gate)
    worker.start()
    try:
        await wait_for(delivery.done)
    finally:
        await worker.aclose()
    assert gate.passed == len(delivery.seen)  # the rate limit saw every attempt
    assert sorted(delivery.delivered) == sorted(
        (m.payload["key"], m.payload["n"]) for m in messages if m.dedupe != "b-3"
    )
    assert in_key_order(delivery.seen)
    # A retried message is attempted again before anything after it in its key.
    a_attempts = [n for key, n in delivery.seen if key == "a"]
    assert a_attempts[:2] == [0, 0]
    stats = {s.topic: s for s in await repo.stats()}
    assert stats["test"].pending == 0
    assert stats["test"].rejected == 1


async def test_write_queue_enqueues_in_order_with_call_records(db: Database) -> None:
    calls = CallRepository(db)
    woken: list[set[str]] = []
    calls.on_outbox = woken.append
    queue = WriteQueue(calls)
    queue.start()
    try:
        for n in range(3):
            queue.put(message("call-1", n, topic="events"))
        queue.put(message("call-1", 0, topic="events"))  # a retry of the call path: ignored
        assert await queue.flush(5)
    finally:
        await queue.aclose()
    assert woken and set().union(*woken) == {"events"}
    repo = OutboxRepository(db)
    assert (await repo.stats())[0].pending == 3
    _, items = await repo.claim("events", 10, 30)
    assert [i.message.payload["n"] for i in items] == [0]


async def test_a_dead_workers_lease_comes_back(db: Database) -> None:
    repo = OutboxRepository(db)
    await repo.enqueue(message("a", 1))
    token, items = await repo.claim("test", 10, lease_s=0.3)
    assert len(items) == 1
    # Held by the first claim: nobody else gets it while the lease lasts.
    assert (await repo.claim("test", 10, 30))[1] == []
    # The first worker dies without settling; once its lease lapses the message is back.
    await asyncio.sleep(0.4)
    token2, again = await repo.claim("test", 10, 30)
    assert [i.id for i in again] == [items[0].id]
    assert again[0].attempts == 2
    # The dead worker waking up late cannot settle what it no longer holds.
    assert await repo.settle(token, [Settlement(items[0].id, DELIVERED)]) == 0
    assert await repo.settle(token2, [Settlement(items[0].id, DELIVERED)]) == 1


async def test_a_worker_killed_mid_delivery_leaves_it_to_another(db: Database) -> None:
    repo = OutboxRepository(db)
    await repo.enqueue(message("a", 1))
    stuck = Recorder()
    stuck.delay_s = 30.0  # still sending when the process dies
    first = OutboxWorker(repo, lease_s=1.0, poll_s=0.05)
    first.register(stuck)
    first.start()
    await wait_for(stuck.called)
    await first.aclose(timeout=0)  # cancelled mid-delivery: nothing settled, lease held
    healthy = Recorder()
    healthy.expect = 1
    second = OutboxWorker(repo, lease_s=5, poll_s=0.05)
    second.register(healthy)
    second.start()
    try:
        await wait_for(healthy.done)
    finally:
        await second.aclose()
    assert healthy.delivered == [("a", 1)]
    assert (await repo.stats())[0].pending == 0


def test_backoff_grows_and_is_capped() -> None:
    rng = random.Random(7)
    for _ in range(200):
        delays = [backoff_s(n, 1.0, 600.0, rng) for n in range(1, 16)]
        assert all(0.5 <= d < 600.0 for d in delays)
        uncapped = delays[:10]  # 2^9 s is the last step below the 600 s cap
        assert uncapped == sorted(uncapped)
        assert all(300.0 <= d < 600.0 for d in delays[10:])
    # Jitter: the same attempt does not always wait the same time.
    assert len({round(backoff_s(4, 1.0, 600.0, rng), 6) for _ in range(20)}) > 10


async def test_retry_waits_longer_each_time(db: Database) -> None:
    clock_now = [datetime.fromisoformat("2026-12-07T08:00:00+00:00")]
    repo = OutboxRepository(db, clock=lambda: clock_now[0])
    await repo.enqueue(message("a", 1))
    worker = OutboxWorker(
        repo, base_backoff_s=2.0, max_backoff_s=1000.0, clock=lambda: clock_now[0]
    )

    class Down:
        topic = "test"
        batch_size = 1

        async def deliver(self, items: list[OutboxItem]) -> list[Outcome]:
            raise ConnectionRefusedError("receiver down")

    lane_delivery = Down()
    worker.register(lane_delivery)
    waits: list[float] = []
    lane = worker._lanes["test"]  # one round at a time, on a clock the test moves
    for _ in range(6):
        token, items = await repo.claim("test", 1, 30)
        assert len(items) == 1
        outcomes = await worker._deliver(lane, items)
        settlements = worker._settlements("test", lane, items, outcomes)
        waits.append((settlements[0].retry_at - clock_now[0]).total_seconds())
        await repo.settle(token, settlements)
        assert (await repo.claim("test", 1, 30))[1] == []  # not due yet
        clock_now[0] = settlements[0].retry_at
    assert waits == sorted(waits)
    assert waits[-1] > 8 * waits[0] / 2
    stats = (await repo.stats())[0]
    assert stats.last_error == "ConnectionRefusedError: receiver down"


async def test_gives_up_after_max_age_and_keeps_it_replayable(db: Database) -> None:
    repo = OutboxRepository(db)
    await repo.enqueue(OutboxMessage("events", "acme", "k", "d1", {"type": "call.ended"}))
    down = Recorder(topic="events")
    down.fail_once = {"d1"}
    worker = OutboxWorker(repo, max_age_s=0.0, poll_s=0.02)
    worker.register(down)
    worker.start()
    try:
        for _ in range(200):
            if (await repo.stats())[0].rejected:
                break
            await asyncio.sleep(0.02)
    finally:
        await worker.aclose()
    assert (await repo.stats())[0].rejected == 1
    assert await repo.requeue("events", payload_type="call.sent") == 0
    assert await repo.requeue("events", payload_type="call.ended") == 1
    assert (await repo.stats())[0].pending == 1


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_workers_on_postgres_share_without_doubles(database_url: str) -> None:
    keys = [f"call-{k}" for k in range(20)]
    messages = [message(key, n) for n in range(15) for key in keys]
    dbs = [await Database.connect(database_url) for _ in range(3)]
    try:
        await OutboxRepository(dbs[0]).enqueue(*messages)
        deliveries = [
            Recorder(batch_size=8, fail={f"call-{k}-3" for k in range(i, 20, 2)}) for i in range(2)
        ]
        shared: list[tuple[str, int]] = []  # both workers' deliveries, as they happened
        for d in deliveries:
            d.delay_s = 0.002
            d.delivered = shared
            d.expect = len(messages)
        deliveries[1].done = deliveries[0].done
        workers = [
            OutboxWorker(OutboxRepository(d), poll_s=0.02, base_backoff_s=0.02) for d in dbs[1:]
        ]
        for worker, delivery in zip(workers, deliveries, strict=True):
            worker.register(delivery)
            worker.start()
        try:
            await wait_for(deliveries[0].done, 60)
        finally:
            for worker in workers:
                await worker.aclose()
        assert sorted(shared) == sorted((m.payload["key"], m.payload["n"]) for m in messages)
        assert len(shared) == len(set(shared)), "a message was delivered twice"
        assert all(len(d.seen) > 50 for d in deliveries), [len(d.seen) for d in deliveries]
        # Each key's messages went out in order, whichever worker took each one.
        assert in_key_order(shared)
        for key in keys:
            assert [n for k, n in shared if k == key] == list(range(15))
        stats = (await OutboxRepository(dbs[0]).stats())[0]
        assert (stats.pending, stats.delivered) == (0, len(messages))
    finally:
        for d in dbs:
            await d.dispose()
