"""A request budget: at most N requests in any window of W seconds (Twenty: 100/minute).

``await limiter.wait()`` returns when one more request may leave. In-process only; a
deployment with several workers gives each a share (or passes a shared gate instead: the
clients take anything with an ``async wait()``)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol


class RequestGate(Protocol):
    async def wait(self) -> object: ...


class SlidingWindowLimiter:
    def __init__(
        self,
        max_requests: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if max_requests < 1 or window_s <= 0:
            raise ValueError("a limit needs at least one request per positive window")
        self.max_requests = max_requests
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()
        self.waited_s = 0.0  # total time callers were held back, for reports

    async def wait(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window_s:
                    self._sent.popleft()
                if len(self._sent) < self.max_requests:
                    self._sent.append(now)
                    return
                delay = self._sent[0] + self.window_s - now
                self.waited_s += delay
                await self._sleep(delay)
