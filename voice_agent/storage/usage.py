"""A tenant's usage over a period: calls, minutes on the phone, SMS sent and received."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Float, and_, case, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from voice_agent.storage.database import Database
from voice_agent.storage.tables import calls, sms_messages, sms_threads


@dataclass(slots=True, frozen=True)
class Usage:
    since: datetime
    calls: int
    minutes: float
    sms: int
    sms_segments: int


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _seconds(dialect: str) -> ColumnElement[float]:
    """Seconds on the phone: Twilio's duration when known, else ended - started."""
    if dialect == "postgresql":
        elapsed = func.extract("epoch", calls.c.ended_at - calls.c.started_at)
    else:
        elapsed = (func.julianday(calls.c.ended_at) - func.julianday(calls.c.started_at)) * 86400.0
    return case(
        (calls.c.duration_s.is_not(None), cast(calls.c.duration_s, Float)),
        (calls.c.ended_at.is_not(None), cast(elapsed, Float)),
        else_=0.0,
    )


class UsageReport:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def since(self, tenant: str, since: datetime) -> Usage:
        call_query = select(
            func.count(), func.coalesce(func.sum(_seconds(self._db.dialect)), 0.0)
        ).where(
            and_(
                calls.c.tenant == tenant,
                calls.c.started_at >= since,
                # Browser tests of the agent: no phone minutes, not the tenant's calls.
                calls.c.is_test.is_(False),
            )
        )
        sms_query = (
            select(func.count(), func.coalesce(func.sum(sms_messages.c.segments), 0))
            .select_from(sms_messages.join(sms_threads))
            .where(and_(sms_threads.c.tenant == tenant, sms_messages.c.created_at >= since))
        )
        async with self._db.engine.connect() as conn:
            n_calls, seconds = (await conn.execute(call_query)).one()
            n_sms, segments = (await conn.execute(sms_query)).one()
        return Usage(
            since, int(n_calls), round(float(seconds) / 60.0, 1), int(n_sms), int(segments)
        )

    async def this_month(self, tenant: str) -> Usage:
        return await self.since(tenant, month_start())
