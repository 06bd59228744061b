"""Usage rows: written idempotently with the call's other records, summed per call, per
tenant and month, and per day for the tenants page's chart."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Insert, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_agent.storage.database import Database
from voice_agent.storage.outbox import insert_messages
from voice_agent.storage.records import OutboxMessage, UsageRecord
from voice_agent.storage.tables import usage

#: Quantities are stored in thousandths so that every sum is an exact integer.
MILLI = 1000
#: The outbox topic usage rows are reported to Stripe on (voice_agent.billing.meter_events).
STRIPE_TOPIC = "stripe"


def to_milli(quantity: float) -> int:
    return round(quantity * MILLI)


@functools.cache  # built once: a statement per batch would leave garbage cycles behind
def _insert_ignoring_duplicates(dialect: str) -> Insert:
    if dialect == "postgresql":
        return postgresql.insert(usage).on_conflict_do_nothing(index_elements=["key"])
    return sqlite.insert(usage).on_conflict_do_nothing(index_elements=["key"])


def usage_row(record: UsageRecord) -> dict[str, Any]:
    return {
        "key": record.key,
        "tenant": record.tenant,
        "call_sid": record.call_sid,
        "meter": record.meter,
        "quantity_milli": to_milli(record.quantity),
        "model": record.model[:64],
        "at": record.at,
    }


def stripe_message(record: UsageRecord) -> OutboxMessage:
    """The outbox message that reports one usage row to Stripe. Its key is the row's own:
    rows are independent (sent side by side), and the row's key dedupes it everywhere."""
    return OutboxMessage(
        topic=STRIPE_TOPIC,
        tenant=record.tenant,
        key=record.key,
        dedupe=record.key,
        payload={
            "meter": record.meter,
            "model": record.model,
            "quantity_milli": to_milli(record.quantity),
            "at": int(record.at.timestamp()),
            "call_sid": record.call_sid,
        },
    )


async def insert_usage(
    conn: AsyncConnection, records: Sequence[UsageRecord], *, report: bool = False
) -> None:
    """Insert the rows; a key already stored (a retried batch) is left as it is. With
    ``report``, each row's Stripe message is enqueued in the same transaction."""
    await conn.execute(
        _insert_ignoring_duplicates(conn.dialect.name), [usage_row(r) for r in records]
    )
    if report:
        await insert_messages(conn, [stripe_message(r) for r in records], datetime.now(UTC))


@dataclass(slots=True, frozen=True)
class StoredUsage:
    key: str
    meter: str
    model: str
    quantity: float
    at: datetime
    call_sid: str | None


class UsageRepository:
    def __init__(self, db: Database, *, report: bool = False) -> None:
        self._db = db
        self._report = report  # to Stripe, through the outbox

    async def add(self, *records: UsageRecord) -> None:
        """Write rows now (outside a call's write queue: SMS, status callbacks)."""
        if records:
            async with self._db.engine.begin() as conn:
                await insert_usage(conn, records, report=self._report)

    async def rows_for_call(self, call_sid: str) -> list[StoredUsage]:
        query = (
            select(usage.c.key, usage.c.meter, usage.c.model, usage.c.quantity_milli, usage.c.at)
            .where(usage.c.call_sid == call_sid)
            .order_by(usage.c.id)
        )
        async with self._db.engine.connect() as conn:
            return [
                StoredUsage(r.key, r.meter, r.model, r.quantity_milli / MILLI, r.at, call_sid)
                for r in await conn.execute(query)
            ]

    async def totals(
        self, tenant: str, since: datetime, until: datetime | None = None
    ) -> dict[tuple[str, str], float]:
        """(meter, model) -> total quantity for the tenant over [since, until)."""
        condition = and_(usage.c.tenant == tenant, usage.c.at >= since)
        if until is not None:
            condition = and_(condition, usage.c.at < until)
        query = (
            select(usage.c.meter, usage.c.model, func.sum(usage.c.quantity_milli))
            .where(condition)
            .group_by(usage.c.meter, usage.c.model)
        )
        async with self._db.engine.connect() as conn:
            return {
                (meter, model): int(total) / MILLI
                for meter, model, total in await conn.execute(query)
            }

    async def daily(
        self, tenant: str, since: datetime, until: datetime
    ) -> dict[date, dict[tuple[str, str], float]]:
        """Per UTC day in [since, until): (meter, model) -> quantity. Days without usage
        are absent."""
        if self._db.dialect == "postgresql":
            day = func.date_trunc("day", func.timezone("UTC", usage.c.at))
        else:
            day = func.date(usage.c.at)
        query = (
            select(day.label("day"), usage.c.meter, usage.c.model, func.sum(usage.c.quantity_milli))
            .where(and_(usage.c.tenant == tenant, usage.c.at >= since, usage.c.at < until))
            .group_by(day, usage.c.meter, usage.c.model)
        )
        out: dict[date, dict[tuple[str, str], float]] = {}
        async with self._db.engine.connect() as conn:
            for when, meter, model, total in await conn.execute(query):
                key = _as_date(when)
                out.setdefault(key, {})[(meter, model)] = int(total) / MILLI
        return out


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def month_bounds(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end
