from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from voice_agent.telephony.tokens import CallTokenStore, MemoryTokenStore, RedisTokenStore

DATA = {"tenant": "acme", "call_sid": "CA" + "0" * 32, "from": "+15551230000"}
URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CallTokenStore]:
    if request.param == "memory":
        yield MemoryTokenStore()
        return
    client = redis.asyncio.Redis(host="127.0.0.1", port=6379)
    prefix = f"test:va:tok:{uuid.uuid4().hex}:"
    try:
        yield RedisTokenStore(client, prefix=prefix)
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


# --- behaviour shared by both stores ---------------------------------------------------


async def test_token_is_random_urlsafe_and_long(store: CallTokenStore) -> None:
    tokens = {await store.issue(DATA) for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert URLSAFE.fullmatch(token)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128


async def test_redeem_once(store: CallTokenStore) -> None:
    token = await store.issue(DATA)
    assert await store.redeem(token) == DATA
    assert await store.redeem(token) is None


async def test_each_token_keeps_its_own_data(store: CallTokenStore) -> None:
    first = await store.issue({"n": "1"})
    second = await store.issue({"n": "2"})
    assert await store.redeem(second) == {"n": "2"}
    assert await store.redeem(first) == {"n": "1"}


async def test_empty_data(store: CallTokenStore) -> None:
    token = await store.issue({})
    assert await store.redeem(token) == {}


@pytest.mark.parametrize("token", ["", "unknown-token", "x" * 10_000, None, 12])
async def test_unknown_or_junk_tokens(store: CallTokenStore, token: object) -> None:
    await store.issue(DATA)
    assert await store.redeem(token) is None  # type: ignore[arg-type]


async def test_issued_data_is_copied(store: CallTokenStore) -> None:
    data = dict(DATA)
    token = await store.issue(data)
    data["tenant"] = "changed"
    assert await store.redeem(token) == DATA


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf")])
async def test_bad_ttl(store: CallTokenStore, ttl: float) -> None:
    with pytest.raises(ValueError):
        await store.issue(DATA, ttl_s=ttl)


async def test_non_string_data(store: CallTokenStore) -> None:
    with pytest.raises(TypeError):
        await store.issue({"n": 1})  # type: ignore[dict-item]


async def test_concurrent_redeems_have_one_winner(store: CallTokenStore) -> None:
    token = await store.issue(DATA)
    results = await asyncio.gather(*(store.redeem(token) for _ in range(20)))
    assert results.count(DATA) == 1
    assert results.count(None) == 19


# --- memory store ----------------------------------------------------------------------


async def test_memory_expiry() -> None:
    clock = Clock()
    store = MemoryTokenStore(clock=clock)
    token = await store.issue(DATA, ttl_s=120)
    early = await store.issue(DATA, ttl_s=120)
    clock.now += 119.9
    assert await store.redeem(early) == DATA
    clock.now += 0.1
    assert await store.redeem(token) is None


async def test_memory_expired_tokens_are_pruned_on_issue() -> None:
    clock = Clock()
    store = MemoryTokenStore(clock=clock)
    for _ in range(10):
        await store.issue(DATA, ttl_s=5)
    assert len(store) == 10
    clock.now += 5
    fresh = await store.issue(DATA, ttl_s=5)
    assert len(store) == 1
    assert await store.redeem(fresh) == DATA


async def test_memory_prunes_expired_tokens_behind_a_long_lived_one() -> None:
    clock = Clock()
    store = MemoryTokenStore(max_entries=5, clock=clock)
    keeper = await store.issue(DATA, ttl_s=1000)
    for _ in range(3):
        await store.issue(DATA, ttl_s=1)
    clock.now += 2
    tokens = [await store.issue(DATA, ttl_s=1) for _ in range(3)]
    # The expired three made room; the long-lived token was not evicted.
    assert len(store) == 4
    assert await store.redeem(keeper) == DATA
    for token in tokens:
        assert await store.redeem(token) == DATA


async def test_memory_is_bounded_and_evicts_oldest() -> None:
    store = MemoryTokenStore(max_entries=3)
    tokens = [await store.issue({"n": str(i)}) for i in range(5)]
    assert len(store) <= 3
    assert await store.redeem(tokens[0]) is None
    assert await store.redeem(tokens[1]) is None
    assert await store.redeem(tokens[4]) == {"n": "4"}


def test_memory_bad_bound() -> None:
    with pytest.raises(ValueError):
        MemoryTokenStore(max_entries=0)


# --- redis store -----------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_expiry(redis_client: redis.asyncio.Redis, redis_prefix: str) -> None:
    store = RedisTokenStore(redis_client, prefix=redis_prefix)
    token = await store.issue(DATA, ttl_s=0.05)
    kept = await store.issue(DATA, ttl_s=30)
    await asyncio.sleep(0.15)
    assert await store.redeem(token) is None
    assert await store.redeem(kept) == DATA


@pytest.mark.redis
async def test_redis_key_has_ttl_and_prefix(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    store = RedisTokenStore(redis_client, prefix=redis_prefix)
    token = await store.issue(DATA, ttl_s=120)
    ttl_ms = await redis_client.pttl(redis_prefix + token)
    assert 110_000 < ttl_ms <= 120_000
    await store.redeem(token)
    assert await redis_client.exists(redis_prefix + token) == 0


@pytest.mark.redis
async def test_redis_token_redeemed_by_another_worker(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    issuer = RedisTokenStore(redis_client, prefix=redis_prefix)
    other_connection = redis.asyncio.Redis(host="127.0.0.1", port=6379)
    try:
        redeemer = RedisTokenStore(other_connection, prefix=redis_prefix)
        token = await issuer.issue(DATA)
        assert await redeemer.redeem(token) == DATA
        assert await issuer.redeem(token) is None
    finally:
        await other_connection.aclose()


@pytest.mark.redis
async def test_redis_prefixes_are_isolated(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    store = RedisTokenStore(redis_client, prefix=redis_prefix)
    other = RedisTokenStore(redis_client, prefix=redis_prefix + "other:")
    token = await store.issue(DATA)
    assert await other.redeem(token) is None
    assert await store.redeem(token) == DATA


@pytest.mark.redis
@pytest.mark.parametrize("stored", [b"not json", b'["a"]', b'{"n": 1}'])
async def test_redis_corrupt_value_is_refused(
    redis_client: redis.asyncio.Redis, redis_prefix: str, stored: bytes
) -> None:
    store = RedisTokenStore(redis_client, prefix=redis_prefix)
    await redis_client.set(redis_prefix + "planted", stored, ex=60)
    assert await store.redeem("planted") is None
    assert await redis_client.exists(redis_prefix + "planted") == 0


@pytest.mark.redis
async def test_redis_unreachable_raises() -> None:
    # Store outages pass through: the caller decides what they mean for the call.
    dead = redis.asyncio.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    store = RedisTokenStore(dead, prefix="test:unreachable:")
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await store.issue(DATA)
        with pytest.raises(redis.exceptions.ConnectionError):
            await store.redeem("abc")
    finally:
        await dead.aclose()
