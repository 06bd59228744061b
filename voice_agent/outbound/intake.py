"""One lead per person even when the same form reaches two server processes at once: the
duplicate check and the insert run under a lock on the lead's phone (and email), held in
Redis when the server has one, else in this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

import redis.asyncio

log = logging.getLogger(__name__)

_HOLD_MS = 10_000  # a crashed holder frees the key after this
_WAIT_S = 5.0
_RETRY_S = 0.02
# Delete the key only if this holder still owns it.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class IntakeLock:
    def __init__(self, client: redis.asyncio.Redis | None = None, prefix: str = "va:lead:") -> None:
        self._redis = client
        self._prefix = prefix
        self._local = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def hold(self, tenant: str, *identities: str) -> AsyncIterator[None]:
        async with self._local:
            if self._redis is None:
                yield
                return
            keys = sorted({f"{self._prefix}{tenant}:{i}" for i in identities if i})
            token = secrets.token_hex(8)
            held: list[str] = []
            try:
                for key in keys:
                    if await self._acquire(key, token):
                        held.append(key)
                yield
            finally:
                for key in held:
                    with contextlib.suppress(redis.RedisError, OSError):
                        await self._redis.eval(_RELEASE, 1, key, token)  # type: ignore[misc]

    async def _acquire(self, key: str, token: str) -> bool:
        """True once held; False when Redis is unreachable or the wait ran out (the caller
        goes on: a rare duplicate lead beats refusing one)."""
        assert self._redis is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_S
        try:
            while not await self._redis.set(key, token, nx=True, px=_HOLD_MS):
                if loop.time() > deadline:
                    log.warning("lead intake: %s still locked after %.0f s", key, _WAIT_S)
                    return False
                await asyncio.sleep(_RETRY_S)
        except (redis.RedisError, OSError) as exc:
            log.warning("lead intake: Redis unavailable (%s); deduplicating in-process", exc)
            return False
        return True
