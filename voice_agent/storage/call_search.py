"""The dashboard's call list: filters, full-text search over transcripts, keyset pages.

Newest first by (started_at, id). A page ends with a cursor naming its last row; the next
page starts strictly after it, so a page deep into 100,000 calls costs what the first does
(no OFFSET scan). Search uses PostgreSQL's GIN index on to_tsvector('english', text) or
SQLite's FTS5 table (migration 0003c); a call matches when one of its turns has every word.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    column,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from voice_agent.storage.database import Database
from voice_agent.storage.tables import TURNS_TEXT_TSVECTOR, calls, turns

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_PAGE = 200
# Up to this many matching turns, a search fetches their call ids first (see _pg_matches).
FEW_TURNS = 2000


class BadCursor(ValueError):
    """The page cursor was not one this module made."""


@dataclass(slots=True, frozen=True)
class CallFilter:
    tenant: str | None = None  # None: every tenant (admins only; callers scope it)
    since: datetime | None = None  # started_at >= since
    until: datetime | None = None  # started_at < until
    direction: str | None = None
    status: str | None = None
    outcome: str | None = None
    number: str | None = None  # the other party or ours: from or to
    agent: str | None = None
    search: str | None = None  # words that must all appear in one turn
    #: Browser test calls (calls.is_test): "include" (default), "exclude" or "only".
    tests: str = "include"


@dataclass(slots=True, frozen=True)
class CallRow:
    call_sid: str
    tenant: str
    direction: str
    from_number: str
    to_number: str
    agent: str
    status: str
    outcome: str | None
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    is_test: bool = False


@dataclass(slots=True, frozen=True)
class CallPage:
    rows: list[CallRow]
    next_cursor: str | None  # None on the last page


def encode_cursor(started_at: datetime, call_id: int) -> str:
    micros = int(started_at.timestamp() * 1_000_000)
    return base64.urlsafe_b64encode(f"{micros}.{call_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, call_id = base64.urlsafe_b64decode(padded).decode().split(".")
        at = datetime.fromtimestamp(int(micros) / 1_000_000, UTC)
        return at, int(call_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("cursor: not a page cursor") from exc


def search_words(query: str) -> list[str]:
    """The words of a search box's text; operators and quotes are not syntax here."""
    return _WORD.findall(query)[:16]


class CallSearch:
    def __init__(self, db: Database, few_turns: int = FEW_TURNS) -> None:
        self._db = db
        self._few_turns = few_turns

    async def page(self, where: CallFilter, limit: int = 50, cursor: str | None = None) -> CallPage:
        limit = max(1, min(limit, MAX_PAGE))
        async with self._db.engine.connect() as conn:
            query = await self._query(conn, where)
            if query is None:
                return CallPage([], None)
            if cursor:
                at, call_id = decode_cursor(cursor)
                query = query.where(
                    or_(
                        calls.c.started_at < at,
                        and_(calls.c.started_at == at, calls.c.id < call_id),
                    )
                )
            query = query.order_by(calls.c.started_at.desc(), calls.c.id.desc()).limit(limit + 1)
            rows = list(await conn.execute(query))
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].started_at, rows[-1].id) if more else None
        return CallPage([_row(r) for r in rows], next_cursor)

    async def _query(self, conn: AsyncConnection, where: CallFilter) -> Select[Any] | None:
        """The filtered query; None when the search alone already matches nothing."""
        conditions: list[ColumnElement[bool]] = [calls.c.tenant != ""]  # placeholders
        if where.tenant is not None:
            conditions.append(calls.c.tenant == where.tenant)
        if where.since is not None:
            conditions.append(calls.c.started_at >= where.since)
        if where.until is not None:
            conditions.append(calls.c.started_at < where.until)
        for field, value in (
            (calls.c.direction, where.direction),
            (calls.c.status, where.status),
            (calls.c.outcome, where.outcome),
            (calls.c.agent, where.agent),
        ):
            if value:
                conditions.append(field == value)
        if where.number:
            conditions.append(
                or_(calls.c.from_number == where.number, calls.c.to_number == where.number)
            )
        if where.tests == "exclude":
            conditions.append(calls.c.is_test.is_(False))
        elif where.tests == "only":
            conditions.append(calls.c.is_test.is_(True))
        words = search_words(where.search or "")
        if words:
            if self._db.dialect == "postgresql":
                matches = await self._pg_matches(conn, words)
                if matches is None:
                    return None
                conditions.append(matches)
            else:
                conditions.append(self._sqlite_matches(words))
        return select(calls).where(and_(*conditions))

    async def _pg_matches(
        self, conn: AsyncConnection, words: list[str]
    ) -> ColumnElement[bool] | None:
        """Rare words: the GIN index names the few calls, looked up by id. Common words: the
        newest-first scan checks each call's turns and soon has a page. PostgreSQL cannot
        tell the two apart from its statistics (a word missing from them is guessed common,
        so a search for it scanned every call: 4 s on 100,000), so one bounded index probe
        decides."""
        query = func.plainto_tsquery(literal_column("'english'"), " ".join(words))
        # The same expression as the GIN index, or the planner cannot use it.
        match = TURNS_TEXT_TSVECTOR.bool_op("@@")(query)
        probe = select(turns.c.call_id).where(match).limit(self._few_turns + 1)
        matched = list((await conn.execute(probe)).scalars())  # one call id per turn
        if not matched:
            return None
        if len(matched) <= self._few_turns:  # every matching turn seen: these are all the calls
            return calls.c.id.in_(set(matched))
        return exists().where(turns.c.call_id == calls.c.id, match)

    @staticmethod
    def _sqlite_matches(words: list[str]) -> ColumnElement[bool]:
        # FTS5 syntax: each word a quoted string (so none is read as an operator), ANDed.
        # The matching call ids form one set up front; the newest-first scan then probes it.
        match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
        matching_turns = text("SELECT rowid FROM turns_fts WHERE turns_fts MATCH :match")
        return calls.c.id.in_(
            select(turns.c.call_id).where(
                turns.c.id.in_(
                    matching_turns.bindparams(match=match).columns(column("rowid", Integer))
                )
            )
        )


def _row(row: Any) -> CallRow:
    duration: float | None = row.duration_s
    if duration is None and row.ended_at is not None:
        duration = (row.ended_at - row.started_at).total_seconds()
    return CallRow(
        call_sid=row.call_sid,
        tenant=row.tenant,
        direction=row.direction,
        from_number=row.from_number,
        to_number=row.to_number,
        agent=row.agent,
        status=row.status,
        outcome=row.outcome,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_s=duration,
        is_test=bool(row.is_test),
    )
