"""One media stream per call, across every worker.

A replayed voice webhook (the same signed request, the same CallSid) mints a fresh token,
and its stream may reach any worker. The worker holding the call knows it has a stream;
another one does not, unless the claim is shared: with Redis, a stream claims its CallSid
with ``SET NX`` before its session starts, and releases it (only if still its own) when
it ends. Without Redis, or while Redis is away (said once, through RedisHealth), the
claims are this process's own, which is as much as a single worker can know.

A resumed stream (``/twilio/resume``, after the first stream's worker died) takes the
claim over: the dead worker cannot release it, and Twilio asks for the resume only once
the first stream has ended.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from typing import Protocol

import redis.asyncio
import redis.exceptions

__all__ = ["MemoryStreamClaims", "RedisStreamClaims", "StreamClaims"]

#: Redis part name, for the warning and the metric's label.
PART = "stream claims"

# Delete the key only while it still holds this stream's own mark: a release that comes
# after a resumed stream took the call over must not free the new stream's claim.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Health(Protocol):
    """What the claims tell about Redis (voice_agent.redis_health.RedisHealth)."""

    def failed(self, part: str, exc: BaseException) -> None: ...

    def ok(self, part: str) -> None: ...


class StreamClaims(Protocol):
    async def claim(self, call_sid: str, *, take_over: bool = False) -> bool:
        """True when this stream may serve `call_sid`: no other stream holds it (or
        `take_over`, for a resumed call). A True must be followed by `release`."""
        ...

    async def release(self, call_sid: str) -> None: ...


class MemoryStreamClaims:
    """The streams open in this process."""

    def __init__(self) -> None:
        self._held: set[str] = set()

    def __len__(self) -> int:
        return len(self._held)

    async def claim(self, call_sid: str, *, take_over: bool = False) -> bool:
        if call_sid in self._held and not take_over:
            return False
        self._held.add(call_sid)
        return True

    async def release(self, call_sid: str) -> None:
        self._held.discard(call_sid)


class RedisStreamClaims:
    """Claims in Redis, shared by every worker; this process's own while Redis is away."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        health: Health,
        ttl_s: float,
        prefix: str = "va:stream:",
        timeout_s: float = 0.5,
    ) -> None:
        if not (ttl_s > 0 and math.isfinite(ttl_s)):
            raise ValueError(f"ttl_s must be a positive number, got {ttl_s!r}")
        self._redis = client
        self._health = health
        # Longer than any call: a claim whose worker died blocks only replays of its call.
        self._ttl_ms = max(1, math.ceil(ttl_s * 1000))
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._memory = MemoryStreamClaims()
        #: This process's mark on each claim it holds in Redis.
        self._marks: dict[str, str] = {}

    async def claim(self, call_sid: str, *, take_over: bool = False) -> bool:
        # This process's own streams are refused without asking Redis (and while it is away).
        if not await self._memory.claim(call_sid, take_over=take_over):
            return False
        mark = secrets.token_hex(8)
        try:
            async with asyncio.timeout(self._timeout_s):
                won = await self._redis.set(
                    self._prefix + call_sid, mark, px=self._ttl_ms, nx=not take_over
                )
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._health.failed(PART, exc)
            return True  # in-process only: the local claim above stands
        self._health.ok(PART)
        if not won:
            await self._memory.release(call_sid)
            return False
        self._marks[call_sid] = mark
        return True

    async def release(self, call_sid: str) -> None:
        await self._memory.release(call_sid)
        mark = self._marks.pop(call_sid, None)
        if mark is None:
            return  # claimed while Redis was away: nothing of ours there
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._redis.eval(_RELEASE, 1, self._prefix + call_sid, mark)
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            # Left to expire: it blocks only replays of a call that has ended.
            self._health.failed(PART, exc)
            return
        self._health.ok(PART)
