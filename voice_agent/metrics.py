"""Prometheus metrics: active calls, turns, per-stage latency, provider errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from voice_agent.heap import GcPauses, watch_pauses

# Turn stages are tens to thousands of ms; the server's own share is a few ms.
_STAGE_BUCKETS = (5, 10, 25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)
_SMALL_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 100, 250, 500)


class Metrics:
    """One registry per app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # livesum: with several workers (multiprocess mode) the live workers' calls add up.
        self.active_calls = Gauge(
            "voice_agent_active_calls", "Calls in progress", registry=r, multiprocess_mode="livesum"
        )
        #: 1 per serving worker; with several, one sample per pid (the scrape shows them all).
        self.worker_up = Gauge(
            "voice_agent_worker_up", "Worker serving", registry=r, multiprocess_mode="liveall"
        )
        self.worker_up.set(1)
        self.calls = Counter("voice_agent_calls", "Calls ended", ["reason"], registry=r)
        self.turns = Counter("voice_agent_turns", "Turns stored", ["role"], registry=r)
        self.stage_ms = Histogram(
            "voice_agent_turn_stage_ms",
            "Per-turn latency by stage (ms)",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.server_ms = Histogram(
            "voice_agent_server_share_ms",
            "Server's own share of turn latency (ms)",
            buckets=_SMALL_BUCKETS,
            registry=r,
        )
        self.greeting_ms = Histogram(
            "voice_agent_greeting_first_audio_ms",
            "Start message to first greeting audio (ms)",
            buckets=_SMALL_BUCKETS,
            registry=r,
        )
        self.clear_ms = Histogram(
            "voice_agent_clear_ms",
            "Caller speech onset to clear sent (ms)",
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "voice_agent_provider_errors", "Provider failures", ["stage"], registry=r
        )
        r.register(_GcCollector(watch_pauses()))
        r.register(_TaskCollector())
        self.malformed_frames = Counter(
            "voice_agent_malformed_frames", "Media Stream frames skipped as malformed", registry=r
        )
        # #16: Redis away: what fell back to this process, and whether it is back.
        self.redis_errors = Counter(
            "voice_agent_redis_errors",
            "Redis requests that failed; the part named ran in-process instead",
            ["part"],
            registry=r,
        )
        self.redis_up = Gauge("voice_agent_redis_up", "1 while Redis answers", registry=r)
        self.redis_up.set(1)
        self.stale_routes = Counter(
            "voice_agent_stale_routes",
            "Inbound calls routed from memory because the number lookup failed or overran",
            registry=r,
        )


class _GcCollector(Collector):
    """The garbage collector's pauses: each one stops every call's audio at once."""

    def __init__(self, pauses: GcPauses) -> None:
        self._pauses = pauses

    def collect(self) -> Iterator[Metric]:
        collections = CounterMetricFamily(
            "voice_agent_gc_collections", "Garbage collections", labels=["generation"]
        )
        pause = CounterMetricFamily(
            "voice_agent_gc_pause_ms",
            "Time stopped in garbage collection (ms)",
            labels=["generation"],
        )
        for generation in range(3):
            label = [str(generation)]
            collections.add_metric(label, self._pauses.collections[generation])
            pause.add_metric(label, self._pauses.pause_s[generation] * 1000.0)
        yield collections
        yield pause


class _TaskCollector(Collector):
    """The worker's asyncio tasks: after calls end it falls back to its idle count, or a
    task is left behind (the load generator's leak check reads it, #16)."""

    def collect(self) -> Iterator[Metric]:
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # scraped from outside the event loop (a test's registry)
            return
        yield GaugeMetricFamily("voice_agent_asyncio_tasks", "asyncio tasks alive", value=tasks)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def exposition(registry: CollectorRegistry) -> bytes:
    """/metrics: this worker's registry, or, when uvicorn runs several workers
    (PROMETHEUS_MULTIPROC_DIR, set by ``voice-agent serve``), every worker's samples added
    up from the shared directory, whichever worker answers the scrape."""
    if not os.environ.get(MULTIPROC_ENV):
        return generate_latest(registry)
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return generate_latest(merged)


def worker_exited() -> None:
    """A worker's live gauges stop counting once it is gone."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())


def prepare_multiprocess_dir(path: str | None = None) -> str:
    """An empty directory for the workers' metric files (stale ones would add up too)."""
    import tempfile

    directory = path or tempfile.mkdtemp(prefix="voice-agent-metrics-")
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))
    return directory
