"""One agent reply at a time per SMS thread, across every worker of the deployment.

A burst of texts must be answered in order, and the per-thread rate limit must count every
reply; with several workers behind a load balancer the texts of one burst land on
different workers, so with Redis the lock is held there too. Redis is a guard here, not a
gate: when it is down or a holder overstays, the reply goes ahead on this worker's lock
alone (logged), because a text answered twice is better than a text never answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio
from redis.exceptions import LockError, RedisError

log = logging.getLogger(__name__)


class ThreadLocks:
    def __init__(
        self,
        redis_client: redis.asyncio.Redis | None = None,
        *,
        hold_s: float = 120.0,
        wait_s: float = 60.0,
        prefix: str = "va:sms-thread:",
    ) -> None:
        self._redis = redis_client
        self._hold_s = hold_s  # expires a crashed worker's lock
        self._wait_s = wait_s
        self._prefix = prefix
        self._local: dict[int, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: int) -> AsyncIterator[None]:
        lock, users = self._local.setdefault(thread_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:  # this worker's own texts queue here, not by polling Redis
                shared = await self._acquire(thread_id)
                try:
                    yield
                finally:
                    if shared is not None:
                        await self._release(shared, thread_id)
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._local.pop(thread_id, None)

    async def _acquire(self, thread_id: int) -> redis.asyncio.lock.Lock | None:
        if self._redis is None:
            return None
        shared = self._redis.lock(
            f"{self._prefix}{thread_id}",
            timeout=self._hold_s,
            blocking_timeout=self._wait_s,
            sleep=0.05,
        )
        try:
            if await shared.acquire():
                return shared
            log.warning(
                "sms thread %d: another worker held its lock over %g s; replying anyway",
                thread_id,
                self._wait_s,
            )
        except RedisError as exc:
            log.warning("sms thread %d: no Redis lock (%s); this worker's only", thread_id, exc)
        return None

    @staticmethod
    async def _release(shared: redis.asyncio.lock.Lock, thread_id: int) -> None:
        try:
            await shared.release()
        except LockError:  # held past hold_s: it expired, and may be another's by now
            log.warning("sms thread %d: the reply outlived its Redis lock", thread_id)
        except RedisError as exc:
            log.warning("sms thread %d: Redis lock not released (%s)", thread_id, exc)
