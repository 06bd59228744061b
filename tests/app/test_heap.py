"""Start-up's heap is frozen out of the collector's way; its pauses are on /metrics."""

from __future__ import annotations

import gc

import httpx

from tests.app.conftest import Served


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
