"""Fixed-window request limits for webhooks: in this process, or in Redis when the server
has one (then every worker shares the count)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio


class RateLimiter(Protocol):
    async def allow(self, key: str) -> bool:
        """Count one request under ``key``; False when the key is over its limit."""
        ...


class MemoryRateLimiter:
    """At most ``limit`` requests per key in each ``window_s`` window."""

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit and window_s must be positive")
        self._limit = limit
        self._window_s = window_s
        self._clock = clock
        self._max_keys = max_keys
        self._counts: dict[str, tuple[int, int]] = {}  # key -> (window number, count)

    async def allow(self, key: str) -> bool:
        window = int(self._clock() // self._window_s)
        seen_window, count = self._counts.get(key, (window, 0))
        if seen_window != window:
            count = 0
        if count >= self._limit:
            return False
        if len(self._counts) >= self._max_keys:
            # A flood of distinct keys: forget the old windows rather than grow without end.
            self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        self._counts[key] = (window, count + 1)
        return True


class RedisRateLimiter:
    def __init__(
        self,
        client: redis.asyncio.Redis,
        limit: int,
        window_s: int = 60,
        prefix: str = "va:rl:",
        timeout_s: float = 1.0,
    ) -> None:
        self._redis = client
        self._limit = limit
        self._window_s = window_s
        self._prefix = prefix
        self._timeout_s = timeout_s

    async def allow(self, key: str) -> bool:
        window = int(time.time() // self._window_s)
        name = f"{self._prefix}{key}:{window}"
        try:
            async with asyncio.timeout(self._timeout_s):
                pipe = self._redis.pipeline()
                pipe.incr(name)
                pipe.expire(name, self._window_s * 2)
                count, _ = await pipe.execute()
        except (TimeoutError, redis.RedisError):
            # Redis down: let the request through; the lead matters more than the limit.
            return True
        return int(count) <= self._limit
