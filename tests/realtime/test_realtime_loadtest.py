"""`voice-agent loadtest --pipeline=realtime`, CI-sized: a server on the realtime pipeline
against the Realtime stand-in, a few calls with a barge-in; no call fails and the report
carries the realtime figures."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.loadtest.test_loadtest_smoke import loadtest


def test_loadtest_runs_on_the_realtime_standin(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_bytes(
        orjson.dumps(
            [
                {"say": "greeting_reply"},
                {"say": "need", "barge_in_after_ms": 600},
                {"say": "goodbye"},
            ]
        )
    )
    done = loadtest(
        [
            "--calls=2",
            f"--script={script}",
            "--pipeline=realtime",
            "--realtime-response-ms=200",
            "--json=report.json",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = orjson.loads((tmp_path / "report.json").read_bytes())
    assert report["config"]["pipeline"] == "realtime"
    assert report["calls"]["failed"] == 0
    figures = report["figures"]
    assert figures["greeting_first_audio_ms"]["n"] == 2
    assert figures["clear_ms"]["n"] == 2
    turns = figures["turn_latency_ms"]
    # The stand-in's set latency plus the endpointing window: 200 + 500 ms at least.
    assert turns["n"] >= 4 and turns["p50"] >= 650, turns
    # Every reply heard whole has its server share (a cut one has no breakdown).
    assert figures["server_share_ms"]["n"] >= 4
