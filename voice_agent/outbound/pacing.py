"""Calls-per-second pacing: Twilio queues API-created calls beyond the account's CPS (1 by
default) and a burst can trip its limits, so requests leave no faster than the cap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class CpsGate:
    """``await gate.wait()`` returns no sooner than 1/cps after the previous return."""

    def __init__(
        self,
        cps: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not cps > 0:
            raise ValueError("cps must be positive")
        self._interval = 1.0 / cps
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = self._clock()
            if self._next_at is not None and now < self._next_at:
                await self._sleep(self._next_at - now)
                now = self._clock()
            self._next_at = max(now, self._next_at or now) + self._interval
