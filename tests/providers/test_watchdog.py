"""StallWatchdog: one timer per stream that still bounds every single wait."""

from __future__ import annotations

import asyncio

import pytest

from voice_agent.providers.watchdog import StallWatchdog

LIMIT_S = 0.05


async def test_a_wait_longer_than_the_limit_raises_timeout_in_time() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with StallWatchdog(LIMIT_S) as dog:
            dog.waiting()
            await asyncio.sleep(10)
    assert loop.time() - started < 2.0


async def test_many_short_waits_adding_up_past_the_limit_are_fine() -> None:
    waits = 0
    async with StallWatchdog(LIMIT_S) as dog:
        for _ in range(12):  # 12 x 10 ms: well past one limit in all
            dog.waiting()
            await asyncio.sleep(LIMIT_S / 5)
            dog.arrived()
            waits += 1
    assert waits == 12


async def test_a_stall_after_good_chunks_is_caught() -> None:
    received = []
    with pytest.raises(TimeoutError):
        async with StallWatchdog(LIMIT_S) as dog:
            for delay in (0.01, 0.01, 10.0):
                dog.waiting()
                await asyncio.sleep(delay)
                dog.arrived()
                received.append(delay)
    assert received == [0.01, 0.01]


async def test_time_between_waits_is_never_counted_nor_interrupted() -> None:
    async with StallWatchdog(LIMIT_S) as dog:
        dog.waiting()
        await asyncio.sleep(0)
        dog.arrived()
        # The consumer's own slow await (a congested socket, say) is not the peer's stall.
        await asyncio.sleep(LIMIT_S * 4)
        dog.waiting()
        await asyncio.sleep(0)
        dog.arrived()


async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    entered = asyncio.Event()

    async def stream() -> None:
        async with StallWatchdog(LIMIT_S * 20) as dog:
            dog.waiting()
            entered.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(stream())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_the_timer_is_gone_after_the_block() -> None:
    async with StallWatchdog(LIMIT_S) as dog:
        dog.waiting()
        await asyncio.sleep(0)
        dog.arrived()
    # Armed again after the block, a leftover timer would cancel this task.
    dog.waiting()
    await asyncio.sleep(LIMIT_S * 3)
