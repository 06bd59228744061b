"""Calls-per-second pacing: Twilio queues API-created calls beyond the account's CPS (1 by
default) and a burst can trip its limits, so requests leave no faster than the cap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import redis.asyncio


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
        """Return when the next request may leave."""
        async with self._lock:
            now = self._clock()
            if self._next_at is not None and now < self._next_at:
                await self._sleep(self._next_at - now)
                now = self._clock()
            self._next_at = max(now, self._next_at or now) + self._interval


class RedisCpsGate:
    """The cap shared by every worker: time is cut into 1/cps slots and each slot admits one
    call, counted in Redis. Redis unreachable: falls back to this process's own gate."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        cps: float,
        prefix: str = "va:cps:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not cps > 0:
            raise ValueError("cps must be positive")
        self._redis = client
        self._cps = cps
        self._prefix = prefix
        self._clock = clock
        self._fallback = CpsGate(cps)

    async def wait(self) -> int | None:
        """Returns the slot taken (None when Redis failed and the local gate was used)."""
        while True:
            now = self._clock()
            slot = int(now * self._cps)
            key = f"{self._prefix}{slot}"
            try:
                async with asyncio.timeout(1.0):
                    pipe = self._redis.pipeline()
                    pipe.incr(key)
                    pipe.expire(key, max(2, int(2 / self._cps) + 1))
                    taken, _ = await pipe.execute()
            except (TimeoutError, redis.RedisError, OSError):
                await self._fallback.wait()
                return None
            if int(taken) == 1:
                return slot
            await asyncio.sleep(max(0.0, (slot + 1) / self._cps - now))
