"""One stall timer per streamed response instead of one `asyncio.timeout` per chunk.

A reply streams hundreds of chunks; `asyncio.timeout` around each one schedules and
cancels a timer handle (a heap push and a lazy removal) every time. Here each chunk only
moves a deadline; the single timer handle notices a moved deadline when it fires and
re-arms itself for the new one, so it runs about once per `limit_s`, not per chunk.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class StallWatchdog:
    """``async with StallWatchdog(limit) as dog:`` then ``dog.waiting()`` before each
    await of the peer and ``dog.arrived()`` after it. Raises TimeoutError in the task when
    one wait lasts longer than `limit_s`. Time between waits (the consumer's own work,
    which may itself await, say, a slow socket) never counts and is never interrupted.
    """

    __slots__ = (
        "_armed",
        "_cancelling",
        "_deadline",
        "_fired",
        "_handle",
        "_limit",
        "_loop",
        "_task",
    )

    def __init__(self, limit_s: float) -> None:
        self._limit = limit_s
        self._armed = False
        self._fired = False
        self._deadline = 0.0
        self._cancelling = 0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> StallWatchdog:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("StallWatchdog must be used inside a task")
        self._task = task
        self._loop = loop = asyncio.get_running_loop()
        self._cancelling = task.cancelling()
        self._deadline = loop.time() + self._limit
        self._handle = loop.call_at(self._deadline, self._check)
        return self

    def waiting(self) -> None:
        """A wait for the peer begins: it must end within the limit."""
        self._deadline = self._loop.time() + self._limit  # type: ignore[union-attr]
        self._armed = True

    def arrived(self) -> None:
        self._armed = False

    def _check(self) -> None:
        loop = self._loop
        assert loop is not None and self._task is not None
        if not self._armed:
            # Nothing awaited from the peer right now; look again one limit later (a wait
            # that starts meanwhile has its deadline at least that far away).
            self._handle = loop.call_at(loop.time() + self._limit, self._check)
        elif loop.time() < self._deadline:
            self._handle = loop.call_at(self._deadline, self._check)
        else:
            self._fired = True
            self._handle = None
            self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        # As asyncio.timeout does: our cancel becomes TimeoutError; a cancel from outside
        # (the caller barged in) stays a cancel.
        if (
            self._fired
            and exc_type is asyncio.CancelledError
            and self._task is not None
            and self._task.uncancel() <= self._cancelling
        ):
            raise TimeoutError from exc
