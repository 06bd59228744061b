"""Events tests: the storage tests' databases (SQLite and PostgreSQL), a stand-in
receiver on loopback, and the real pieces wired as the server wires them: write queue,
outbox worker (fast backoff), targets, emitter, delivery."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from loadtest.standins.event_receiver import EventReceiver
from tests.storage.conftest import database_url, db, pg_session_database
from voice_agent.events.delivery import EventDelivery
from voice_agent.events.emitter import Events
from voice_agent.events.secret import new_secret
from voice_agent.events.targets import Targets
from voice_agent.outbox import OutboxRepository, OutboxWorker
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.event_targets import EventTargetRepository
from voice_agent.storage.tenants import Tenant, TenantRepository
from voice_agent.storage.write_queue import WriteQueue

__all__ = ["database_url", "db", "pg_session_database"]


@dataclass
class Rig:
    db: Database
    receiver: EventReceiver
    secret: str
    events: Events
    targets: Targets
    worker: OutboxWorker
    writes: WriteQueue
    repository: OutboxRepository

    async def wait_until(
        self,
        done: Callable[[], object],
        timeout: float = 20.0,  # noqa: ASYNC109
    ) -> None:
        """Until ``done()`` (a value, or an awaitable of one) is true."""
        for _ in range(int(timeout / 0.01)):
            result = done()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)
        raise TimeoutError(f"not done within {timeout} s")

    async def flush(self) -> None:
        assert await self.writes.flush(10)


@pytest.fixture
async def receiver() -> AsyncIterator[EventReceiver]:
    secret = new_secret()
    rec = EventReceiver(secret)
    await rec.start()
    try:
        yield rec
    finally:
        await rec.stop()


@pytest.fixture
async def rig(db: Database, receiver: EventReceiver) -> AsyncIterator[Rig]:
    tenants = TenantRepository(db)
    for slug in ("acme", "beta"):
        await tenants.save(Tenant(slug, slug.title(), "receptionist", "lead_qualifier"))
    calls = CallRepository(db)
    writes = WriteQueue(calls)
    writes.start()
    repository = OutboxRepository(db)
    worker = OutboxWorker(repository, poll_s=0.05, base_backoff_s=0.05, max_backoff_s=0.3)
    calls.on_outbox = worker.wake_all
    targets = Targets(EventTargetRepository(db), receiver.url(), receiver.secret)
    await targets.refresh()
    events = Events(writes, targets)
    delivery = EventDelivery(targets, timeout_s=2.0)
    events.delivery = delivery
    worker.register(delivery)
    worker.start()
    try:
        yield Rig(db, receiver, receiver.secret, events, targets, worker, writes, repository)
    finally:
        await worker.aclose()
        await writes.aclose()
        await events.aclose()
