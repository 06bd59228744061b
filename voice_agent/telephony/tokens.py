"""Single-use per-call tokens that tie a Media Streams websocket to a voice webhook.

The voice webhook (signed by Twilio) issues a token and passes it as a ``<Parameter>``;
the media websocket redeems it from ``start.customParameters``. A token works once and
only for a short time, so a captured or guessed stream URL cannot open a call.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Callable
from typing import Protocol

import orjson
import redis.asyncio
import redis.exceptions

__all__ = [
    "DEFAULT_TTL_S",
    "CallTokenStore",
    "MemoryTokenStore",
    "RedisTokenStore",
    "new_token",
]

DEFAULT_TTL_S = 120.0
# 24 random bytes = 192 bits, 32 url-safe characters.
_TOKEN_BYTES = 24
# Anything longer was not minted here; refusing it early keeps junk out of Redis keys.
_MAX_TOKEN_CHARS = 64


def new_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def _plausible(token: object) -> bool:
    return isinstance(token, str) and 0 < len(token) <= _MAX_TOKEN_CHARS


def _check_issue(data: dict[str, str], ttl_s: float) -> None:
    if not (ttl_s > 0 and math.isfinite(ttl_s)):
        raise ValueError(f"ttl_s must be a positive number, got {ttl_s!r}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise TypeError("token data must map str to str")


class CallTokenStore(Protocol):
    async def issue(self, data: dict[str, str], ttl_s: float = DEFAULT_TTL_S) -> str:
        """Mint a fresh token carrying ``data``, valid for ``ttl_s`` seconds."""
        ...

    async def redeem(self, token: str) -> dict[str, str] | None:
        """The token's data, once; ``None`` if unknown, expired or already redeemed."""
        ...


class MemoryTokenStore:
    """Tokens in this process: right for a single worker (and for tests).

    Expired entries are dropped lazily as new tokens are issued; the store never holds more
    than ``max_entries``, evicting the oldest when a flood of unredeemed tokens arrives.
    """

    def __init__(
        self,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        # Insertion order is issue order, so the front holds the oldest tokens.
        self._entries: dict[str, tuple[float, dict[str, str]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def issue(self, data: dict[str, str], ttl_s: float = DEFAULT_TTL_S) -> str:
        _check_issue(data, ttl_s)
        now = self._clock()
        self._prune(now)
        token = new_token()
        self._entries[token] = (now + ttl_s, dict(data))
        return token

    async def redeem(self, token: str) -> dict[str, str] | None:
        if not _plausible(token):
            return None
        entry = self._entries.pop(token, None)
        if entry is None:
            return None
        expires_at, data = entry
        if self._clock() >= expires_at:
            return None
        return data

    def _prune(self, now: float) -> None:
        entries = self._entries
        # Cheap common case: TTLs are mostly equal, so expired tokens sit at the front.
        while entries:
            oldest = next(iter(entries))
            if entries[oldest][0] > now:
                break
            del entries[oldest]
        if len(entries) < self._max_entries:
            return
        for token in [t for t, (expires_at, _) in entries.items() if expires_at <= now]:
            del entries[token]
        while len(entries) >= self._max_entries:
            del entries[next(iter(entries))]


class RedisTokenStore:
    """Tokens in Redis, so any worker can redeem a token another worker issued."""

    def __init__(self, redis: redis.asyncio.Redis, prefix: str = "va:tok:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def issue(self, data: dict[str, str], ttl_s: float = DEFAULT_TTL_S) -> str:
        _check_issue(data, ttl_s)
        token = new_token()
        # PX, not EX: sub-second TTLs round up instead of becoming "never expires".
        await self._redis.set(
            self._prefix + token, orjson.dumps(data), px=max(1, math.ceil(ttl_s * 1000))
        )
        return token

    async def redeem(self, token: str) -> dict[str, str] | None:
        if not _plausible(token):
            return None
        # GETDEL is atomic: two workers racing on one token cannot both win.
        raw = await self._redis.getdel(self._prefix + token)
        if raw is None:
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            return None
        return data


class DegradingTokenStore:
    """Redis tokens while Redis answers; this process's memory while it does not, so a
    call still connects (to this worker) during an outage. `health` hears of both."""

    def __init__(
        self,
        redis_store: RedisTokenStore,
        health: object,
        memory: MemoryTokenStore | None = None,
        timeout_s: float = 0.5,
    ) -> None:
        self._redis = redis_store
        self._health = health
        self._memory = memory or MemoryTokenStore()
        self._timeout_s = timeout_s

    async def issue(self, data: dict[str, str], ttl_s: float = DEFAULT_TTL_S) -> str:
        try:
            async with asyncio.timeout(self._timeout_s):
                token = await self._redis.issue(data, ttl_s)
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._health.failed("tokens", exc)  # type: ignore[attr-defined]
            return await self._memory.issue(data, ttl_s)
        self._health.ok("tokens")  # type: ignore[attr-defined]
        return token

    async def redeem(self, token: str) -> dict[str, str] | None:
        if len(self._memory):  # issued here during an outage
            data = await self._memory.redeem(token)
            if data is not None:
                return data
        try:
            async with asyncio.timeout(self._timeout_s):
                data = await self._redis.redeem(token)
        except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
            self._health.failed("tokens", exc)  # type: ignore[attr-defined]
            return None
        self._health.ok("tokens")  # type: ignore[attr-defined]
        return data
