"""Buffered, ordered, outage-proof writes of call records.

The real-time path calls ``put`` and moves on: no await, no I/O, no task per
record. One background task gathers records into batches and writes each batch
in one transaction. When the database is down the records wait in memory, in
order, and the task retries with capped exponential backoff.

With a journal (a local file, see journal.py) an outage also makes every waiting and
new record durable there at once, and memory holds at most ``memory_limit`` of them:
a long outage does not grow memory and a crash of the process loses nothing; the
journal is read back in order when the database returns (or the process restarts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from itertools import islice
from typing import Protocol

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from voice_agent.storage.journal import Journal
from voice_agent.storage.records import WriteRecord

log = logging.getLogger(__name__)


class RecordWriter(Protocol):
    async def write(self, records: Sequence[WriteRecord]) -> None: ...


def is_permanent_error(exc: BaseException) -> bool:
    """True when retrying cannot help: the records themselves are wrong.

    Everything else (refused connections, timeouts, restarts, locked SQLite files, even a
    missing table before migrations ran) is treated as an outage and retried, because
    dropping a caller's transcript is worse than holding it in memory a while longer.
    """
    if isinstance(exc, IntegrityError | DataError):
        return True
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        # Raised while binding parameters (e.g. a naive datetime), before any I/O.
        return True
    return isinstance(exc, TypeError | ValueError | KeyError | AttributeError)


class WriteQueue:
    def __init__(
        self,
        repository: RecordWriter,
        *,
        batch_size: int = 200,
        flush_interval: float = 0.05,
        max_backoff: float = 5.0,
        max_pending: int = 500_000,
        write_timeout: float = 15.0,
        journal: Journal | None = None,
        memory_limit: int = 20_000,
    ) -> None:
        self._repository = repository
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_backoff = max_backoff
        self._max_pending = max_pending
        self._write_timeout = write_timeout

        self._pending: deque[WriteRecord] = deque()
        self._has_records = asyncio.Event()
        self._urgent = asyncio.Event()  # batch full, or someone waits in flush()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

        # Records ever accepted / ever finished (written or rejected): flush() waits on these.
        self._accepted = 0
        self._finished = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

        self._outage_since: float | None = None
        self._dropping = False

        self.written = 0
        self.failures = 0  # failed write attempts (each retry counts)
        self.rejected = 0  # records the database refused for good
        self.dropped = 0  # records refused by put(): queue full or closed

        self._journal = journal
        self._memory_limit = memory_limit
        #: Journal offsets just past each of the first len(_offsets) pending records (the
        #: ones that are in the journal too); the rest of _pending is in memory only.
        self._offsets: deque[int] = deque()
        #: Records in the journal and not (yet) in memory, after every pending one.
        self._spilled = 0
        if journal is not None and not journal.empty:
            # Left by an earlier process (a crash, or an outage at shutdown).
            self._spilled = journal.unread()
            self._accepted += self._spilled
            if self._spilled:
                self._has_records.set()
                log.warning(
                    "storage journal holds %d records from before; replaying", self._spilled
                )

    @property
    def pending(self) -> int:
        return len(self._pending) + self._spilled

    @property
    def journaled(self) -> int:
        """Records waiting in the journal file (those in memory as well included)."""
        return len(self._offsets) + self._spilled

    def _durable(self) -> bool:
        journal = self._journal
        return journal is not None and (self._outage_since is not None or not journal.empty)

    @property
    def healthy(self) -> bool:
        """False while the last write attempt failed and records are waiting."""
        return self._outage_since is None

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("WriteQueue already started")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="storage-writer")

    def put(self, record: WriteRecord) -> None:
        """Queue one record. Never blocks and never raises for database trouble.

        Not thread-safe: call it from the event loop's thread.
        """
        if not self._closed and self._journal is not None:
            if self._durable() or len(self._pending) >= self._memory_limit:
                if self._to_journal(record):
                    return
        if self._closed or len(self._pending) >= self._max_pending:
            self.dropped += 1
            if not self._dropping:
                self._dropping = True
                reason = "closed" if self._closed else f"full ({self._max_pending} records)"
                log.error("storage write queue %s: dropping records", reason)
            return
        self._pending.append(record)
        self._accepted += 1
        if not self._has_records.is_set():
            self._has_records.set()
        if len(self._pending) >= self._batch_size and not self._urgent.is_set():
            self._urgent.set()

    def _to_journal(self, record: WriteRecord) -> bool:
        """Append to the journal (and keep in memory if there is room and nothing is only
        in the journal); False when the file cannot be written (the memory path then)."""
        journal = self._journal
        assert journal is not None
        try:
            self._spill_memory()
            offset = journal.append(record)
        except (OSError, TypeError, ValueError) as exc:
            log.error("storage journal not written, keeping the record in memory: %s", exc)
            return False
        self._accepted += 1
        if self._spilled == 0 and len(self._pending) < self._memory_limit:
            self._pending.append(record)
            self._offsets.append(offset)
            journal.read_pos = offset
        else:
            self._spilled += 1
        if not self._has_records.is_set():
            self._has_records.set()
        return True

    def _spill_memory(self) -> None:
        """Make the records only in memory durable too (they follow the journaled ones)."""
        journal = self._journal
        assert journal is not None
        if len(self._offsets) == len(self._pending):
            return
        for record in islice(self._pending, len(self._offsets), None):
            self._offsets.append(journal.append(record))
        journal.read_pos = journal.end

    def _load(self) -> None:
        """Read the next records back from the journal into memory, in order."""
        journal = self._journal
        assert journal is not None
        for record, offset in journal.read(min(self._spilled, self._memory_limit)):
            self._spilled -= 1
            if record is None:  # unreadable line (logged): counted as rejected
                self.rejected += 1
                self._finished += 1
                if self._offsets:
                    self._offsets[-1] = offset
                else:
                    journal.commit(offset)
                continue
            self._pending.append(record)  # type: ignore[arg-type]
            self._offsets.append(offset)
        if self._spilled and not self._pending:
            # The count was off (a line cut by a crash): trust the file.
            unread = journal.unread()
            self._finished += max(0, self._spilled - unread)
            self._spilled = unread

    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until every record put before this call is written (or rejected).

        Returns False when ``timeout`` passes first; the records stay queued.
        """
        target = self._accepted
        if self._finished >= target:
            return True
        if self._task is None or self._task.done():
            raise RuntimeError("WriteQueue is not running: call start() first")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._urgent.set()
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:
            if future.cancelled():  # timed out or flush() itself was cancelled
                self._waiters = [(t, f) for t, f in self._waiters if f is not future]
        return True

    async def aclose(self, timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """Stop taking records, write what can be written within ``timeout`` and stop.

        Runs under asyncio.shield, so a cancelled shutdown still saves what it can.
        Returns how many records could not be written (and logs them as lost).
        """
        self._closed = True
        return await asyncio.shield(asyncio.ensure_future(self._close(timeout)))

    async def _close(self, timeout: float) -> int:  # noqa: ASYNC109
        if self._task is not None and not self._task.done():
            await self.flush(timeout)
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._journal is not None:
            try:
                self._spill_memory()
            except OSError as exc:
                log.error("storage journal not written at shutdown: %s", exc)
            else:
                if self.pending:
                    log.warning(
                        "storage write queue closed with %d records kept in the journal %s",
                        self.pending,
                        self._journal.path,
                    )
                self._journal.close()
                return 0
        lost = len(self._pending)
        if lost:
            log.error("storage write queue closed with %d unwritten records", lost)
        return lost

    # --- the writer task -------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.0
        while True:
            await self._has_records.wait()
            if len(self._pending) < self._batch_size and not self._urgent.is_set():
                # Linger briefly so a burst of turns becomes one transaction.
                try:
                    async with asyncio.timeout(self._flush_interval):
                        await self._urgent.wait()
                except TimeoutError:
                    pass
            while self._pending or self._spilled:
                if not self._pending:
                    self._load()
                    if not self._pending:
                        continue
                try:
                    await self._write_head()
                except Exception as exc:
                    self.failures += 1
                    self._enter_outage(exc)
                    backoff = min(self._max_backoff, max(0.05, backoff * 2))
                    await asyncio.sleep(backoff)
                    continue
                backoff = 0.0
                self._leave_outage()
            # No await since the loop condition: nothing can have been put in between.
            self._has_records.clear()
            self._urgent.clear()

    async def _write_head(self) -> None:
        batch = list(islice(self._pending, self._batch_size))
        try:
            async with asyncio.timeout(self._write_timeout):
                await self._repository.write(batch)
        except Exception as exc:
            if not is_permanent_error(exc):
                raise
            # Some record in the batch is bad: find it by writing one at a time, so the
            # good ones around it still land, in order.
            await self._write_one_by_one(len(batch))
            return
        self._done(len(batch), written=True)

    async def _write_one_by_one(self, count: int) -> None:
        for _ in range(count):
            record = self._pending[0]
            try:
                async with asyncio.timeout(self._write_timeout):
                    await self._repository.write([record])
            except Exception as exc:
                if not is_permanent_error(exc):
                    raise
                log.error("storage rejected %r: %s", record, exc)
                self._done(1, written=False)
            else:
                self._done(1, written=True)

    def _done(self, count: int, *, written: bool) -> None:
        for _ in range(count):
            self._pending.popleft()
        if self._offsets:
            offset = 0
            for _ in range(min(count, len(self._offsets))):
                offset = self._offsets.popleft()
            assert self._journal is not None
            self._journal.commit(offset)
        if written:
            self.written += count
        else:
            self.rejected += count
        self._finished += count
        # Re-arm the "dropping" log only once there is real room again, so a queue hovering
        # at its limit logs once rather than on every batch.
        if self._dropping and not self._closed and len(self._pending) < self._max_pending // 2:
            self._dropping = False
            log.warning("storage write queue has room again (%d dropped so far)", self.dropped)
        if self._waiters:
            still: list[tuple[int, asyncio.Future[None]]] = []
            for target, future in self._waiters:
                if self._finished >= target:
                    if not future.done():
                        future.set_result(None)
                else:
                    still.append((target, future))
            self._waiters = still

    def _enter_outage(self, exc: BaseException) -> None:
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            if self._journal is not None:
                try:
                    self._spill_memory()
                except OSError as error:
                    log.error("storage journal not written: %s", error)
            # Once per outage: a dead database during a busy hour must not flood the log.
            log.warning(
                "storage write failed, keeping records in memory and retrying: %s: %s",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )

    def _leave_outage(self) -> None:
        if self._outage_since is not None:
            log.warning(
                "storage writes resumed after %.1f s (%d records still pending)",
                time.monotonic() - self._outage_since,
                len(self._pending),
            )
            self._outage_since = None
