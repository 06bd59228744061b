"""Prometheus multiprocess mode: `voice-agent serve --workers 2` answers /metrics from
whichever worker the scrape reaches with every worker's samples added up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from loadtest.fixtures import Utterance
from tests.calls.cascade_support import metric
from tests.deploy.processes import ServerProcess, wait_for
from tests.deploy.test_drain import start_call

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def test_metrics_add_up_across_workers(
    servers: Callable[..., ServerProcess], utterances: dict[str, Utterance]
) -> None:
    server = servers(workers=2, redis_url="redis://127.0.0.1:6379/0")
    await server.ready()
    calls = 4
    for _ in range(calls):  # new connections: the kernel spreads them over the workers
        line = await start_call(server, server.env["PUBLIC_BASE_URL"])
        await wait_for(lambda line=line: len(line.agent_audio) > 4000, 10, "the greeting")
        await line.hang_up()
    async with httpx.AsyncClient(timeout=5.0) as http:
        for _ in range(40):
            texts = []
            for _ in range(6):  # a fresh connection each: scrapes land on both workers
                async with httpx.AsyncClient(timeout=5.0) as fresh:
                    texts.append((await fresh.get(server.base_url + "/metrics")).text)
            ended = [metric(t, "voice_agent_calls_total", reason="caller-hangup") for t in texts]
            if ended == [calls] * len(texts):
                break
            await asyncio.sleep(0.25)
        else:
            raise AssertionError(f"per-scrape totals {ended}, wanted {calls} on every scrape")
        text = (await http.get(server.base_url + "/metrics")).text
    # One scrape, both workers: a sample per live worker's pid.
    assert text.count("voice_agent_worker_up{pid=") == 2, text
    assert metric(text, "voice_agent_active_calls") == 0
    assert metric(text, "voice_agent_greeting_first_audio_ms_count") == calls
