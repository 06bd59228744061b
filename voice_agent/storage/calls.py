"""Calls and their turns: idempotent batch writes, and reads for transcripts and dashboards."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Row, Select, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_agent.clock import utc_now
from voice_agent.storage.database import Database
from voice_agent.storage.metering import insert_usage
from voice_agent.storage.outbox import insert_messages
from voice_agent.storage.records import (
    CallEnded,
    CallStarted,
    OutboxMessage,
    StoredCall,
    StoredTurn,
    TurnRecord,
    UsageRecord,
    WriteRecord,
)
from voice_agent.storage.tables import LATENCY_COLUMNS, calls, turns

# A turn or end can arrive before its CallStarted (or without one, if that record was
# rejected). The placeholder keeps it; its empty tenant is visible to no tenant's staff
# until CallStarted fills in the real one.
PLACEHOLDER_TENANT = ""
PLACEHOLDER_DIRECTION = "unknown"

# CallStarted on an existing row (a retry, or a placeholder) fills in the call's facts but
# never touches status/ended_at/end_reason: a late retry must not reopen an ended call.
_STARTED_FIELDS = (
    "tenant",
    "direction",
    "from_number",
    "to_number",
    "agent",
    "pipeline",
    "started_at",
    "metadata",
    "agent_version",
    "is_test",
)
#: Twilio's terminal CallStatus values (and our own "failed").
FINAL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")
_FACT_COLUMNS = frozenset(
    {"answered_by", "outcome", "summary", "recording_path", "lead_id", "price", "price_unit"}
)
_FACT_READ = (
    "status",
    "answered_by",
    "duration_s",
    "price",
    "price_unit",
    "recording_path",
    "outcome",
    "summary",
    "lead_id",
    "started_at",
    "ended_at",
    "tenant",
    "direction",
)
_TURN_FIELDS = ("role", "text", "started_at", "ended_at", "interrupted", *LATENCY_COLUMNS)


class CallRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        #: Told the topics of outbox messages once they are committed (the outbox worker's
        #: wake), so a call's events leave without waiting for the worker's next poll.
        self.on_outbox: Callable[[set[str]], None] | None = None

    async def write(self, records: Sequence[WriteRecord]) -> None:
        """Apply records in one transaction; writing the same records again changes nothing."""
        started: list[dict[str, Any]] = []
        ended: list[dict[str, Any]] = []
        turn_rows: list[TurnRecord] = []
        usage_rows: list[UsageRecord] = []
        messages: list[OutboxMessage] = []
        # call_sid -> earliest time seen, for placeholder rows.
        referenced: dict[str, Any] = {}
        for record in records:
            if isinstance(record, TurnRecord):
                turn_rows.append(record)
                referenced.setdefault(record.call_sid, record.started_at)
            elif isinstance(record, CallStarted):
                started.append(
                    {"call_sid": record.call_sid, "status": "in-progress"}
                    | {name: getattr(record, name) for name in _STARTED_FIELDS}
                )
            elif isinstance(record, CallEnded):
                ended.append(
                    {
                        "sid": record.call_sid,
                        "ended_at": record.ended_at,
                        "status": record.status,
                        "end_reason": record.end_reason,
                    }
                )
                referenced.setdefault(record.call_sid, record.ended_at)
            elif isinstance(record, UsageRecord):
                usage_rows.append(record)
            elif isinstance(record, OutboxMessage):
                messages.append(record)
            else:
                raise TypeError(f"not a storage record: {type(record).__name__}")
        if not (started or ended or turn_rows or usage_rows or messages):
            return

        async with self._db.engine.begin() as conn:
            # executemany applies duplicates in list order, so the last version of a
            # record in the batch wins, as it would if written one by one.
            if started:
                await conn.execute(_upsert_started(conn.dialect.name), started)
            if referenced:
                await conn.execute(
                    _insert_placeholder(conn.dialect.name),
                    [
                        {
                            "call_sid": sid,
                            "tenant": PLACEHOLDER_TENANT,
                            "direction": PLACEHOLDER_DIRECTION,
                            "from_number": "",
                            "to_number": "",
                            "agent": "",
                            "pipeline": "",
                            "status": "in-progress",
                            "started_at": at,
                        }
                        for sid, at in referenced.items()
                    ],
                )
            if ended:
                await conn.execute(
                    update(calls)
                    .where(calls.c.call_sid == bindparam("sid"))
                    .values(
                        ended_at=bindparam("ended_at"),
                        status=bindparam("status"),
                        end_reason=bindparam("end_reason"),
                    ),
                    ended,
                )
            if turn_rows:
                ids = await self._call_ids(conn, {t.call_sid for t in turn_rows})
                await conn.execute(
                    _upsert_turn(conn.dialect.name),
                    [
                        {"call_id": ids[t.call_sid], "seq": t.seq}
                        | {name: getattr(t, name) for name in _TURN_FIELDS}
                        for t in turn_rows
                    ],
                )
            if usage_rows:
                await insert_usage(conn, usage_rows)
            if messages:
                await insert_messages(conn, messages, utc_now())
        if messages and self.on_outbox is not None:
            self.on_outbox({m.topic for m in messages})

    async def get_call(self, call_sid: str, tenant: str | None = None) -> StoredCall | None:
        """The call with its turns in order, or None (also when it belongs to another tenant)."""
        query = select(calls).where(calls.c.call_sid == call_sid)
        if tenant is not None:
            query = query.where(calls.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            call = _stored_call(row)
            result = await conn.execute(
                select(turns).where(turns.c.call_id == call.id).order_by(turns.c.seq)
            )
            call.turns = [_stored_turn(r) for r in result]
        return call

    async def list_calls(
        self, tenant: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[StoredCall]:
        """Newest first, without turns. ``tenant=None`` lists every tenant (admin view)."""
        query: Select[Any] = (
            select(calls)
            .order_by(calls.c.started_at.desc(), calls.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if tenant is not None:
            query = query.where(calls.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            return [_stored_call(row) for row in await conn.execute(query)]

    async def delete_call(self, call_sid: str, tenant: str | None = None) -> bool:
        """Remove a call and (by cascade) its turns. True when a row was deleted."""
        condition = calls.c.call_sid == call_sid
        if tenant is not None:
            condition = and_(condition, calls.c.tenant == tenant)
        async with self._db.engine.begin() as conn:
            result = await conn.execute(calls.delete().where(condition))
        return result.rowcount > 0

    # --- telephony flows (#4): status callbacks, AMD, recordings ------------------------

    async def record_progress(
        self,
        call_sid: str,
        *,
        status: str,
        at: datetime,
        tenant: str,
        direction: str,
        from_number: str,
        to_number: str,
        agent: str,
        duration_s: int | None = None,
        price: float | None = None,
        price_unit: str | None = None,
        lead_id: int | None = None,
    ) -> None:
        """A Twilio status callback: create the row for a call that never reached a media
        stream (no-answer, busy), then store status, duration and price. A progress event
        arriving after the final one (callbacks may come out of order) does not reopen it."""
        facts: dict[str, Any] = {
            name: value
            for name, value in (
                ("duration_s", duration_s),
                ("price", price),
                ("price_unit", price_unit),
                ("lead_id", lead_id),
            )
            if value is not None
        }
        final = status in FINAL_STATUSES
        async with self._db.engine.begin() as conn:
            await conn.execute(
                _insert_placeholder(conn.dialect.name),
                [
                    {
                        "call_sid": call_sid,
                        "tenant": tenant,
                        "direction": direction,
                        "from_number": from_number,
                        "to_number": to_number,
                        "agent": agent,
                        "pipeline": "",
                        "status": status,
                        "started_at": at,
                    }
                ],
            )
            # A placeholder left by turns written before CallStarted has no tenant yet.
            await conn.execute(
                update(calls)
                .where(calls.c.call_sid == call_sid, calls.c.tenant == PLACEHOLDER_TENANT)
                .values(tenant=tenant, direction=direction)
            )
            condition = calls.c.call_sid == call_sid
            if not final:
                condition = and_(condition, calls.c.status.not_in(FINAL_STATUSES))
            values: dict[str, Any] = {"status": status}
            if final:
                values["ended_at"] = func.coalesce(calls.c.ended_at, at)
            await conn.execute(update(calls).where(condition).values(values))
            if facts:
                await conn.execute(update(calls).where(calls.c.call_sid == call_sid).values(facts))

    async def set_call_facts(self, call_sid: str, **facts: Any) -> bool:
        """Store any of answered_by, outcome, summary, recording_path, lead_id, price and
        price_unit on a call;
        False when there is no such call (yet)."""
        unknown = set(facts) - _FACT_COLUMNS
        if unknown:
            raise ValueError(f"not a call fact: {', '.join(sorted(unknown))}")
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(calls).where(calls.c.call_sid == call_sid).values(facts)
            )
        return result.rowcount > 0

    async def call_facts(self, call_sid: str, tenant: str | None = None) -> dict[str, Any] | None:
        """The outcome columns of a call (status, answered_by, duration_s, price, price_unit,
        recording_path, outcome, summary, lead_id, started_at, ended_at), or None."""
        query = select(*(calls.c[name] for name in _FACT_READ)).where(calls.c.call_sid == call_sid)
        if tenant is not None:
            query = query.where(calls.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else dict(row._mapping)

    async def is_test(self, call_sid: str) -> bool:
        """Whether the call is a browser test of an agent (no telephony, never billed)."""
        query = select(calls.c.is_test).where(calls.c.call_sid == call_sid)
        async with self._db.engine.connect() as conn:
            return bool((await conn.execute(query)).scalar())

    async def recordings_before(self, tenant: str, before: datetime) -> list[tuple[str, str]]:
        """(call_sid, recording_path) of the tenant's calls that started before ``before``."""
        query = select(calls.c.call_sid, calls.c.recording_path).where(
            calls.c.tenant == tenant,
            calls.c.started_at < before,
            calls.c.recording_path.is_not(None),
        )
        async with self._db.engine.connect() as conn:
            return [(row.call_sid, row.recording_path) for row in await conn.execute(query)]

    async def in_progress_between(
        self, tenant: str, party: str, business: str, since: datetime
    ) -> list[str]:
        """CallSids of the tenant's calls not yet ended between ``party`` (the caller of an
        inbound call, the callee of an outbound one) and the ``business`` number, started
        after ``since``, newest first: the calls a text from ``party`` to ``business`` names."""
        inbound = and_(
            calls.c.direction == "inbound",
            calls.c.from_number == party,
            calls.c.to_number == business,
        )
        outbound = and_(
            calls.c.direction == "outbound",
            calls.c.to_number == party,
            calls.c.from_number == business,
        )
        query = (
            select(calls.c.call_sid)
            .where(
                calls.c.tenant == tenant,
                calls.c.ended_at.is_(None),
                calls.c.status.not_in(FINAL_STATUSES),
                calls.c.started_at >= since,
                inbound | outbound,
            )
            .order_by(calls.c.started_at.desc())
            .limit(3)
        )
        async with self._db.engine.connect() as conn:
            return [row.call_sid for row in await conn.execute(query)]

    @staticmethod
    async def _call_ids(conn: AsyncConnection, sids: set[str]) -> dict[str, int]:
        result = await conn.execute(_CALL_IDS, {"sids": list(sids)})
        return {sid: call_id for sid, call_id in result}


# Built once, like the upserts below: `in_(values)` per batch made its bound parameters in
# reference cycles, left to the full collections.
_CALL_IDS = select(calls.c.call_sid, calls.c.id).where(
    calls.c.call_sid.in_(bindparam("sids", expanding=True))
)


# The batch writes' upserts are built once per dialect: building one makes its `excluded`
# alias, a copy of every column of the table held in reference cycles, and building them
# per write left thousands of objects per call for the full collections to free.
def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"no upsert for dialect {dialect!r}")


@functools.cache
def _upsert_started(dialect: str) -> Insert:
    stmt = _insert(dialect)(calls)
    return stmt.on_conflict_do_update(
        index_elements=[calls.c.call_sid],
        set_={name: stmt.excluded[name] for name in _STARTED_FIELDS},
    )


@functools.cache
def _insert_placeholder(dialect: str) -> Insert:
    return _insert(dialect)(calls).on_conflict_do_nothing(index_elements=[calls.c.call_sid])


@functools.cache
def _upsert_turn(dialect: str) -> Insert:
    stmt = _insert(dialect)(turns)
    return stmt.on_conflict_do_update(
        index_elements=[turns.c.call_id, turns.c.seq],
        set_={name: stmt.excluded[name] for name in _TURN_FIELDS},
    )


def _stored_call(row: Row[Any]) -> StoredCall:
    m = row._mapping
    return StoredCall(
        id=m["id"],
        call_sid=m["call_sid"],
        tenant=m["tenant"],
        direction=m["direction"],
        from_number=m["from_number"],
        to_number=m["to_number"],
        agent=m["agent"],
        pipeline=m["pipeline"],
        status=m["status"],
        end_reason=m["end_reason"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        metadata=m["metadata"],
        analysis=m.get("analysis"),
    )


def _stored_turn(row: Row[Any]) -> StoredTurn:
    m = row._mapping
    return StoredTurn(
        seq=m["seq"],
        role=m["role"],
        text=m["text"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        interrupted=bool(m["interrupted"]),
        **{name: m[name] for name in LATENCY_COLUMNS},
    )
