"""Start-up's heap is frozen out of the collector's way, and so is what survives while calls
are up; frozen cycles are still reclaimed; collection pauses are on /metrics."""

from __future__ import annotations

import asyncio
import gc
import weakref

import httpx

from loadtest import promtext
from tests.app.conftest import Served
from voice_agent.heap import HeapKeeper


async def test_startup_heap_is_frozen_and_collections_are_counted(served: Served) -> None:
    # The app's lifespan froze what start-up built: full collections no longer walk it.
    assert gc.get_freeze_count() > 10_000

    before = served.metric("voice_agent_gc_collections_total", generation="2")
    paused = served.metric("voice_agent_gc_pause_ms_total", generation="2")
    gc.collect()
    assert served.metric("voice_agent_gc_collections_total", generation="2") == before + 1
    assert served.metric("voice_agent_gc_pause_ms_total", generation="2") > paused

    async with httpx.AsyncClient() as http:
        page = (await http.get(served.settings.public_base_url + "/metrics")).text
    for generation in "012":
        assert f'voice_agent_gc_collections_total{{generation="{generation}"}}' in page
        assert f'voice_agent_gc_pause_ms_total{{generation="{generation}"}}' in page


class _Node:
    """A reference cycle the collector alone can free (it points at itself)."""

    def __init__(self) -> None:
        self.me = self


def _frozen_cycle(keeper: HeapKeeper) -> weakref.ref[_Node]:
    """A cycle that was alive when `keeper` froze survivors, and is garbage now."""
    node = _Node()
    ref = weakref.ref(node)
    keeper.tick()
    del node
    gc.collect()
    return ref


def test_survivors_are_frozen_while_calls_are_up() -> None:
    keeper = HeapKeeper(lambda: 3)
    kept = [_Node() for _ in range(100)]
    before = gc.get_freeze_count()
    keeper.tick()
    assert gc.get_freeze_count() >= before + len(kept)
    # Frozen objects still go when their last reference does: only cycles wait.
    ref = weakref.ref(kept[0])
    kept[0].me = None
    del kept[0]
    assert ref() is None


def test_a_frozen_cycle_is_collected_once_no_call_is_up() -> None:
    calls = 1
    keeper = HeapKeeper(lambda: calls)
    ref = _frozen_cycle(keeper)
    assert ref() is not None  # out of the collector's sight while calls run
    keeper.tick()
    assert ref() is not None and keeper.reclaims == 0
    calls = 0
    keeper.tick()
    assert ref() is None
    assert keeper.reclaims == 1
    assert gc.get_freeze_count() > 0  # the survivors are frozen again
    keeper.tick()  # nothing frozen since: an idle server is left alone
    assert keeper.reclaims == 1


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_under_load_frozen_cycles_wait_until_the_frozen_objects_have_grown() -> None:
    frozen, clock, counted = [10_000], _Clock(), [0]

    def count() -> int:
        counted[0] += 1
        return frozen[0]

    keeper = HeapKeeper(
        lambda: 200, reclaim_growth=5_000, check_every_s=60.0, frozen=count, clock=clock
    )
    ref = _frozen_cycle(keeper)
    frozen[0] = 15_000
    keeper.tick()
    # Grown enough, but the count (a walk over every frozen object) is read once a minute.
    assert ref() is not None and keeper.reclaims == 0 and counted[0] == 1
    clock.now += 60.0
    keeper.tick()
    assert ref() is None
    assert keeper.reclaims == 1
    # The count after the pass is the new baseline: no pass again until it grows as much.
    clock.now += 60.0
    keeper.tick()
    assert keeper.reclaims == 1
    frozen[0] = 19_999
    clock.now += 60.0
    keeper.tick()
    assert keeper.reclaims == 1
    frozen[0] = 20_000
    clock.now += 60.0
    keeper.tick()
    assert keeper.reclaims == 2


async def test_asyncio_tasks_are_on_metrics(served: Served) -> None:
    # The server runs on this loop: tasks started here are among those it counts.
    async def scraped() -> float | None:
        async with httpx.AsyncClient() as http:
            page = (await http.get(served.settings.public_base_url + "/metrics")).text
        return promtext.parse(page).gauge("voice_agent_asyncio_tasks")

    idle = await scraped()
    parked = [asyncio.create_task(asyncio.Event().wait()) for _ in range(25)]
    try:
        busy = await scraped()
    finally:
        for task in parked:
            task.cancel()
        await asyncio.gather(*parked, return_exceptions=True)
    assert idle is not None and busy is not None
    assert busy - idle >= 25
    assert await scraped() == idle
