"""The report's arithmetic: nearest-rank percentiles, histogram quantiles from real
Prometheus text (as the server exposes it), and /proc readings of a process tree."""

from __future__ import annotations

import os
import subprocess
import sys

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from loadtest import procstat, promtext
from loadtest.report import gaps_in_stalls
from loadtest.runner import CallFigures, RunState
from loadtest.stats import percentile, summary


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert summary(reversed(values)) == {
        "n": 100,
        "p50": 50.0,
        "p95": 95.0,
        "p99": 99.0,
        "max": 100.0,
    }
    assert summary([]) == {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}


def _exposed(observations: list[float], registry: CollectorRegistry, hist: Histogram) -> str:
    for value in observations:
        hist.observe(value)
    return generate_latest(registry).decode()


def test_histogram_delta_and_quantiles_from_prometheus_text() -> None:
    registry = CollectorRegistry()
    hist = Histogram("share_ms", "x", buckets=(1, 5, 10, 50), registry=registry)
    errors = Counter("errors", "x", ["stage"], registry=registry)
    before = promtext.parse(_exposed([100.0] * 10, registry, hist))  # earlier traffic
    errors.labels("stt").inc(2)
    after = promtext.parse(_exposed([2.0] * 90 + [20.0] * 10, registry, hist))
    run = after.histogram("share_ms").minus(before.histogram("share_ms"))
    assert run.count == 100
    p50, p99 = run.quantile(0.5), run.quantile(0.99)
    assert p50 is not None and 1 < p50 <= 5  # in the bucket holding the median
    assert p99 is not None and 10 < p99 <= 50
    assert run.summary()["max_le"] == 50  # the 100 ms values were before the run
    assert after.counter_delta(before) == {'errors{stage="stt"}': 2.0}
    # Everything beyond the last finite bucket: the estimate is that bound, not infinity.
    beyond = after.histogram("share_ms")
    assert beyond.quantile(1.0) == 50 and beyond.summary()["max_le"] is None


def test_process_tree_usage_includes_children() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(64 << 20); time.sleep(30)"]
    )
    try:
        assert child.pid in procstat.tree(os.getpid())
        mine = procstat.usage(os.getpid())
        assert mine is not None and mine.processes >= 2 and mine.cpu_s > 0
    finally:
        child.kill()
        child.wait()
    assert procstat.usage(child.pid) is None


def test_open_file_descriptors_are_counted() -> None:
    before = procstat.usage(os.getpid())
    files = [open(os.devnull, "rb") for _ in range(5)]
    try:
        during = procstat.usage(os.getpid())
    finally:
        for file in files:
            file.close()
    assert before is not None and during is not None
    assert during.open_fds - before.open_fds == 5


def test_gauges_are_read_from_prometheus_text() -> None:
    registry = CollectorRegistry()
    Gauge("voice_agent_asyncio_tasks", "x", registry=registry).set(7)
    Gauge("up", "x", ["worker"], registry=registry).labels("2").set(1)
    scrape = promtext.parse(generate_latest(registry).decode())
    assert scrape.gauge("voice_agent_asyncio_tasks") == 7
    assert scrape.gauge("up", worker="2") == 1
    assert scrape.gauge("up") is None


def _call_with_gaps(gaps: list[tuple[float, float]]) -> CallFigures:
    """gaps as (perf_counter at the gap's end, gap ms)."""
    return CallFigures(
        0, "CA1", 0.0, 1.0, 2.0, [], [ms for _, ms in gaps], [end for end, _ in gaps], None
    )


def test_gaps_covered_by_a_load_generator_stall_are_counted_apart() -> None:
    state = RunState()
    state.calls = [
        _call_with_gaps([(10.040, 40.0), (20.030, 30.0)]),
        _call_with_gaps([(30.050, 50.0)]),
    ]
    state.loop_stalls = [
        (10.045, 35.0),  # 10.010-10.045: covers 30 of the first gap's 40 ms
        (20.100, 20.0),  # 20.080-20.100: after the second gap ended
        (30.010, 8.0),  # 30.002-30.010: only 8 of the third gap's 50 ms
    ]

    assert gaps_in_stalls(state) == 1
