"""Nothing left behind: many whole calls with random provider faults (the stand-in's
fault_rate: 500s, 429s, hangs, stalled first tokens, streams cut) and caller-side faults
(sockets cut mid-call without `stop`), then the server's own tasks, file descriptors,
RSS and tracemalloc are counted against the same counts after a warm-up.

The figures are printed (pytest -s) for docs/reliability-faults.md."""

from __future__ import annotations

import asyncio
import gc
import os
import random
import tracemalloc
from collections import deque
from collections.abc import Callable

import httpx

from loadtest.caller import CallerTurn, place_call
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import StandinOpenAI
from tests.calls.cascade_support import short_responder
from tests.conftest import TWILIO_TOKEN
from voice_agent.demo import running_server
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings

BATCH = 10
WARM_BATCHES = 2
MEASURED_BATCHES = 6
FAULT_RATE = 0.25
#: Share of calls whose caller's socket is cut mid-call (no `stop`).
CUT_RATE = 0.2


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _server_tasks() -> int:
    """Tasks of the server's calls (sessions, taps, sockets) still alive."""
    names = ("CallSession", "CallTap", "MediaStreamEndpoint", "TwilioLine", "Speaker")
    return sum(
        1
        for task in asyncio.all_tasks()
        if any(n in getattr(task.get_coro(), "__qualname__", "") for n in names)
    )


async def _calls(
    settings: Settings,
    runtime: Runtime,
    turns: list[CallerTurn],
    rng: random.Random,
    http: httpx.AsyncClient,
) -> tuple[int, int]:
    """One batch of simultaneous calls; returns (completed, cut by the caller)."""

    async def one() -> bool:
        call = place_call(
            settings.public_base_url,
            turns,
            auth_token=TWILIO_TOKEN,
            hangup_wait_s=1.0,
            reply_timeout_s=12.0,
            http=http,
            keep_audio=False,
        )
        if rng.random() < CUT_RATE:
            try:
                # Cancelled mid-call: the caller's socket goes without a stop.
                await asyncio.wait_for(call, rng.uniform(1.0, 5.0))
            except TimeoutError:
                return False
            return True
        await call
        return True

    done = await asyncio.gather(*(one() for _ in range(BATCH)))
    await asyncio.sleep(0.5)
    for _ in range(100):  # every session ended (the cut ones at their socket's close)
        if not runtime.live_calls:
            break
        await asyncio.sleep(0.1)
    assert not runtime.live_calls
    assert await runtime.writes.flush(10.0)
    return sum(done), BATCH - sum(done)


async def test_many_calls_with_random_faults_leave_nothing_behind(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
) -> None:
    standin.responder = short_responder
    standin.requests = deque(maxlen=1)  # the stand-in lives in this process: keep nothing
    standin.fault_rate = FAULT_RATE
    settings = cascade_settings(provider_stall_s=1.0, provider_breaker_open_s=1.0)
    turns = [CallerTurn(utterances["need"]), CallerTurn(utterances["hours"])]
    rng = random.Random(16)
    async with running_server(settings) as runtime, httpx.AsyncClient() as http:
        for _ in range(WARM_BATCHES):
            await _calls(settings, runtime, turns, rng, http)
        gc.collect()
        tasks0, fds0, rss0 = _server_tasks(), _fds(), _rss_mb()
        tracemalloc.start(5)
        before = tracemalloc.take_snapshot()
        completed = cut = 0
        for _ in range(MEASURED_BATCHES):
            done, dropped = await _calls(settings, runtime, turns, rng, http)
            completed += done
            cut += dropped
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        tasks1, fds1, rss1 = _server_tasks(), _fds(), _rss_mb()
        stats = after.compare_to(before, "filename")
        growth = sum(s.size_diff for s in stats)
        stored = runtime.writes.written
        faults = sum(standin.faults.values())
    calls = BATCH * MEASURED_BATCHES
    print(
        f"\nfault leak check: {calls} measured calls ({completed} completed, {cut} cut by the"
        f" caller), {faults} provider faults injected in all; server tasks {tasks0} -> {tasks1},"
        f" fds {fds0} -> {fds1}, RSS {rss0:.1f} -> {rss1:.1f} MB, tracemalloc growth"
        f" {growth / 1024:.0f} KiB ({growth / calls / 1024:.1f} KiB per call);"
        f" records written {stored}"
    )
    for stat in stats[:5]:
        print("  ", stat)
    assert faults >= calls // 4  # the faults really happened, several per batch
    assert tasks1 == tasks0 == 0
    assert fds1 <= fds0 + 8  # pooled keep-alive connections may differ by a few
    assert growth < 2 * 2**20, growth
    assert rss1 - rss0 < 30, (rss0, rss1)
