"""A called number's route survives a database that is down or too slow to answer, and a
number this process never read is refused rather than handed to another tenant."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.tcp_proxy import TcpProxy
from voice_agent.storage.database import Database
from voice_agent.storage.number_routing import NumberRouter, Routing, RoutingUnavailable
from voice_agent.storage.tenants import Tenant, TenantRepository

ACME = "+13125550111"
BOLT = "+13125550122"
UNOWNED = "+13125550199"


async def _two_tenants(repo: TenantRepository) -> None:
    await repo.save(Tenant("acme", "Acme", "receptionist", "lead_qualifier"))
    await repo.save(Tenant("bolt", "Bolt", "receptionist", "lead_qualifier"))
    await repo.add_number("acme", ACME)
    await repo.add_number("bolt", BOLT, agent="lead_qualifier")


def on_postgres(test: Callable[..., Any]) -> Callable[..., Any]:
    """Only PostgreSQL can be cut or stalled (through the proxy) under a live connection."""
    test = pytest.mark.postgres(test)
    return pytest.mark.parametrize("database_url", ["postgres"], indirect=True)(test)


def _slug(routing: Routing) -> str | None:
    return routing.route.tenant.slug if routing.route is not None else None


async def test_lookup_reads_route_and_whether_any_number_is_owned(db: Database) -> None:
    repo = TenantRepository(db)
    router = NumberRouter(repo)
    embedded = await router.resolve(ACME)
    assert embedded == Routing(None, any_numbers=False)

    await _two_tenants(repo)
    acme, bolt, unowned = [await router.resolve(n) for n in (ACME, BOLT, UNOWNED)]
    assert (_slug(acme), acme.any_numbers, acme.stale) == ("acme", True, False)
    assert bolt.route is not None and (bolt.route.agent, bolt.route.number) == (
        "lead_qualifier",
        BOLT,
    )
    assert unowned == Routing(None, any_numbers=True)
    # Fresh on every call: a number added elsewhere answers at once.
    await repo.add_number("acme", UNOWNED)
    assert _slug(await router.resolve(UNOWNED)) == "acme"


@on_postgres
async def test_a_database_outage_routes_by_the_last_reading(
    database_url: str, pg_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    async with _proxied(database_url, pg_proxy) as db:
        repo = TenantRepository(db)
        await _two_tenants(repo)
        router = NumberRouter(repo)
        assert _slug(await router.resolve(ACME)) == "acme"
        assert (await router.resolve(UNOWNED)).route is None

        await pg_proxy.cut()
        acme = await router.resolve(ACME)
        assert (_slug(acme), acme.any_numbers, acme.stale) == ("acme", True, True)
        assert await router.resolve(UNOWNED) == Routing(None, any_numbers=True, stale=True)
        with pytest.raises(RoutingUnavailable, match=re.escape(BOLT)):  # never read: nobody can say
            await router.resolve(BOLT)
        assert "last known route used" in caplog.text

        await pg_proxy.restore()
        bolt = await router.resolve(BOLT)
        assert (_slug(bolt), bolt.stale) == ("bolt", False)


@on_postgres
async def test_a_stalled_database_is_given_up_on_after_the_limit(
    database_url: str, pg_proxy: TcpProxy
) -> None:
    async with _proxied(database_url, pg_proxy) as db:
        repo = TenantRepository(db)
        await _two_tenants(repo)
        router = NumberRouter(repo, timeout_s=0.3)
        assert _slug(await router.resolve(BOLT)) == "bolt"

        pg_proxy.stall()
        started = time.monotonic()
        bolt = await router.resolve(BOLT)
        waited = time.monotonic() - started
        assert (_slug(bolt), bolt.stale) == ("bolt", True)
        assert 0.3 <= waited < 2.0  # the limit, not the database, decided
        with pytest.raises(RoutingUnavailable):
            await router.resolve(ACME)
        pg_proxy.resume()


@on_postgres
async def test_an_install_without_numbers_keeps_answering_through_an_outage(
    database_url: str, pg_proxy: TcpProxy
) -> None:
    async with _proxied(database_url, pg_proxy) as db:
        router = NumberRouter(TenantRepository(db))
        assert await router.resolve(ACME) == Routing(None, any_numbers=False)
        await pg_proxy.cut()
        # Every number is the default tenant's there, even one never read.
        assert await router.resolve(BOLT) == Routing(None, any_numbers=False, stale=True)


@on_postgres
async def test_a_router_that_never_read_refuses_during_an_outage(
    database_url: str, pg_proxy: TcpProxy
) -> None:
    async with _proxied(database_url, pg_proxy) as db:
        await pg_proxy.cut()
        with pytest.raises(RoutingUnavailable):
            await NumberRouter(TenantRepository(db)).resolve(ACME)


@contextlib.asynccontextmanager
async def _proxied(database_url: str, proxy: TcpProxy) -> AsyncIterator[Database]:
    """The same (emptied, migrated) database, reached through the proxy."""
    proxied = database_url.replace(":5432/", f":{proxy.port}/")
    db = await Database.connect(proxied, connect_timeout=1)
    try:
        yield db
    finally:
        await db.dispose()
