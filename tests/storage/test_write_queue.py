from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

import pytest
from sqlalchemy import select

from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.records import WriteRecord
from voice_agent.storage.tables import calls, turns
from voice_agent.storage.write_queue import WriteQueue

from .conftest import TcpProxy, pg_url
from .test_calls import ended, started, turn

OUTAGE_MESSAGE = "keeping records in memory"


class RecordingRepository(CallRepository):
    """The real repository, noting the size of each batch it is given."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.batches: list[int] = []

    async def write(self, records: Sequence[WriteRecord]) -> None:
        self.batches.append(len(records))
        await super().write(records)


async def _turn_order(db: Database, sid: str) -> list[int]:
    """Seq numbers in the order the rows were inserted (by primary key)."""
    query = (
        select(turns.c.seq)
        .join(calls, calls.c.id == turns.c.call_id)
        .where(calls.c.call_sid == sid)
        .order_by(turns.c.id)
    )
    async with db.engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def _wait_for(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_records_are_batched_and_land_in_order(db: Database) -> None:
    repo = RecordingRepository(db)
    queue = WriteQueue(repo, batch_size=50, flush_interval=0.02)
    queue.start()
    queue.put(started())
    for seq in range(120):
        queue.put(turn(seq))
    queue.put(ended())
    assert await queue.flush(timeout=10)
    assert (queue.written, queue.pending, queue.failures, queue.rejected) == (122, 0, 0, 0)
    assert max(repo.batches) <= 50 and sum(repo.batches) == 122
    assert len(repo.batches) < 10  # batched, not one transaction per record
    call = await repo.get_call("CA1")
    assert call is not None and call.status == "completed"
    assert await _turn_order(db, "CA1") == list(range(120))
    assert await queue.aclose() == 0


async def test_a_lone_record_is_written_after_the_flush_interval(db: Database) -> None:
    repo = CallRepository(db)
    queue = WriteQueue(repo, flush_interval=0.01)
    queue.start()
    queue.put(started())
    await _wait_for(lambda: queue.written == 1, within=5)
    assert await repo.get_call("CA1") is not None
    assert await queue.aclose() == 0


async def test_flush_with_nothing_pending_returns_at_once(db: Database) -> None:
    queue = WriteQueue(CallRepository(db))
    queue.start()
    assert await queue.flush(timeout=0.01)
    assert await queue.aclose() == 0


async def test_flush_before_start_is_an_error(db: Database) -> None:
    queue = WriteQueue(CallRepository(db))
    queue.put(started())
    with pytest.raises(RuntimeError, match="start"):
        await queue.flush(timeout=1)
    assert await queue.aclose() == 1  # never started: the record was never written


async def test_starting_twice_is_an_error(db: Database) -> None:
    queue = WriteQueue(CallRepository(db))
    queue.start()
    with pytest.raises(RuntimeError, match="already started"):
        queue.start()
    await queue.aclose()


async def test_a_bad_record_is_rejected_and_its_neighbours_still_land(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    repo = CallRepository(db)
    queue = WriteQueue(repo, flush_interval=0.01)
    queue.start()
    queue.put(started())
    queue.put(turn(0))
    queue.put(turn(1, started_at=datetime(2025, 1, 1)))  # naive: refused by the database layer
    queue.put(turn(2))
    with caplog.at_level(logging.ERROR, "voice_agent.storage.write_queue"):
        assert await queue.flush(timeout=10)
    assert (queue.written, queue.rejected, queue.pending) == (3, 1, 0)
    assert "storage rejected TurnRecord(call_sid='CA1', seq=1" in caplog.text
    assert await _turn_order(db, "CA1") == [0, 2]
    assert await queue.aclose() == 0


async def test_put_after_close_is_dropped_not_raised(db: Database) -> None:
    queue = WriteQueue(CallRepository(db))
    queue.start()
    assert await queue.aclose() == 0
    queue.put(started())
    assert (queue.dropped, queue.pending) == (1, 0)


async def test_queue_full_drops_new_records_and_logs_once(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    queue = WriteQueue(CallRepository(db), max_pending=5)
    with caplog.at_level(logging.ERROR, "voice_agent.storage.write_queue"):
        for seq in range(8):
            queue.put(turn(seq))
    assert (queue.pending, queue.dropped) == (5, 3)
    assert caplog.text.count("dropping records") == 1
    queue.start()
    assert await queue.flush(timeout=10)
    # The oldest were kept, so what is stored is a complete prefix of the call.
    assert await _turn_order(db, "CA1") == [0, 1, 2, 3, 4]
    assert await queue.aclose() == 0


async def test_cancelled_close_still_saves_the_records(db: Database) -> None:
    repo = CallRepository(db)
    queue = WriteQueue(repo, flush_interval=1.0)  # would linger; close must not wait for it
    queue.start()
    queue.put(started())
    for seq in range(10):
        queue.put(turn(seq))
    closing = asyncio.ensure_future(queue.aclose(timeout=10))
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    await _wait_for(lambda: queue.written == 11)
    assert await _turn_order(db, "CA1") == list(range(10))


# --- PostgreSQL going away ---------------------------------------------------------


@pytest.fixture
async def proxied_db(pg_session_database: str, pg_proxy: TcpProxy) -> AsyncIterator[Database]:
    db = await Database.connect(pg_url(pg_session_database, port=pg_proxy.port), connect_timeout=1)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_postgres_outage_loses_nothing_and_keeps_order(
    proxied_db: Database, pg_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    repo = CallRepository(proxied_db)
    queue = WriteQueue(repo, batch_size=50, flush_interval=0.01, max_backoff=0.2)
    queue.start()
    sid = "CA-outage"
    queue.put(started(sid))
    for seq in range(10):
        queue.put(turn(seq, sid=sid))
    assert await queue.flush(timeout=10)
    assert queue.healthy

    await pg_proxy.cut()
    with caplog.at_level(logging.WARNING, "voice_agent.storage.write_queue"):
        put_started = time.perf_counter()
        for seq in range(10, 310):
            queue.put(turn(seq, sid=sid))
        put_seconds = time.perf_counter() - put_started
        queue.put(ended(sid))
        # Several retries fail while the database is unreachable...
        await _wait_for(lambda: queue.failures >= 3)
        assert not await queue.flush(timeout=0.2)
        assert not queue.healthy
        assert queue.pending == 301 and queue.written == 11
        # ...and the log says so once, not once per record or per retry.
        assert caplog.text.count(OUTAGE_MESSAGE) == 1

        await pg_proxy.restore()
        assert await queue.flush(timeout=15)
    assert queue.healthy
    assert (queue.pending, queue.written, queue.rejected) == (0, 312, 0)
    assert "storage writes resumed" in caplog.text
    assert await _turn_order(proxied_db, sid) == list(range(310))
    call = await repo.get_call(sid)
    assert call is not None and call.status == "completed"
    # put() is a deque append even with the database gone: far below a 20 ms frame.
    assert put_seconds / 300 < 0.0005
    assert await queue.aclose() == 0


@pytest.mark.postgres
async def test_close_during_an_outage_reports_what_was_not_written(
    proxied_db: Database, pg_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    queue = WriteQueue(CallRepository(proxied_db), flush_interval=0.01, max_backoff=0.1)
    queue.start()
    await pg_proxy.cut()
    for seq in range(25):
        queue.put(turn(seq, sid="CA-lost"))
    started_at = time.monotonic()
    with caplog.at_level(logging.ERROR, "voice_agent.storage.write_queue"):
        assert await queue.aclose(timeout=0.5) == 25
    assert time.monotonic() - started_at < 2.0
    assert "closed with 25 unwritten records" in caplog.text
