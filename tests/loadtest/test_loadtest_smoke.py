"""`voice-agent loadtest` end to end, CI-sized: a few calls through a server it starts
itself (cascade pipeline against the OpenAI stand-in). Checks the report's shape and
that no call failed; the figures themselves are for benchmarks, not pass/fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

CLI = Path(sys.executable).with_name("voice-agent")
FIGURE_KEYS = {"n", "p50", "p95", "p99", "max"}
SERVER_KEYS = {"n", "p50", "p95", "p99", "max_le", "mean"}


def loadtest(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [str(CLI), "loadtest", "--no-progress", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    folder = tmp_path_factory.mktemp("loadtest")
    script = folder / "script.json"
    script.write_bytes(
        orjson.dumps(
            [
                {"say": "greeting_reply"},
                {"say": "need", "barge_in_after_ms": 600},
                {"say": "goodbye"},
            ]
        )
    )
    fast = ["--stt-ms=50", "--llm-first-token-ms=50", "--llm-token-ms=2", "--tts-first-byte-ms=40"]
    done = loadtest(
        [
            "--calls=3",
            "--ramp=1",
            f"--script={script}",
            "--json=report.json",
            "--plot=plot.html",
            *fast,
        ],
        folder,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return orjson.loads((folder / "report.json").read_bytes()), folder, done.stderr


def test_no_call_failed(smoke: tuple[dict[str, Any], Path, str]) -> None:
    report, _, _ = smoke
    calls = report["calls"]
    assert calls["failures"] == []
    assert (calls["started"], calls["completed"], calls["failed"]) == (3, 3, 0)
    assert calls["turns"] == 9 and calls["barge_ins"] == 3


def test_report_has_every_figure_as_percentiles(smoke: tuple[dict[str, Any], Path, str]) -> None:
    report, _, _ = smoke
    figures = report["figures"]
    for key in (
        "greeting_first_audio_ms",
        "turn_latency_ms",
        "turn_excess_ms",
        "clear_ms",
        "outbound_gap_ms",
        "server_cpu_per_call_pct",
        "server_rss_per_call_mb",
    ):
        assert set(figures[key]) == FIGURE_KEYS, key
        assert key in report["method"], key
    assert figures["greeting_first_audio_ms"]["n"] == 3
    assert figures["turn_latency_ms"]["n"] == 9
    assert figures["clear_ms"]["n"] == 3  # each barge-in silenced the agent
    assert figures["server_cpu_per_call_pct"]["n"] > 0  # read from the server's /proc
    # The server's own view, from /metrics deltas over the run.
    assert set(figures["server_share_ms"]) == SERVER_KEYS
    assert figures["server_share_ms"]["n"] == report["server_histograms"]["stt_ms"]["n"] > 0
    for stage in (
        "endpointing_ms",
        "stt_ms",
        "llm_first_token_ms",
        "tts_first_byte_ms",
        "greeting_first_audio_ms",
        "clear_ms",
    ):
        assert set(report["server_histograms"][stage]) == SERVER_KEYS, stage
    assert report["server_counters"]['voice_agent_calls{reason="agent-hangup"}'] == 3


def test_report_records_load_and_timeline(smoke: tuple[dict[str, Any], Path, str]) -> None:
    report, _, _ = smoke
    assert report["samples"] and set(report["samples"][0]) == {
        "t_s",
        "active",
        "done",
        "server_cpu_pct",
        "server_rss_mb",
        "loadgen_cpu_pct",
        "loop_lag_ms",
    }
    kinds = {kind for kind, _t, _ms in report["events"]}
    assert kinds == {"greeting", "turn", "clear"}
    assert set(report["load_generator"]["loop_lag_ms"]) == FIGURE_KEYS
    assert report["server"]["idle_rss_mb"] is not None
    assert report["config"]["calls"] == 3 and "auth_token" not in report["config"]


def test_table_and_plot_written(smoke: tuple[dict[str, Any], Path, str]) -> None:
    _, folder, stderr = smoke
    assert "turn_latency_ms" in stderr and "3 calls" in stderr
    html = (folder / "plot.html").read_text()
    assert html.count("<svg") == 2 and "Latency over time" in html


def test_bad_options_exit_2_naming_them(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"say": "nonsense"}]')
    for args, named in (
        (["--barge-in-rate=1.5"], "--barge-in-rate"),
        (["--calls=0"], "--calls"),
        ([f"--script={bad}"], "'say'"),
        (["--script=nowhere"], "--script"),
        (["--workers=2"], "--redis-url"),
        (["--stt-ms=-1"], "--stt-ms"),
    ):
        done = loadtest(args, tmp_path, timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        assert named in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_unreachable_target_fails_every_call(tmp_path: Path) -> None:
    done = loadtest(
        ["--target=http://127.0.0.1:9", "--calls=2", "--script=short", "--json=r.json"],
        tmp_path,
        timeout=60,
    )
    assert done.returncode == 1
    report = orjson.loads((tmp_path / "r.json").read_bytes())
    assert report["calls"]["failed"] == 2
    assert all("voice webhook" in f["reason"] for f in report["calls"]["failures"])
    assert report["server_histograms"] == {}
