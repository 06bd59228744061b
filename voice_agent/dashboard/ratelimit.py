"""Failed-login counting per (client address, email): in Redis when configured, so every
worker shares one count, else in this process."""

from __future__ import annotations

import hashlib
import time
from typing import Any, Protocol

MAX_FAILURES = 5
WINDOW_S = 15 * 60


def login_failures_key(address: str, email: str) -> str:
    # Hashed: emails are personal data and need not sit in Redis in the clear.
    digest = hashlib.sha256(f"{address}\0{email.strip().lower()}".encode()).hexdigest()[:32]
    return f"voice_agent:login_failures:{digest}"


class LoginLimiter(Protocol):
    async def blocked(self, address: str, email: str) -> bool: ...

    async def failed(self, address: str, email: str) -> None: ...

    async def succeeded(self, address: str, email: str) -> None: ...


class MemoryLoginLimiter:
    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S) -> None:
        self._max = max_failures
        self._window = window_s
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, window end)

    async def blocked(self, address: str, email: str) -> bool:
        count, until = self._failures.get(login_failures_key(address, email), (0, 0.0))
        return count >= self._max and time.monotonic() < until

    async def failed(self, address: str, email: str) -> None:
        now = time.monotonic()
        if len(self._failures) > 10_000:  # bounded: forget windows that have ended
            self._failures = {k: v for k, v in self._failures.items() if v[1] > now}
        key = login_failures_key(address, email)
        count, until = self._failures.get(key, (0, 0.0))
        if now >= until:
            count, until = 0, now + self._window
        self._failures[key] = (count + 1, until)

    async def succeeded(self, address: str, email: str) -> None:
        self._failures.pop(login_failures_key(address, email), None)


class RedisLoginLimiter:
    def __init__(self, redis: Any, max_failures: int = MAX_FAILURES, window_s: int = WINDOW_S):
        self._redis = redis
        self._max = max_failures
        self._window = int(window_s)

    async def blocked(self, address: str, email: str) -> bool:
        count = await self._redis.get(login_failures_key(address, email))
        return count is not None and int(count) >= self._max

    async def failed(self, address: str, email: str) -> None:
        key = login_failures_key(address, email)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self._window, nx=True)
            await pipe.execute()

    async def succeeded(self, address: str, email: str) -> None:
        await self._redis.delete(login_failures_key(address, email))
