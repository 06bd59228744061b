"""What the CRM has not recorded yet: leads and analysed calls of the last days without
their activity row. The CRM's writes follow a lead's or an analysis's own commit, so a
database blink (or a worker dying) between the two leaves one behind; these queries find
it again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, or_, select

from voice_agent.storage.leads import Lead
from voice_agent.storage.tables import activities, calls, leads

_COLUMNS = (
    "id",
    "tenant",
    "first_name",
    "last_name",
    "email",
    "phone",
    "source",
    "fields",
    "status",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class UnrecordedCall:
    call_sid: str
    tenant: str
    direction: str
    number: str
    lead_id: int | None
    analysis: dict[str, Any]


async def unrecorded_leads(conn: Any, since: datetime, limit: int) -> list[Lead]:
    done = and_(
        activities.c.tenant == leads.c.tenant,
        activities.c.kind == "lead",
        activities.c.ref == cast(leads.c.id, String),
    )
    query = (
        select(leads)
        .outerjoin(activities, done)
        .where(leads.c.created_at >= since, activities.c.id.is_(None))
        .order_by(leads.c.id)
        .limit(limit)
    )
    return [Lead(**{c: getattr(row, c) for c in _COLUMNS}) for row in await conn.execute(query)]


async def unrecorded_calls(conn: Any, since: datetime, limit: int) -> list[UnrecordedCall]:
    done = and_(
        activities.c.tenant == calls.c.tenant,
        activities.c.kind == "call",
        activities.c.ref == calls.c.call_sid,
    )
    query = (
        select(
            calls.c.call_sid,
            calls.c.tenant,
            calls.c.direction,
            calls.c.from_number,
            calls.c.to_number,
            calls.c.lead_id,
            calls.c.analysis,
        )
        .outerjoin(activities, done)
        .where(
            calls.c.analyzed_at >= since,
            calls.c.analysis.is_not(None),
            calls.c.tenant != "",
            activities.c.id.is_(None),
            # Only calls the CRM can place on a person: a dialable number, or a lead.
            or_(
                and_(calls.c.direction == "outbound", calls.c.to_number.like("+%")),
                and_(calls.c.direction != "outbound", calls.c.from_number.like("+%")),
                calls.c.lead_id.is_not(None),
            ),
        )
        .order_by(calls.c.analyzed_at)
        .limit(limit)
    )
    found = []
    for row in await conn.execute(query):
        if not isinstance(row.analysis, dict) or "outcome" not in row.analysis:
            continue
        number = row.to_number if row.direction == "outbound" else row.from_number
        found.append(
            UnrecordedCall(
                row.call_sid, row.tenant, row.direction, number, row.lead_id, row.analysis
            )
        )
    return found
