"""Per-tenant events webhooks (tenants.events_webhook_url / _secret) and the stored events
a replay re-sends (outbox rows of topic "events")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from voice_agent.storage.database import Database
from voice_agent.storage.tables import outbox, tenants

EVENTS_TOPIC = "events"


@dataclass(frozen=True, slots=True)
class TenantTarget:
    url: str | None
    secret: str | None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    row_id: int
    key: str
    state: str
    payload: dict[str, Any]


class EventTargetRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def overrides(self) -> dict[str, TenantTarget]:
        """Every tenant with a URL of its own."""
        query = select(
            tenants.c.slug, tenants.c.events_webhook_url, tenants.c.events_webhook_secret
        ).where(tenants.c.events_webhook_url.is_not(None))
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row[0]: TenantTarget(row[1], row[2]) for row in rows}

    async def get(self, tenant: str) -> TenantTarget:
        query = select(tenants.c.events_webhook_url, tenants.c.events_webhook_secret).where(
            tenants.c.slug == tenant
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return TenantTarget(None, None) if row is None else TenantTarget(row[0], row[1])

    async def set(self, tenant: str, url: str | None, secret: str | None) -> None:
        """Store the tenant's URL and secret (None clears each)."""
        statement = (
            update(tenants)
            .where(tenants.c.slug == tenant)
            .values(events_webhook_url=url, events_webhook_secret=secret)
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)

    async def stored_events(
        self, *, since: datetime | None = None, event_type: str | None = None
    ) -> list[StoredEvent]:
        """Stored events oldest first (the order they were emitted in)."""
        query = select(outbox.c.id, outbox.c.key, outbox.c.state, outbox.c.payload).where(
            outbox.c.topic == EVENTS_TOPIC
        )
        if since is not None:
            query = query.where(outbox.c.created_at >= since)
        if event_type is not None:
            query = query.where(outbox.c.payload["type"].as_string() == event_type)
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(outbox.c.id))).all()
        return [StoredEvent(row[0], row[1], row[2], row[3]) for row in rows]

    async def mark_delivered(self, row_ids: list[int], at: datetime) -> None:
        """A replay got these through: they no longer count as rejected. Pending rows are
        left to the outbox worker (it sends them once more, under the same id)."""
        if not row_ids:
            return
        statement = (
            update(outbox)
            .where(outbox.c.id.in_(row_ids), outbox.c.state == "rejected")
            .values(state="delivered", finished_at=at, last_error=None)
        )
        async with self._db.engine.begin() as conn:
            await conn.execute(statement)
