"""Outbound calls waiting for their time, claimed by whichever worker's dialer gets them first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, insert, select, update

from voice_agent.storage.database import Database
from voice_agent.storage.tables import scheduled_calls


@dataclass(slots=True)
class ScheduledCall:
    tenant: str
    to_number: str
    due_at: datetime
    reason: str  # "lead" | "retry" | "callback" | "manual"
    agent: str | None = None
    attempt: int = 0
    lead_id: int | None = None
    context: dict[str, Any] | None = None
    status: str = "pending"
    call_sid: str | None = None
    last_error: str | None = None
    id: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


_FIELDS = (
    "tenant",
    "to_number",
    "due_at",
    "reason",
    "agent",
    "attempt",
    "lead_id",
    "context",
    "status",
    "call_sid",
    "last_error",
    "id",
    "created_at",
)


def _scheduled(row: Row) -> ScheduledCall:
    return ScheduledCall(**{name: getattr(row, name) for name in _FIELDS})


class ScheduledCallRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, call: ScheduledCall) -> int:
        values = {name: getattr(call, name) for name in _FIELDS if name != "id"}
        values["updated_at"] = call.created_at
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                insert(scheduled_calls).values(values).returning(scheduled_calls.c.id)
            )
            call.id = result.scalar_one()
        return call.id

    async def get(self, id_: int) -> ScheduledCall | None:
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(select(scheduled_calls).where(scheduled_calls.c.id == id_))
            ).first()
        return None if row is None else _scheduled(row)

    async def claim_due(self, now: datetime, limit: int = 10) -> list[ScheduledCall]:
        """Mark up to ``limit`` due calls as being placed and return them, oldest first.

        On PostgreSQL, rows another worker is claiming are skipped, not waited for, so each
        call is claimed by exactly one dialer."""
        due = (
            select(scheduled_calls.c.id)
            .where(scheduled_calls.c.status == "pending", scheduled_calls.c.due_at <= now)
            .order_by(scheduled_calls.c.due_at, scheduled_calls.c.id)
            .limit(limit)
        )
        if self._db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(scheduled_calls)
            .where(scheduled_calls.c.id.in_(due.scalar_subquery()))
            .values(status="placing", updated_at=now)
            .returning(scheduled_calls)
        )
        async with self._db.engine.begin() as conn:
            rows = (await conn.execute(claim)).all()
        return sorted((_scheduled(row) for row in rows), key=lambda c: (c.due_at, c.id))

    async def finish(
        self,
        id_: int,
        status: str,
        *,
        call_sid: str | None = None,
        error: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Record the outcome of a claimed call: placed, failed or cancelled."""
        values: dict[str, Any] = {"status": status, "updated_at": now or datetime.now(UTC)}
        if call_sid is not None:
            values["call_sid"] = call_sid
        if error is not None:
            values["last_error"] = error
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(scheduled_calls).where(scheduled_calls.c.id == id_).values(values)
            )

    async def cancel_pending(self, tenant: str, to_number: str, now: datetime | None = None) -> int:
        """Cancel every call still waiting for this number (an opt-out); returns how many."""
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(scheduled_calls)
                .where(
                    scheduled_calls.c.tenant == tenant,
                    scheduled_calls.c.to_number == to_number,
                    scheduled_calls.c.status == "pending",
                )
                .values(status="cancelled", updated_at=now or datetime.now(UTC))
            )
            return result.rowcount

    async def release_stale(self, now: datetime, older_than: timedelta) -> int:
        """Put calls claimed by a worker that died before placing them back in the queue."""
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(scheduled_calls)
                .where(
                    scheduled_calls.c.status == "placing",
                    scheduled_calls.c.updated_at < now - older_than,
                )
                .values(status="pending", updated_at=now)
            )
            return result.rowcount

    async def pending(self, tenant: str | None = None) -> list[ScheduledCall]:
        query = select(scheduled_calls).where(scheduled_calls.c.status == "pending")
        if tenant is not None:
            query = query.where(scheduled_calls.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(query.order_by(scheduled_calls.c.due_at))
            return [_scheduled(row) for row in rows]

    # --- telephony flows (#4) -------------------------------------------------------------

    async def reschedule(self, id_: int, due_at: datetime, now: datetime | None = None) -> None:
        """Put a claimed call back in the queue for later (outside calling hours now)."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(scheduled_calls)
                .where(scheduled_calls.c.id == id_)
                .values(status="pending", due_at=due_at, updated_at=now or datetime.now(UTC))
            )

    async def for_lead(self, lead_id: int) -> list[ScheduledCall]:
        """Every call scheduled for one lead, first attempt first."""
        query = (
            select(scheduled_calls)
            .where(scheduled_calls.c.lead_id == lead_id)
            .order_by(scheduled_calls.c.attempt, scheduled_calls.c.id)
        )
        async with self._db.engine.connect() as conn:
            return [_scheduled(row) for row in await conn.execute(query)]
