"""SMS threads (one per tenant and other party) and the messages in them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_agent.storage.database import Database
from voice_agent.storage.metering import insert_usage
from voice_agent.storage.records import UsageRecord
from voice_agent.storage.tables import sms_messages, sms_threads

#: Delivery states that later callbacks must not overwrite: Twilio's status callbacks can
#: arrive out of order ("sent" after "delivered").
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled", "read", "received"})


class DuplicateMessage(Exception):
    """A message with this MessageSid is already stored (Twilio retried the webhook)."""


@dataclass(slots=True)
class SmsThread:
    id: int
    tenant: str
    number: str
    business_number: str
    agent: str
    state: str
    lead_id: int | None
    created_at: datetime
    last_message_at: datetime


@dataclass(slots=True)
class SmsMessage:
    id: int
    thread_id: int
    direction: str  # inbound | outbound
    body: str
    status: str
    segments: int = 1
    media_urls: list[str] = field(default_factory=list)
    message_sid: str | None = None
    error_code: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _thread(row: Row[Any]) -> SmsThread:
    return SmsThread(
        id=row.id,
        tenant=row.tenant,
        number=row.number,
        business_number=row.business_number,
        agent=row.agent,
        state=row.state,
        lead_id=row.lead_id,
        created_at=row.created_at,
        last_message_at=row.last_message_at,
    )


def _message(row: Row[Any]) -> SmsMessage:
    return SmsMessage(
        id=row.id,
        thread_id=row.thread_id,
        direction=row.direction,
        body=row.body,
        status=row.status,
        segments=row.segments,
        media_urls=list(row.media_urls or []),
        message_sid=row.message_sid,
        error_code=row.error_code,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SmsRepository:
    def __init__(self, db: Database, *, report_usage: bool = False) -> None:
        self._db = db
        self._report = report_usage  # segments to Stripe, through the outbox (#14)

    # --- threads ------------------------------------------------------------------------

    async def thread(self, tenant: str, number: str) -> SmsThread | None:
        query = select(sms_threads).where(
            sms_threads.c.tenant == tenant, sms_threads.c.number == number
        )
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _thread(row)

    async def thread_by_id(self, thread_id: int) -> SmsThread | None:
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(select(sms_threads).where(sms_threads.c.id == thread_id))
            ).first()
        return None if row is None else _thread(row)

    async def open_thread(
        self, tenant: str, number: str, business_number: str, agent: str
    ) -> SmsThread:
        """The tenant's thread with `number`, created on its first message."""
        existing = await self.thread(tenant, number)
        if existing is not None:
            return existing
        now = datetime.now(UTC)
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(
                    insert(sms_threads).values(
                        tenant=tenant,
                        number=number,
                        business_number=business_number,
                        agent=agent,
                        state="agent",
                        created_at=now,
                        last_message_at=now,
                    )
                )
        except IntegrityError:
            pass  # two messages raced to open it; the other one won
        thread = await self.thread(tenant, number)
        assert thread is not None
        return thread

    async def set_state(self, thread_id: int, state: str) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(sms_threads).where(sms_threads.c.id == thread_id).values(state=state)
            )

    # --- messages -----------------------------------------------------------------------

    async def add_message(
        self,
        thread_id: int,
        *,
        direction: str,
        body: str,
        status: str,
        segments: int = 1,
        media_urls: list[str] | None = None,
        message_sid: str | None = None,
        at: datetime | None = None,
    ) -> SmsMessage:
        """Store a message and move the thread's last activity. Raises DuplicateMessage
        when `message_sid` is already stored."""
        now = at or datetime.now(UTC)
        values: dict[str, Any] = {
            "thread_id": thread_id,
            "direction": direction,
            "body": body,
            "status": status,
            "segments": segments,
            "media_urls": media_urls or None,
            "message_sid": message_sid,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._db.engine.begin() as conn:
                result = await conn.execute(
                    insert(sms_messages).values(values).returning(sms_messages.c.id)
                )
                message_id = result.scalar_one()
                await conn.execute(
                    update(sms_threads)
                    .where(sms_threads.c.id == thread_id)
                    .values(last_message_at=now)
                )
                if direction == "inbound":  # outbound ones once they go to Twilio
                    await _meter(
                        conn, thread_id, message_id, "sms_segments_in", segments, now, self._report
                    )
        except IntegrityError:
            if message_sid is not None and await self.by_sid(message_sid) is not None:
                raise DuplicateMessage(message_sid) from None
            raise
        return SmsMessage(
            id=message_id,
            thread_id=thread_id,
            direction=direction,
            body=body,
            status=status,
            segments=segments,
            media_urls=list(media_urls or []),
            message_sid=message_sid,
            created_at=now,
            updated_at=now,
        )

    async def messages(self, thread_id: int, limit: int = 100) -> list[SmsMessage]:
        """The thread's latest `limit` messages, oldest first."""
        query = (
            select(sms_messages)
            .where(sms_messages.c.thread_id == thread_id)
            .order_by(sms_messages.c.created_at.desc(), sms_messages.c.id.desc())
            .limit(limit)
        )
        async with self._db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_message(row) for row in reversed(rows)]

    async def by_sid(self, message_sid: str) -> SmsMessage | None:
        query = select(sms_messages).where(sms_messages.c.message_sid == message_sid)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _message(row)

    async def get(self, message_id: int) -> SmsMessage | None:
        query = select(sms_messages).where(sms_messages.c.id == message_id)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _message(row)

    async def sent(
        self,
        message_id: int,
        *,
        status: str,
        message_sid: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """Record what became of an outbound message we asked Twilio to send."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if message_sid is not None:
            values["message_sid"] = message_sid
        if error_code is not None:
            values["error_code"] = error_code
        async with self._db.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(sms_messages)
                    .where(sms_messages.c.id == message_id)
                    .values(values)
                    .returning(sms_messages.c.thread_id, sms_messages.c.segments)
                )
            ).first()
            if row is not None and status not in _NOT_SENT:
                await _meter(
                    conn,
                    row.thread_id,
                    message_id,
                    "sms_segments_out",
                    row.segments,
                    now,
                    self._report,
                )

    async def meter_outbound(self, message: SmsMessage) -> None:
        """Count an outbound message's segments (a TwiML reply: Twilio sends it)."""
        async with self._db.engine.begin() as conn:
            await _meter(
                conn,
                message.thread_id,
                message.id,
                "sms_segments_out",
                message.segments,
                None,
                self._report,
            )

    async def attach_sid(self, message_id: int, message_sid: str) -> None:
        """Give a TwiML reply (whose sid only the status callback tells) its MessageSid."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(sms_messages)
                .where(sms_messages.c.id == message_id, sms_messages.c.message_sid.is_(None))
                .values(message_sid=message_sid)
            )

    async def update_status(
        self, message_sid: str, status: str, error_code: str | None = None
    ) -> bool:
        """Apply a status callback; False when no message has that sid. A final status is
        never replaced by an earlier one that arrives late."""
        values: dict[str, Any] = {"status": status, "updated_at": datetime.now(UTC)}
        if error_code:
            values["error_code"] = error_code
        stmt = update(sms_messages).where(sms_messages.c.message_sid == message_sid)
        if status not in FINAL_STATUSES:
            stmt = stmt.where(sms_messages.c.status.not_in(FINAL_STATUSES))
        async with self._db.engine.begin() as conn:
            result = await conn.execute(stmt.values(values))
            if result.rowcount:
                return True
            found = await conn.execute(
                select(sms_messages.c.id).where(sms_messages.c.message_sid == message_sid)
            )
            return found.first() is not None

    async def outbound_since(self, thread_id: int, since: datetime) -> int:
        """Outbound messages in the thread since `since` (for the per-number rate limit)."""
        query = select(func.count()).where(
            sms_messages.c.thread_id == thread_id,
            sms_messages.c.direction == "outbound",
            sms_messages.c.created_at >= since,
        )
        async with self._db.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def outbound_in_last(self, thread_id: int, window: timedelta) -> int:
        return await self.outbound_since(thread_id, datetime.now(UTC) - window)


#: Outbound statuses of messages Twilio never took, so never billed.
_NOT_SENT = frozenset({"failed", "canceled"})


async def _meter(
    conn: AsyncConnection,
    thread_id: int,
    message_id: int,
    meter: str,
    segments: int,
    at: datetime | None,
    report: bool,
) -> None:
    """A message's usage row (#14), in the transaction that stores or sends it; its key is
    the message, so counting it again changes nothing."""
    tenant = (
        await conn.execute(select(sms_threads.c.tenant).where(sms_threads.c.id == thread_id))
    ).scalar_one()
    record = UsageRecord(
        key=f"sms:{message_id}",
        tenant=tenant,
        call_sid=None,
        meter=meter,
        quantity=segments,
        model="twilio:sms",
        at=at or datetime.now(UTC),
    )
    await insert_usage(conn, [record], report=report)
