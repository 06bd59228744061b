"""Stream claims on real Redis: one winner per CallSid across two workers' claim stores,
release only of one's own claim, a resumed stream taking over, and Redis away (through
the TCP proxy) degrading to this process's own claims with one warning."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio

from tests.tcp_proxy import TcpProxy
from voice_agent.redis_health import RedisHealth
from voice_agent.telephony.stream_claims import PART, MemoryStreamClaims, RedisStreamClaims


def _claims(client: redis.asyncio.Redis, prefix: str, health: RedisHealth) -> RedisStreamClaims:
    return RedisStreamClaims(client, health, ttl_s=60.0, prefix=prefix)


async def test_two_workers_racing_for_one_call_have_one_winner(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    health = RedisHealth()
    a, b = _claims(redis_client, redis_prefix, health), _claims(redis_client, redis_prefix, health)
    won = await asyncio.gather(*(w.claim("CA1") for w in (a, b, a, b)))
    assert sorted(won) == [False, False, False, True]
    assert 0 < await redis_client.pttl(redis_prefix + "CA1") <= 60_000

    loser = b if won[0] else a
    winner = a if won[0] else b
    await loser.release("CA1")  # not its claim: the winner's stays
    assert await redis_client.get(redis_prefix + "CA1") is not None
    await winner.release("CA1")
    assert await redis_client.get(redis_prefix + "CA1") is None
    assert await loser.claim("CA1")  # free again
    await loser.release("CA1")


async def test_a_resumed_stream_takes_over_and_the_old_release_leaves_it(
    redis_client: redis.asyncio.Redis, redis_prefix: str
) -> None:
    health = RedisHealth()
    old = _claims(redis_client, redis_prefix, health)
    new = _claims(redis_client, redis_prefix, health)
    assert await old.claim("CA2")
    assert not await new.claim("CA2")
    assert await new.claim("CA2", take_over=True)
    await old.release("CA2")  # the first stream's late teardown
    assert await redis_client.get(redis_prefix + "CA2") is not None
    assert not await old.claim("CA2")
    await new.release("CA2")
    assert await redis_client.get(redis_prefix + "CA2") is None


async def test_redis_away_claims_stay_in_process_said_once_and_come_back(
    redis_prefix: str, redis_client: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    client = redis.asyncio.Redis(host="127.0.0.1", port=proxy.port)
    health = RedisHealth()
    errors: list[str] = []
    health.on_error = errors.append
    claims = _claims(client, redis_prefix, health)
    try:
        assert await claims.claim("CA3")  # in Redis
        await proxy.cut()
        with caplog.at_level(logging.WARNING, "voice_agent.redis_health"):
            await claims.release("CA3")  # cannot reach Redis: left to expire
            assert await claims.claim("CA4")
            assert not await claims.claim("CA4")  # this process's own second stream
            await claims.release("CA4")
            assert await claims.claim("CA4")
        warnings = [r.getMessage() for r in caplog.records if "redis unavailable" in r.getMessage()]
        assert len(warnings) == 1 and PART in warnings[0]
        assert errors == [PART, PART, PART]
        assert not health.up
        assert await redis_client.get(redis_prefix + "CA3") is not None  # expires by itself
        assert await redis_client.get(redis_prefix + "CA4") is None

        await claims.release("CA4")  # claimed in-process: nothing in Redis to free
        await proxy.restore()
        assert await claims.claim("CA5")
        assert health.up
        assert await redis_client.get(redis_prefix + "CA5") is not None
        await claims.release("CA5")
    finally:
        await client.aclose()
        await proxy.aclose()


async def test_memory_claims_and_a_bad_ttl(redis_client: redis.asyncio.Redis) -> None:
    memory = MemoryStreamClaims()
    assert await memory.claim("CA6") and not await memory.claim("CA6")
    assert await memory.claim("CA6", take_over=True)
    await memory.release("CA6")
    assert len(memory) == 0
    for ttl in (0.0, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            RedisStreamClaims(redis_client, RedisHealth(), ttl_s=ttl)
