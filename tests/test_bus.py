"""The live-event bus: in-process fan-out, and Redis pub/sub between two "workers" against
the real Redis on loopback."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis.asyncio as aioredis

from voice_agent.bus import Bus, RedisBus
from voice_agent.demo import free_port

REDIS = "redis://127.0.0.1:6379/0"


async def _next(subscription, wait_s: float = 5.0) -> dict:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(wait_s):
        return await subscription.get()


async def test_in_process_fan_out_to_every_subscriber() -> None:
    bus = Bus()
    await bus.start()
    try:
        with bus.subscribe() as first, bus.subscribe() as second:
            assert bus.subscriber_count == 2
            for i in range(3):
                bus.publish({"type": "turn", "seq": i})
            for sub in (first, second):
                assert [(await _next(sub))["seq"] for _ in range(3)] == [0, 1, 2]
        assert bus.subscriber_count == 0
    finally:
        await bus.aclose()


async def test_a_slow_subscriber_loses_events_alone() -> None:
    bus = Bus()
    await bus.start()
    try:
        with bus.subscribe(maxsize=2) as slow, bus.subscribe(maxsize=100) as fast:
            for i in range(5):
                bus.publish({"seq": i})
            assert [(await _next(fast))["seq"] for _ in range(5)] == [0, 1, 2, 3, 4]
            assert slow.lagged
            assert [(await _next(slow))["seq"] for _ in range(2)] == [0, 1]
            assert not fast.lagged
    finally:
        await bus.aclose()


def test_publish_never_blocks_or_raises_when_the_outbox_is_full() -> None:
    async def main() -> int:
        bus = Bus()  # not started: nothing drains the outbox
        for i in range(10_005):
            bus.publish({"seq": i})
        return bus.dropped

    assert asyncio.run(main()) == 5


@pytest.mark.redis
async def test_redis_bus_carries_events_between_workers() -> None:
    channel = f"test:{secrets.token_hex(4)}"
    clients = [aioredis.from_url(REDIS) for _ in range(2)]
    worker_a, worker_b = (RedisBus(c, channel=channel) for c in clients)
    for bus in (worker_a, worker_b):
        await bus.start()
    try:
        await worker_a.wait_subscribed()
        await worker_b.wait_subscribed()
        with worker_b.subscribe() as on_b, worker_a.subscribe() as on_a:
            for i in range(3):
                worker_a.publish({"type": "turn", "seq": i, "text": f"hello {i}"})
            got_b = [await _next(on_b) for _ in range(3)]
            got_a = [await _next(on_a) for _ in range(3)]
        assert (
            got_b == got_a == [{"type": "turn", "seq": i, "text": f"hello {i}"} for i in range(3)]
        )
        # Another channel (another deployment on the same Redis) is not heard.
        other = RedisBus(clients[0], channel=channel + ":other")
        await other.start()
        try:
            await other.wait_subscribed()
            with other.subscribe() as elsewhere, worker_b.subscribe() as on_b:
                worker_a.publish({"seq": 100})
                assert (await _next(on_b))["seq"] == 100
                with pytest.raises(TimeoutError):
                    await _next(elsewhere, wait_s=0.3)
        finally:
            await other.aclose()
    finally:
        for bus in (worker_a, worker_b):
            await bus.aclose()
        for client in clients:
            await client.aclose()


@pytest.mark.redis
async def test_redis_bus_with_redis_down_starts_and_publish_does_not_raise() -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    bus = RedisBus(client, timeout_s=0.5)
    await bus.start()
    try:
        bus.publish({"seq": 1})
        with pytest.raises(TimeoutError):
            await bus.wait_subscribed(timeout_s=0.3)
        for _ in range(50):
            if bus.dropped:
                break
            await asyncio.sleep(0.05)
        assert bus.dropped == 1
    finally:
        await bus.aclose()
        await client.aclose()
