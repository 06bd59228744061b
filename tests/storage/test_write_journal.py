"""The write journal: while PostgreSQL is cut (through the TCP proxy, the server itself is
never stopped) every record goes to a local file, memory stays bounded, and everything
lands in order once it is back; a process that dies mid-outage leaves a file the next
one replays. Every record type the write queue carries survives the file."""

from __future__ import annotations

import asyncio
import time
import typing
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.journal import Journal, decode, encode
from voice_agent.storage.records import (
    CallStarted,
    OutboxMessage,
    UsageRecord,
    WriteRecord,
)
from voice_agent.storage.tables import outbox, usage
from voice_agent.storage.write_queue import WriteQueue

from .conftest import TcpProxy, pg_url
from .test_calls import ended, started, turn

AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def usage_row(n: int, sid: str) -> UsageRecord:
    return UsageRecord(f"{sid}:u{n}", "acme", sid, "tts_characters", 10.0 + n, "tts-1", AT)


def message(n: int, sid: str) -> OutboxMessage:
    payload = {"type": "call.turn", "n": n, "nested": {"list": [1, "two"], "ok": True}}
    return OutboxMessage("events", "acme", sid, f"{sid}:m{n}", payload)


def test_every_record_type_survives_the_journal_format() -> None:
    samples: list[object] = [
        started("CA-j", metadata={"lead": {"id": 7, "tags": ["a"]}, "n": 1.5}),
        turn(3, sid="CA-j", interrupted=True, total_ms=812.5, llm_ms=None),
        ended("CA-j", end_reason=None),
        message(1, "CA-j"),
        usage_row(1, "CA-j"),
    ]
    # Whatever the union holds, a sample of it is here (a new record type needs one).
    assert {type(s) for s in samples} == set(typing.get_args(WriteRecord))
    for sample in samples:
        back = decode(encode(sample))
        assert back == sample and type(back) is type(sample)
        assert (
            isinstance(back, CallStarted)
            or not hasattr(back, "started_at")
            or (
                back.started_at.tzinfo is not None  # type: ignore[attr-defined]
            )
        )


async def _count(db: Database, table: typing.Any, sid: str) -> int:
    async with db.engine.connect() as conn:
        column = table.c.key if table is outbox else table.c.call_sid
        query = select(func.count()).select_from(table).where(column == sid)
        return int((await conn.execute(query)).scalar_one())


async def _wait_for(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def proxied_db(pg_session_database: str, pg_proxy: TcpProxy) -> AsyncIterator[Database]:
    db = await Database.connect(pg_url(pg_session_database, port=pg_proxy.port), connect_timeout=1)
    try:
        yield db
    finally:
        await db.dispose()


def _cut_last_line(path: Path) -> None:
    with path.open("ab") as file:
        file.write(b'{"t": "TurnRecord", "v": {"call_')


def _put_call(queue: WriteQueue, sid: str, turns: int) -> None:
    for seq in range(turns):
        queue.put(turn(seq, sid=sid))
        queue.put(usage_row(seq, sid))
        queue.put(message(seq, sid))
    queue.put(ended(sid, end_reason="caller-hangup"))


@pytest.mark.postgres
async def test_a_long_outage_spills_to_the_journal_and_replays_in_order(
    proxied_db: Database, pg_proxy: TcpProxy, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    queue = WriteQueue(
        CallRepository(proxied_db),
        batch_size=50,
        flush_interval=0.01,
        max_backoff=0.2,
        journal=journal,
        memory_limit=100,
    )
    queue.start()
    sid = "CA-journal"
    queue.put(started(sid))
    assert await queue.flush(timeout=10)

    await pg_proxy.cut()
    queue.put(turn(0, sid=sid))
    await _wait_for(lambda: not queue.healthy)
    _put_call(queue, sid, 400)  # 1,201 records more: far over the memory limit
    assert queue.pending == 1 + 1201
    assert len(queue._pending) <= 100  # bounded in memory
    assert queue.journaled == queue.pending  # and every one of them on disk
    assert journal.end > 0
    assert not await queue.flush(timeout=0.3)

    await pg_proxy.restore()
    assert await queue.flush(timeout=30)
    assert queue.pending == 0 and queue.rejected == 0 and queue.dropped == 0
    assert journal.empty and (tmp_path / "journal.jsonl").stat().st_size == 0

    stored = await CallRepository(proxied_db).get_call(sid)
    assert stored is not None and stored.end_reason == "caller-hangup"
    assert [t.seq for t in stored.turns] == list(range(400))  # zero turns lost, in order
    assert await _count(proxied_db, usage, sid) == 400
    assert await _count(proxied_db, outbox, sid) == 400
    await queue.aclose()


@pytest.mark.postgres
async def test_a_process_dying_mid_outage_loses_nothing(
    proxied_db: Database, pg_proxy: TcpProxy, pg_session_database: str, tmp_path: Path
) -> None:
    path = tmp_path / "journal.jsonl"
    queue = WriteQueue(
        CallRepository(proxied_db), flush_interval=0.01, max_backoff=0.2, journal=Journal(path)
    )
    queue.start()
    sid = "CA-crash"
    await pg_proxy.cut()
    queue.put(started(sid))
    await _wait_for(lambda: not queue.healthy)
    _put_call(queue, sid, 50)
    # The process dies: its writer stops, nothing is flushed or closed in order.
    assert queue._task is not None
    queue._task.cancel()
    await asyncio.gather(queue._task, return_exceptions=True)
    assert queue._journal is not None
    queue._journal.close()
    _cut_last_line(path)  # and its last line was cut short as it died

    direct = await Database.connect(pg_url(pg_session_database))
    try:
        # The next process, with the database back: it replays the file on its own.
        replay = WriteQueue(CallRepository(direct), flush_interval=0.01, journal=Journal(path))
        assert replay.pending == 1 + 151 + 1  # the cut line too, until it is read
        replay.start()
        assert await replay.flush(timeout=20)
        assert replay.rejected == 1 and replay.written == 152
        stored = await CallRepository(direct).get_call(sid)
        assert stored is not None and stored.end_reason == "caller-hangup"
        assert [t.seq for t in stored.turns] == list(range(50))
        assert await _count(direct, usage, sid) == 50
        assert await _count(direct, outbox, sid) == 50
        await replay.aclose()
    finally:
        await direct.dispose()


async def test_shutdown_during_an_outage_keeps_the_records_in_the_journal(
    tmp_path: Path,
) -> None:
    """Closing with the database away: nothing is reported lost, all of it is on disk."""

    class Down:
        async def write(self, records: typing.Sequence[WriteRecord]) -> None:
            raise ConnectionRefusedError("database down")

    path = tmp_path / "journal.jsonl"
    queue = WriteQueue(Down(), flush_interval=0.01, max_backoff=0.05, journal=Journal(path))
    queue.start()
    queue.put(started("CA-down"))
    _put_call(queue, "CA-down", 5)
    assert await queue.aclose(timeout=0.3) == 0
    lines = path.read_bytes().splitlines()
    assert len(lines) == 1 + 16
    assert [type(decode(line)).__name__ for line in lines][:4] == [
        "CallStarted",
        "TurnRecord",
        "UsageRecord",
        "OutboxMessage",
    ]
