"""Workers converge on the published agent versions even when a Redis update is lost
(#13), on SQLite and PostgreSQL with real Redis: two workers' AgentBooks share a
database; one misses the other's announcement and its periodic resync catches up within
the interval; an invalid stored version is tried once, a failed reload is tried again."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from prompts import load_agents
from tests.app.twilio_side import until
from tests.storage.conftest import pg_url
from tests.tcp_proxy import TcpProxy
from voice_agent.agents.book import AgentBook, AgentUpdates
from voice_agent.agents.resync import AgentResync
from voice_agent.agents.studio import tenant_copy
from voice_agent.storage.agents import AgentRepository
from voice_agent.storage.database import Database
from voice_agent.storage.tenants import Tenant, TenantRepository

REDIS = "redis://127.0.0.1:6379/0"
INTERVAL_S = 0.1
KEY = ("acme", "receptionist")


@dataclass
class Worker:
    book: AgentBook
    updates: AgentUpdates
    resync: AgentResync


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def workers(
    db: Database, redis: aioredis.Redis
) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    channel = f"test:agents:{secrets.token_hex(4)}"  # parallel runs do not hear each other
    repo = AgentRepository(db)
    made: list[Worker] = []

    async def make(
        on_update: Callable[[AgentBook, str, str], Awaitable[None]] | None = None,
    ) -> Worker:
        book = AgentBook(load_agents(), "cascade")
        await book.load(repo)

        async def reload(tenant: str, slug: str) -> None:
            if on_update is not None:
                await on_update(book, tenant, slug)
            else:
                await book.refresh(repo, tenant, slug)

        worker = Worker(
            book, AgentUpdates(redis, channel, reload), AgentResync(book, repo, reload, INTERVAL_S)
        )
        await worker.updates.start()
        made.append(worker)
        return worker

    yield make
    for worker in made:
        await worker.resync.aclose()
        await worker.updates.aclose()


async def _published(db: Database, greeting: str) -> tuple[AgentRepository, int]:
    await TenantRepository(db).save(
        Tenant(slug="acme", name="Acme", agent="receptionist", outbound_agent="lead_qualifier")
    )
    repo = AgentRepository(db)
    agent = await repo.find(*KEY) or await repo.create(
        *KEY, tenant_copy("receptionist"), "s@x", publish=False
    )
    data = (await repo.draft(agent)).data | {"greeting": greeting}
    return repo, await repo.publish(agent, data, "s@x")


async def test_a_worker_that_missed_the_update_converges(
    db: Database, workers: Callable[..., Awaitable[Worker]]
) -> None:
    a, b = await workers(), await workers()
    # Delivered: B hears A's announcement over Redis.
    await _published(db, "Hello one.")
    await a.updates.announce(*KEY)
    await until(lambda: b.book.versions().get(KEY) == 1, 5.0, "B to hear v1")

    # Missed: B is not listening while A publishes v2.
    await b.updates.aclose()
    _, version = await _published(db, "Hello two.")
    await a.updates.announce(*KEY)
    assert a.book.versions()[KEY] == version == 2
    await asyncio.sleep(0.3)
    assert b.book.versions()[KEY] == 1  # nothing told it

    started = time.perf_counter()
    b.resync.start()
    await until(lambda: b.book.versions().get(KEY) == 2, 5.0, "B to resync")
    took = time.perf_counter() - started
    print(f"missed update picked up by the resync after {took * 1000:.0f} ms")
    assert took < INTERVAL_S * 5
    found = b.book.lookup(*KEY)
    assert found is not None and found.greeting == "Hello two."
    assert await b.resync.check() == []  # converged: nothing more to do


async def test_an_invalid_version_is_tried_once(
    db: Database, workers: Callable[..., Awaitable[Worker]]
) -> None:
    repo, _ = await _published(db, "Valid words.")
    b = await workers()
    assert b.book.versions()[KEY] == 1
    agent = await repo.get(*KEY)
    # Stored by something other than the studio (which validates): never installed.
    broken = (await repo.draft(agent)).data | {"greeting": "{nope}"}
    await repo.publish(agent, broken, "s@x")
    assert await b.resync.check() == [KEY]
    assert b.book.versions()[KEY] == 1  # the last good version keeps running
    assert await b.resync.check() == []  # not again every period
    await _published(db, "Fixed words.")  # v3: tried, and used
    assert await b.resync.check() == [KEY]
    assert b.book.versions()[KEY] == 3


async def test_a_failed_reload_is_tried_again(
    db: Database, workers: Callable[..., Awaitable[Worker]]
) -> None:
    failures = [RuntimeError("greeting synthesis failed")]

    async def flaky(book: AgentBook, tenant: str, slug: str) -> None:
        if failures:
            raise failures.pop()
        await book.refresh(AgentRepository(db), tenant, slug)

    b = await workers(flaky)
    await _published(db, "Hello.")
    assert await b.resync.check() == [KEY]
    assert KEY not in b.book.versions()  # the reload failed
    assert await b.resync.check() == [KEY]  # so it is tried again
    assert b.book.versions()[KEY] == 1


@pytest.mark.postgres
async def test_the_resync_outlives_a_database_outage(
    pg_session_database: str, pg_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    direct = await Database.connect(pg_url(pg_session_database))
    proxied = await Database.connect(
        pg_url(pg_session_database, port=pg_proxy.port), connect_timeout=1
    )
    repo = AgentRepository(proxied)
    book = AgentBook(load_agents(), "cascade")

    async def reload(tenant: str, slug: str) -> None:
        await book.refresh(repo, tenant, slug)

    resync = AgentResync(book, repo, reload, INTERVAL_S)
    try:
        async with direct.engine.begin() as conn:  # this test's own rows only
            await conn.execute(text("TRUNCATE tenant_agents RESTART IDENTITY CASCADE"))
        await pg_proxy.cut()
        resync.start()
        await _published(direct, "Said after the outage.")
        with caplog.at_level(logging.WARNING, "voice_agent.agents.resync"):
            await until(lambda: "agent resync failed" in caplog.text, 5.0, "the failure logged")
        assert KEY not in book.versions()
        await pg_proxy.restore()
        await until(lambda: book.versions().get(KEY) == 1, 10.0, "the resync to recover")
    finally:
        await resync.aclose()
        await proxied.dispose()
        await direct.dispose()
