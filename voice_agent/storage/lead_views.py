"""Leads as the dashboard lists them: read straight from the leads table, with each
number's opt-out state. Writes belong to the lead webhook's repository."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select

from voice_agent.storage.database import Database
from voice_agent.storage.tables import leads, opt_outs


@dataclass(slots=True, frozen=True)
class LeadView:
    id: int
    tenant: str
    first_name: str
    last_name: str
    email: str | None
    phone: str
    source: str | None
    fields: dict[str, Any]
    status: str
    created_at: datetime
    opted_out: bool

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def _query(tenant: str | None) -> Any:
    query = select(leads, opt_outs.c.opted_out).outerjoin(
        opt_outs, and_(opt_outs.c.tenant == leads.c.tenant, opt_outs.c.number == leads.c.phone)
    )
    if tenant is not None:
        query = query.where(leads.c.tenant == tenant)
    return query


def _lead(row: Any) -> LeadView:
    return LeadView(
        id=row.id,
        tenant=row.tenant,
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        phone=row.phone,
        source=row.source,
        fields=dict(row.fields or {}),
        status=row.status,
        created_at=row.created_at,
        opted_out=bool(row.opted_out),
    )


class LeadViews:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def recent(
        self, tenant: str | None, limit: int = 100, status: str | None = None
    ) -> list[LeadView]:
        query = _query(tenant)
        if status:
            query = query.where(leads.c.status == status)
        query = query.order_by(leads.c.created_at.desc(), leads.c.id.desc()).limit(limit)
        async with self._db.engine.connect() as conn:
            return [_lead(row) for row in await conn.execute(query)]

    async def get(self, lead_id: int, tenant: str | None) -> LeadView | None:
        """The lead, or None when it does not exist or belongs to another tenant."""
        query = _query(tenant).where(leads.c.id == lead_id)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _lead(row) if row is not None else None
