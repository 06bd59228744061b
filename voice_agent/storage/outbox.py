"""The outbox table: idempotent enqueue, leased claims in per-key order, and settling.

A message is claimable when it is pending, due, not held by a live lease, and no earlier
pending message shares its topic and key: that last rule is what keeps per-key order
across retries and across workers. On PostgreSQL the claim skips rows another worker has
locked (FOR UPDATE SKIP LOCKED), so several workers share one table without waiting on
each other; SQLite serialises writers by itself.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, Integer, Update, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from voice_agent.clock import utc_now
from voice_agent.storage.database import Database
from voice_agent.storage.records import OutboxMessage
from voice_agent.storage.tables import outbox

PENDING = "pending"
DELIVERED = "delivered"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A claimed message, as a Delivery sees it."""

    id: int
    message: OutboxMessage
    attempts: int  # including this one
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Settlement:
    """What becomes of one claimed item: delivered, rejected, or due again at ``retry_at``."""

    id: int
    state: str  # PENDING (retry) | DELIVERED | REJECTED
    error: str | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TopicStats:
    topic: str
    pending: int
    oldest_at: datetime | None  # the oldest pending message's enqueue time
    last_error: str | None  # the latest failed attempt's reason among pending messages
    last_error_at: datetime | None
    rejected: int
    delivered: int


@functools.cache  # built once: a statement per poll would leave garbage cycles behind
def _claim_statement(dialect: str) -> Update:
    """Lease the claimable messages of a topic, oldest first, at most one per key."""
    now = bindparam("claim_now", type_=outbox.c.next_at.type)
    candidate = outbox.alias("candidate")
    earlier = outbox.alias("earlier")
    blocked = exists().where(
        earlier.c.topic == candidate.c.topic,
        earlier.c.key == candidate.c.key,
        earlier.c.state == PENDING,
        earlier.c.id < candidate.c.id,
    )
    free = or_(candidate.c.lease_until.is_(None), candidate.c.lease_until <= now)
    ids = (
        select(candidate.c.id)
        .where(
            candidate.c.topic == bindparam("claim_topic"),
            candidate.c.state == PENDING,
            candidate.c.next_at <= now,
            free,
            ~blocked,
        )
        .order_by(candidate.c.id)
        .limit(bindparam("claim_limit", type_=Integer))
    )
    if dialect == "postgresql":
        # Materialised, so PostgreSQL runs the locking select once: as a plain IN
        # subquery it may be re-run per row and lock more than ``limit`` rows.
        claimable = (
            ids.with_for_update(skip_locked=True, of=candidate)
            .cte("claimable")
            .prefix_with("MATERIALIZED")
        )
        ids = select(claimable.c.id)
    return (
        update(outbox)
        # The lease is checked again on the row itself: two claims racing on SQLite
        # (no row locks) cannot both take it.
        .where(
            outbox.c.id.in_(ids),
            outbox.c.state == PENDING,
            or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now),
        )
        .values(
            lease_token=bindparam("claim_token"),
            lease_until=bindparam("claim_until", type_=outbox.c.lease_until.type),
            attempts=outbox.c.attempts + 1,
            attempted_at=now,
        )
        .returning(
            outbox.c.id,
            outbox.c.topic,
            outbox.c.tenant,
            outbox.c.key,
            outbox.c.dedupe,
            outbox.c.payload,
            outbox.c.attempts,
            outbox.c.created_at,
        )
    )


@functools.cache  # built once: a statement per batch would leave garbage cycles behind
def _insert(dialect: str) -> Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(outbox).on_conflict_do_nothing(index_elements=["topic", "dedupe"])


def _row(message: OutboxMessage, now: datetime) -> dict[str, Any]:
    return {
        "topic": message.topic,
        "tenant": message.tenant,
        "key": message.key,
        "dedupe": message.dedupe,
        "payload": message.payload,
        "state": PENDING,
        "attempts": 0,
        "next_at": now,
        "created_at": now,
    }


async def insert_messages(
    conn: AsyncConnection, messages: Sequence[OutboxMessage], now: datetime
) -> int:
    """Add messages inside the caller's transaction; returns how many were new."""
    if not messages:
        return 0
    statement = _insert(conn.dialect.name).returning(outbox.c.id)
    result = await conn.execute(statement, [_row(m, now) for m in messages])
    return len(result.all())


class OutboxRepository:
    def __init__(self, database: Database, clock: Any = utc_now) -> None:
        self._db = database
        self._clock = clock

    async def enqueue(self, *messages: OutboxMessage) -> int:
        """Store messages (in order); one whose (topic, dedupe) exists is skipped. Returns
        how many rows were added."""
        async with self._db.engine.begin() as conn:
            return await insert_messages(conn, messages, self._clock())

    async def claim(self, topic: str, limit: int, lease_s: float) -> tuple[str, list[OutboxItem]]:
        """Lease up to ``limit`` claimable messages of ``topic``, oldest first, at most one
        per key. Returns the lease token that settling them needs."""
        now = self._clock()
        token = secrets.token_hex(16)
        params = {
            "claim_now": now,
            "claim_topic": topic,
            "claim_limit": limit,
            "claim_token": token,
            "claim_until": now + timedelta(seconds=lease_s),
        }
        async with self._db.engine.begin() as conn:
            rows = (await conn.execute(_claim_statement(self._db.dialect), params)).all()
        items = [
            OutboxItem(
                id=row.id,
                message=OutboxMessage(row.topic, row.tenant, row.key, row.dedupe, row.payload),
                attempts=row.attempts,
                created_at=row.created_at,
            )
            for row in rows
        ]
        items.sort(key=lambda item: item.id)
        return token, items

    async def settle(self, token: str, settlements: Iterable[Settlement]) -> int:
        """Record outcomes of a claim; items whose lease was lost to another worker are left
        alone. Returns how many rows were updated."""
        now = self._clock()
        rows = [
            {
                "item_id": s.id,
                "new_state": s.state,
                "error": s.error,
                "retry_at": s.retry_at or now,
                "finished": None if s.state == PENDING else now,
            }
            for s in settlements
        ]
        if not rows:
            return 0
        statement = (
            update(outbox)
            .where(outbox.c.id == bindparam("item_id"), outbox.c.lease_token == token)
            .values(
                state=bindparam("new_state"),
                last_error=bindparam("error"),
                next_at=bindparam("retry_at"),
                finished_at=bindparam("finished"),
                lease_token=None,
                lease_until=None,
            )
        )
        async with self._db.engine.begin() as conn:
            result = await conn.execute(statement, rows)
        return result.rowcount

    async def requeue(
        self,
        topic: str,
        *,
        since: datetime | None = None,
        payload_type: str | None = None,
        tenant: str | None = None,
    ) -> int:
        """Make finished messages pending again (a replay): same rows, same payloads, so a
        receiver sees the same ids. Returns how many were requeued."""
        conditions = [outbox.c.topic == topic, outbox.c.state != PENDING]
        if since is not None:
            conditions.append(outbox.c.created_at >= since)
        if tenant is not None:
            conditions.append(outbox.c.tenant == tenant)
        if payload_type is not None:
            conditions.append(outbox.c.payload["type"].as_string() == payload_type)
        statement = (
            update(outbox)
            .where(and_(*conditions))
            .values(state=PENDING, attempts=0, next_at=self._clock(), finished_at=None)
        )
        async with self._db.engine.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount

    async def stats(self) -> list[TopicStats]:
        """Per topic: what waits, since when, and why the latest attempt failed."""
        async with self._db.engine.connect() as conn:
            counts = (
                await conn.execute(
                    select(
                        outbox.c.topic,
                        outbox.c.state,
                        func.count(),
                        func.min(outbox.c.created_at),
                    ).group_by(outbox.c.topic, outbox.c.state)
                )
            ).all()
            latest: dict[str, tuple[str | None, datetime | None]] = {}
            for topic in {row[0] for row in counts}:
                row = (
                    await conn.execute(
                        select(outbox.c.last_error, outbox.c.attempted_at)
                        .where(
                            outbox.c.topic == topic,
                            outbox.c.state == PENDING,
                            outbox.c.last_error.is_not(None),
                        )
                        .order_by(outbox.c.attempted_at.desc())
                        .limit(1)
                    )
                ).first()
                if row is not None:
                    latest[topic] = (row[0], row[1])
        topics: dict[str, dict[str, Any]] = {}
        for topic, state, count, oldest in counts:
            entry = topics.setdefault(
                topic, {"pending": 0, "oldest": None, REJECTED: 0, DELIVERED: 0}
            )
            if state == PENDING:
                entry["pending"], entry["oldest"] = count, oldest
            else:
                entry[state] = count
        return [
            TopicStats(
                topic=topic,
                pending=entry["pending"],
                oldest_at=entry["oldest"],
                last_error=latest.get(topic, (None, None))[0],
                last_error_at=latest.get(topic, (None, None))[1],
                rejected=entry[REJECTED],
                delivered=entry[DELIVERED],
            )
            for topic, entry in sorted(topics.items())
        ]
