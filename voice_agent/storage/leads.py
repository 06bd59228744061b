"""Leads from the marketing form: stored once per person per window, then called."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, or_, select, update

from voice_agent.storage.database import Database
from voice_agent.storage.tables import leads

LEAD_STATUSES = frozenset(
    {
        "new",
        "calling",
        "contacted",
        "voicemail",
        "no-answer",
        "opted-out",
        "failed",
        # Set from a call's post-call analysis (#12).
        "qualified",
        "not-interested",
        "callback",
        "transferred",
    }
)


@dataclass(slots=True)
class Lead:
    tenant: str
    first_name: str
    phone: str  # E.164
    last_name: str = ""
    email: str | None = None
    source: str | None = None
    fields: dict[str, Any] | None = None
    status: str = "new"
    id: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime | None = None

    def variables(self) -> dict[str, str]:
        """The agent's prompt variables for a call to this lead ({first_name}, ...)."""
        values = {
            str(k): str(v)
            for k, v in (self.fields or {}).items()
            if isinstance(v, str | int | float) and not isinstance(v, bool)
        }
        values.update(
            first_name=self.first_name,
            last_name=self.last_name,
            email=self.email or "",
            phone=self.phone,
            source=self.source or "",
        )
        if self.source:
            values.setdefault("lead_source_note", f" ({self.source})")
        return values


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


def _lead(row: Row[Any]) -> Lead:
    return Lead(**{name: getattr(row, name) for name in _COLUMNS})


class LeadRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, lead: Lead) -> int:
        if lead.status not in LEAD_STATUSES:
            raise ValueError(f"unknown lead status {lead.status!r}")
        lead.updated_at = lead.updated_at or lead.created_at
        values = {name: getattr(lead, name) for name in _COLUMNS if name != "id"}
        async with self._db.engine.begin() as conn:
            result = await conn.execute(insert(leads).values(values).returning(leads.c.id))
            lead.id = int(result.scalar_one())
        return lead.id

    async def get(self, lead_id: int, tenant: str | None = None) -> Lead | None:
        """The lead, or None (also when it belongs to another tenant)."""
        query = select(leads).where(leads.c.id == lead_id)
        if tenant is not None:
            query = query.where(leads.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _lead(row)

    async def recent_duplicate(
        self, tenant: str, phone: str, email: str | None, since: datetime
    ) -> Lead | None:
        """The newest lead of this tenant with the same phone or email created at or after
        ``since``: a form submitted twice (double click, n8n retry) is one lead."""
        same = leads.c.phone == phone
        if email:
            same = or_(same, leads.c.email == email)
        query = (
            select(leads)
            .where(leads.c.tenant == tenant, leads.c.created_at >= since, same)
            .order_by(leads.c.created_at.desc(), leads.c.id.desc())
            .limit(1)
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _lead(row)

    async def set_status(
        self,
        lead_id: int,
        status: str,
        now: datetime | None = None,
        only_from: tuple[str, ...] | None = None,
    ) -> None:
        """Set the status; with ``only_from``, only a lead currently in one of those."""
        if status not in LEAD_STATUSES:
            raise ValueError(f"unknown lead status {status!r}")
        condition = leads.c.id == lead_id
        if only_from is not None:
            condition = condition & leads.c.status.in_(only_from)
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(leads)
                .where(condition)
                .values(status=status, updated_at=now or datetime.now(UTC))
            )

    async def list(self, tenant: str, limit: int = 50) -> list[Lead]:
        query = (
            select(leads)
            .where(leads.c.tenant == tenant)
            .order_by(leads.c.created_at.desc(), leads.c.id.desc())
            .limit(limit)
        )
        async with self._db.engine.connect() as conn:
            return [_lead(row) for row in await conn.execute(query)]
