"""Buffered, ordered, outage-proof writes of call records.

The real-time path calls ``put`` and moves on: no await, no I/O, no task per
record. One background task gathers records into batches and writes each batch
in one transaction. When the database is down the records wait in memory, in
order, and the task retries with capped exponential backoff; nothing is lost
unless the process dies or the (large) memory limit is reached.
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

    @property
    def pending(self) -> int:
        return len(self._pending)

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
            while self._pending:
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
