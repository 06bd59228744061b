"""SMS threads as the dashboard shows them: read straight from sms_threads and
sms_messages, with the number's opt-out state. Writes belong to the SMS repository."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select

from voice_agent.storage.database import Database
from voice_agent.storage.tables import opt_outs, sms_messages, sms_threads


@dataclass(slots=True, frozen=True)
class MessageView:
    direction: str
    body: str
    status: str
    segments: int
    error_code: str | None
    created_at: datetime


@dataclass(slots=True)
class ThreadView:
    id: int
    tenant: str
    number: str
    business_number: str
    agent: str
    state: str
    lead_id: int | None
    last_message_at: datetime
    opted_out: bool
    opt_out_keyword: str | None
    message_count: int = 0
    messages: list[MessageView] = field(default_factory=list)


def _threads(tenant: str | None) -> Any:
    count = (
        select(func.count())
        .where(sms_messages.c.thread_id == sms_threads.c.id)
        .scalar_subquery()
        .label("message_count")
    )
    query = select(
        sms_threads, opt_outs.c.opted_out, opt_outs.c.keyword.label("opt_out_keyword"), count
    ).outerjoin(
        opt_outs,
        and_(opt_outs.c.tenant == sms_threads.c.tenant, opt_outs.c.number == sms_threads.c.number),
    )
    if tenant is not None:
        query = query.where(sms_threads.c.tenant == tenant)
    return query


def _thread(row: Any) -> ThreadView:
    return ThreadView(
        id=row.id,
        tenant=row.tenant,
        number=row.number,
        business_number=row.business_number,
        agent=row.agent,
        state=row.state,
        lead_id=row.lead_id,
        last_message_at=row.last_message_at,
        opted_out=bool(row.opted_out),
        opt_out_keyword=row.opt_out_keyword,
        message_count=row.message_count,
    )


class SmsViews:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def threads(self, tenant: str | None, limit: int = 100) -> list[ThreadView]:
        query = (
            _threads(tenant)
            .order_by(sms_threads.c.last_message_at.desc(), sms_threads.c.id.desc())
            .limit(limit)
        )
        async with self._db.engine.connect() as conn:
            return [_thread(row) for row in await conn.execute(query)]

    async def thread(self, thread_id: int, tenant: str | None) -> ThreadView | None:
        """The thread with its messages, or None when absent or another tenant's."""
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(_threads(tenant).where(sms_threads.c.id == thread_id))
            ).first()
            if row is None:
                return None
            view = _thread(row)
            messages = await conn.execute(
                select(sms_messages)
                .where(sms_messages.c.thread_id == thread_id)
                .order_by(sms_messages.c.created_at, sms_messages.c.id)
            )
            view.messages = [
                MessageView(m.direction, m.body, m.status, m.segments, m.error_code, m.created_at)
                for m in messages
            ]
        return view
