"""Tenants (the client businesses sharing a deployment) and the numbers that route to them."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_agent.storage.database import Database
from voice_agent.storage.tables import tenant_numbers, tenants


class UnknownTenant(LookupError):
    """No tenant has that slug."""


class TenantExists(ValueError):
    """A tenant with that slug exists already."""


class NumberTaken(ValueError):
    """The number already routes to a tenant; a number belongs to one tenant only."""


@dataclass(slots=True)
class Tenant:
    slug: str
    name: str
    agent: str
    outbound_agent: str
    timezone: str = "America/New_York"
    calling_start_min: int = 9 * 60
    calling_end_min: int = 20 * 60
    calling_days: str = "123456"
    retry_attempts: int = 2
    retry_interval_min: int = 30
    recording_retention_days: int = 90
    sms_help_text: str | None = None
    sms_max_segments: int = 3
    brand_color: str = "#2563eb"
    logo_url: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Publishing this tenant's agent waits for an admin's approval (#13).
    require_approval: bool = False
    #: Longest call in seconds for this tenant (None: MAX_CALL_S).
    max_call_s: int | None = None


@dataclass(slots=True, frozen=True)
class NumberRoute:
    """What a called number resolves to: the tenant and the agent that answers it."""

    tenant: Tenant
    number: str
    agent: str
    outbound_agent: str


_COLUMNS = tuple(f.name for f in fields(Tenant))


def _tenant(row: Row) -> Tenant:
    return Tenant(**{name: getattr(row, name) for name in _COLUMNS})


class TenantRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, slug: str) -> Tenant:
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(select(tenants).where(tenants.c.slug == slug))).first()
        if row is None:
            raise UnknownTenant(slug)
        return _tenant(row)

    async def all(self) -> list[Tenant]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(select(tenants).order_by(tenants.c.slug))
            return [_tenant(row) for row in rows]

    async def save(self, tenant: Tenant) -> Tenant:
        """Insert the tenant, or update every field of the one with its slug."""
        values = asdict(tenant)
        async with self._db.engine.begin() as conn:
            existing = (
                await conn.execute(select(tenants.c.id).where(tenants.c.slug == tenant.slug))
            ).first()
            if existing is None:
                await conn.execute(insert(tenants).values(values))
            else:
                values.pop("created_at")
                await conn.execute(
                    update(tenants).where(tenants.c.slug == tenant.slug).values(values)
                )
        return tenant

    async def create(self, tenant: Tenant) -> Tenant:
        """Insert a new tenant; TenantExists when the slug is taken (never overwrites)."""
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(insert(tenants).values(asdict(tenant)))
        except IntegrityError:
            raise TenantExists(tenant.slug) from None
        return tenant

    async def ensure(self, tenant: Tenant) -> Tenant:
        """The stored tenant with this slug, created from ``tenant`` when there is none."""
        try:
            return await self.get(tenant.slug)
        except UnknownTenant:
            with contextlib.suppress(TenantExists):  # another worker created it first
                await self.create(tenant)
            return await self.get(tenant.slug)

    async def add_number(self, slug: str, number: str, agent: str | None = None) -> None:
        """Route ``number`` (E.164) to the tenant; ``agent`` overrides the tenant's default."""
        await self.get(slug)
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(
                    insert(tenant_numbers).values(number=number, tenant=slug, agent=agent)
                )
        except IntegrityError:
            raise NumberTaken(number) from None

    async def remove_number(self, number: str) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(delete(tenant_numbers).where(tenant_numbers.c.number == number))

    async def numbers(self, slug: str) -> list[tuple[str, str | None]]:
        """(number, agent override) pairs of one tenant."""
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(
                select(tenant_numbers.c.number, tenant_numbers.c.agent)
                .where(tenant_numbers.c.tenant == slug)
                .order_by(tenant_numbers.c.number)
            )
            return [(row.number, row.agent) for row in rows]

    async def route(self, number: str) -> NumberRoute | None:
        """The tenant a called number belongs to, or None for a number nobody owns."""
        async with self._db.engine.connect() as conn:
            return await _route(conn, number)

    async def lookup(self, number: str) -> tuple[NumberRoute | None, bool]:
        """``route(number)`` and ``has_numbers()`` in one connection: a call's routing."""
        async with self._db.engine.connect() as conn:
            route = await _route(conn, number)
            return route, route is not None or await _has_numbers(conn)

    async def has_numbers(self) -> bool:
        """Whether any tenant owns a number; until one does, everything routes to the
        default tenant (the embedded install)."""
        async with self._db.engine.connect() as conn:
            return await _has_numbers(conn)


async def _route(conn: AsyncConnection, number: str) -> NumberRoute | None:
    query = (
        select(tenants, tenant_numbers.c.agent.label("number_agent"))
        .join(tenant_numbers, tenant_numbers.c.tenant == tenants.c.slug)
        .where(tenant_numbers.c.number == number)
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    tenant = _tenant(row)
    return NumberRoute(
        tenant=tenant,
        number=number,
        agent=row.number_agent or tenant.agent,
        outbound_agent=tenant.outbound_agent,
    )


async def _has_numbers(conn: AsyncConnection) -> bool:
    return (await conn.execute(select(tenant_numbers.c.id).limit(1))).first() is not None
