"""The report of a run: one JSON-ready dict, and its terminal table."""

from __future__ import annotations

import os
from typing import Any

from rich.table import Table

from loadtest.promtext import Scrape
from loadtest.runner import LeakCheck, RunOptions, RunState
from loadtest.scenario import Scenario
from loadtest.stats import summary

#: Server-side histograms read from /metrics: report key -> (metric, labels).
_SERVER_HISTOGRAMS: dict[str, tuple[str, dict[str, str]]] = {
    "server_share_ms": ("voice_agent_server_share_ms", {}),
    "endpointing_ms": ("voice_agent_turn_stage_ms", {"stage": "endpointing"}),
    "stt_ms": ("voice_agent_turn_stage_ms", {"stage": "stt"}),
    "llm_first_token_ms": ("voice_agent_turn_stage_ms", {"stage": "llm_first_token"}),
    "tts_first_byte_ms": ("voice_agent_turn_stage_ms", {"stage": "tts_first_byte"}),
    "turn_total_ms": ("voice_agent_turn_stage_ms", {"stage": "total"}),
    "greeting_first_audio_ms": ("voice_agent_greeting_first_audio_ms", {}),
    "clear_ms": ("voice_agent_clear_ms", {}),
}

#: What the issue asks of 200 concurrent calls on one core (reported beside the figures).
TARGETS = {
    "server_share_ms": {"p50": 10.0, "p99": 30.0},
    "greeting_first_audio_ms": {"p99": 100.0},
    "clear_ms": {"p99": 250.0},
    "server_rss_per_call_mb": {"max": 10.0},
}

METHOD = {
    "greeting_first_audio_ms": "caller side: Media Stream `start` sent to the first agent "
    "audio received",
    "greeting_new_caller_ms": "greeting_first_audio_ms of calls from a number not seen before",
    "greeting_repeat_caller_ms": "greeting_first_audio_ms of calls from the number of an "
    "earlier finished call (--known-callers): the server may greet them by name",
    "turn_latency_ms": "caller side: end of the caller's speech (fixture label) to the "
    "first agent audio of the reply",
    "turn_excess_ms": "caller side: turn latency less the endpointing window and the "
    "stand-ins' set latencies (STT, LLM first token + tokens to the end of the first "
    "sentence, TTS first byte). Includes loopback transport, both processes' loop delays "
    "and the VAD's placement of the speech end (a few tens of ms either way), so it is a "
    "cross-check, not the server share",
    "server_share_ms": "server side (/metrics histogram voice_agent_server_share_ms, "
    "delta over the run, quantiles interpolated within buckets): per turn, total less "
    "endpointing, STT, LLM to first sentence and TTS first byte as the server timed them",
    "clear_ms": "caller side: the caller's speech onset (fixture label) to the `clear` received",
    "outbound_gap_ms": "caller side: silences inside one reply, where the caller's "
    "real-time playback ran out of agent audio and more of the same reply came later; "
    "calls.outbound_gaps_in_load_generator_stalls counts those at least half covered by a "
    "stall of the load generator's own loop (past 5 ms), which may not be the server's",
    "server_cpu_per_call_pct": "/proc/<pid>/stat of the server's process tree, once a "
    "second: % of one core over the interval, divided by calls in progress (samples with "
    "at least half the callers on the line)",
    "server_rss_per_call_mb": "/proc/<pid>/statm, once a second: RSS above the idle "
    "server's, divided by calls in progress (samples with at least half the callers on the "
    "line)",
}


def gaps_in_stalls(state: RunState) -> int:
    """Gaps at least half covered by a stall of the load generator's own loop: its callers'
    playback clock ran on while nothing read the socket, so the line can look dry when the
    audio was in fact there. Such a gap may not be the server's."""
    counted = 0
    for call in state.calls:
        for ended, ms in zip(call.gap_ends, call.gaps_ms, strict=True):
            started = ended - ms / 1000
            for woke, lag_ms in state.loop_stalls:
                overlap = min(woke, ended) - max(woke - lag_ms / 1000, started)
                if overlap >= ms / 2000:
                    counted += 1
                    break
    return counted


def build(
    options: RunOptions,
    scenario: Scenario,
    state: RunState,
    before: Scrape | None,
    after: Scrape | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    turns = [t for call in state.calls for t in call.turns]
    gaps = [g for call in state.calls for g in call.gaps_ms]
    # Per-call shares are taken while at least half the callers are on the line: during
    # the ramp and the tail, the server's fixed costs would be split over a handful.
    busy = [s for s in state.samples if s.active > 0 and 2 * s.active >= options.calls]
    idle_rss = state.idle_rss_mb
    figures: dict[str, Any] = {
        "greeting_first_audio_ms": summary(
            c.greeting_ms for c in state.calls if c.greeting_ms is not None
        ),
        # Split by caller memory (--known-callers): repeat callers may hear a greeting by name.
        "greeting_new_caller_ms": summary(
            c.greeting_ms for c in state.calls if c.greeting_ms is not None and not c.repeat
        ),
        "greeting_repeat_caller_ms": summary(
            c.greeting_ms for c in state.calls if c.greeting_ms is not None and c.repeat
        ),
        "turn_latency_ms": summary(t.reply_ms for t in turns if t.reply_ms is not None),
        "turn_excess_ms": summary(t.excess_ms for t in turns if t.excess_ms is not None),
        "clear_ms": summary(t.clear_ms for t in turns if t.clear_ms is not None),
        "outbound_gap_ms": summary(gaps),
        "server_cpu_per_call_pct": summary(
            s.server_cpu_pct / s.active for s in busy if s.server_cpu_pct is not None
        ),
        "server_rss_per_call_mb": summary(
            (s.server_rss_mb - idle_rss) / s.active
            for s in busy
            if s.server_rss_mb is not None and idle_rss is not None
        ),
    }
    server: dict[str, Any] = {}
    if after is not None:
        for key, (metric, labels) in _SERVER_HISTOGRAMS.items():
            histogram = after.histogram(metric, **labels)
            if histogram is not None:
                earlier = before.histogram(metric, **labels) if before else None
                server[key] = histogram.minus(earlier).summary()
        figures["server_share_ms"] = server.get("server_share_ms")
    failures = [{"call_sid": c.call_sid, "reason": c.failure} for c in state.calls if c.failure]
    lags = summary(state.loop_lags_ms)
    report: dict[str, Any] = {
        "config": config,
        "environment": {
            "cpus": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "calls": {
            "started": state.started,
            "completed": state.done - state.failed,
            "failed": state.failed,
            "peak_concurrent": max((s.active for s in state.samples), default=state.started),
            "turns": len(turns),
            "barge_ins": sum(1 for t in turns if t.barge_in),
            "outbound_gaps": len(gaps),
            "outbound_gaps_in_load_generator_stalls": gaps_in_stalls(state),
            "calls_with_gaps": sum(1 for c in state.calls if c.gaps_ms),
            "failures": failures[:50],
        },
        "figures": figures,
        "server_histograms": server,
        "server_counters": after.counter_delta(before) if after is not None else {},
        "server": {
            "idle_rss_mb": None if idle_rss is None else round(idle_rss, 2),
            "peak_rss_mb": max(
                (s.server_rss_mb for s in state.samples if s.server_rss_mb is not None),
                default=None,
            ),
            "leak_check": None if state.leak is None else _leak_check(state.leak),
        },
        "load_generator": {
            "elapsed_s": round(state.elapsed_s, 3),
            "cpu_s": round(state.loadgen_cpu_s, 3),
            "cpu_pct": round(100 * state.loadgen_cpu_s / state.elapsed_s, 2)
            if state.elapsed_s
            else None,
            "loop_lag_ms": lags,
            # Past this, the callers' 20 ms clock slipped and caller-side figures are suspect.
            "saturated": bool(lags["p99"] is not None and lags["p99"] > 10.0),
        },
        "targets": TARGETS,
        "method": METHOD,
        "samples": [
            {
                "t_s": s.t_s,
                "active": s.active,
                "done": s.done,
                "server_cpu_pct": s.server_cpu_pct,
                "server_rss_mb": s.server_rss_mb,
                "loadgen_cpu_pct": s.loadgen_cpu_pct,
                "loop_lag_ms": s.loop_lag_ms,
            }
            for s in state.samples
        ],
        "events": sorted(
            [
                ["greeting", round(c.started_s, 3), round(c.greeting_ms, 2)]
                for c in state.calls
                if c.greeting_ms is not None
            ]
            + [
                ["turn", round(t.at_s, 3), round(t.reply_ms, 2)]
                for t in turns
                if t.reply_ms is not None
            ]
            + [
                ["clear", round(t.at_s, 3), round(t.clear_ms, 2)]
                for t in turns
                if t.clear_ms is not None
            ],
            key=lambda e: e[1],
        ),
    }
    return report


def _leak_check(leak: LeakCheck) -> dict[str, Any]:
    """The server with no call in progress, after the first calls and at the end: what
    grew between the two is what the calls in between left behind."""
    end = leak.end
    fields = ("rss_mb", "open_fds", "asyncio_tasks")
    at = {
        str(leak.calls_at_baseline): {f: getattr(leak.baseline, f) for f in fields},
        str(leak.calls_at_end): None if end is None else {f: getattr(end, f) for f in fields},
    }
    growth: dict[str, float | None] = {}
    for name in fields:
        before = getattr(leak.baseline, name)
        after = None if end is None else getattr(end, name)
        growth[name] = None if before is None or after is None else round(after - before, 2)
    return {"after_calls": at, "growth": growth}


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}" if value < 1000 else f"{value:.0f}"
    return str(value)


def table(report: dict[str, Any]) -> Table:
    calls = report["calls"]
    title = (
        f"{calls['started']} calls ({calls['peak_concurrent']} at once), "
        f"{calls['failed']} failed, {calls['turns']} turns, {calls['barge_ins']} barge-ins, "
        f"{calls['outbound_gaps']} gaps ({calls['outbound_gaps_in_load_generator_stalls']} in "
        "the load generator's own stalls)"
    )
    out = Table(title=title)
    out.add_column("figure", style="bold")
    for column in ("n", "p50", "p95", "p99", "max"):
        out.add_column(column, justify="right")
    out.add_column("target", justify="right", style="dim")
    for key, figure in report["figures"].items():
        if figure is None:
            continue
        target = report["targets"].get(key, {})
        maximum = figure.get("max", figure.get("max_le"))
        out.add_row(
            key + (" ⓢ" if "max_le" in figure else ""),
            _cell(figure["n"]),
            _cell(figure["p50"]),
            _cell(figure["p95"]),
            _cell(figure["p99"]),
            ("≤" if "max_le" in figure and maximum is not None else "") + _cell(maximum),
            " ".join(f"{k}≤{v:g}" for k, v in target.items()),
        )
    return out
