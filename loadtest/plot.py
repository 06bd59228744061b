"""A self-contained HTML page (inline SVG, no scripts, no dependencies) plotting a run:
every greeting, turn and clear latency over time with per-bucket p50/p99 lines, and
the calls in progress beside the server's CPU."""

from __future__ import annotations

import html
import math
from typing import Any

from loadtest.stats import percentile

_W, _H, _PAD = 900, 320, 50
_COLOURS = {"greeting": "#2b8a3e", "turn": "#1971c2", "clear": "#e8590c"}


def _scale(lo: float, hi: float, out_lo: float, out_hi: float):  # type: ignore[no-untyped-def]
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def _axes(x_max: float, y_max: float, y_label: str) -> list[str]:
    parts = [
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - 10}" y2="{_H - _PAD}" stroke="#333"/>',
        f'<line x1="{_PAD}" y1="10" x2="{_PAD}" y2="{_H - _PAD}" stroke="#333"/>',
        f'<text x="{_W / 2}" y="{_H - 12}" text-anchor="middle">seconds into the run</text>',
        f'<text x="14" y="{_H / 2}" transform="rotate(-90 14 {_H / 2})" '
        f'text-anchor="middle">{html.escape(y_label)}</text>',
    ]
    sx = _scale(0, x_max, _PAD, _W - 10)
    sy = _scale(0, y_max, _H - _PAD, 10)
    for i in range(6):
        xv, yv = x_max * i / 5, y_max * i / 5
        parts.append(
            f'<text x="{sx(xv):.1f}" y="{_H - _PAD + 16}" text-anchor="middle" '
            f'font-size="11">{xv:.0f}</text>'
        )
        parts.append(
            f'<text x="{_PAD - 4}" y="{sy(yv) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{yv:.0f}</text>'
        )
        parts.append(
            f'<line x1="{_PAD}" y1="{sy(yv):.1f}" x2="{_W - 10}" y2="{sy(yv):.1f}" stroke="#eee"/>'
        )
    return parts


def _polyline(points: list[tuple[float, float]], colour: str, dash: str = "") -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{extra}/>'


def latency_svg(events: list[list[Any]], bucket_s: float = 5.0) -> str:
    x_max = max((e[1] for e in events), default=1.0) or 1.0
    values = sorted(e[2] for e in events)
    # The top of the axis is the p99.5 of everything: one stray point must not flatten it.
    y_max = max(1.0, percentile(values, 0.995) * 1.1) if values else 1.0
    sx = _scale(0, x_max, _PAD, _W - 10)
    sy = _scale(0, y_max, _H - _PAD, 10)
    parts = _axes(x_max, y_max, "latency (ms)")
    for kind, t, ms in events:
        parts.append(
            f'<circle cx="{sx(t):.1f}" cy="{sy(min(ms, y_max)):.1f}" r="1.6" '
            f'fill="{_COLOURS.get(kind, "#555")}" fill-opacity="0.5"/>'
        )
    buckets: dict[int, list[float]] = {}
    for kind, t, ms in events:
        if kind == "turn":
            buckets.setdefault(int(t // bucket_s), []).append(ms)
    for q, dash in ((0.5, ""), (0.99, "6 4")):
        line = [
            (sx((b + 0.5) * bucket_s), sy(min(y_max, percentile(sorted(v), q))))
            for b, v in sorted(buckets.items())
        ]
        if len(line) > 1:
            parts.append(_polyline(line, "#0b3d91", dash))
    legend = " · ".join(f'<tspan fill="{c}">● {k}</tspan>' for k, c in _COLOURS.items())
    parts.append(
        f'<text x="{_PAD + 8}" y="24" font-size="12">{legend} · turn p50 (solid) and '
        f"p99 (dashed) per {bucket_s:g} s</text>"
    )
    return (
        f'<svg width="{_W}" height="{_H}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def load_svg(samples: list[dict[str, Any]]) -> str:
    x_max = max((s["t_s"] for s in samples), default=1.0) or 1.0
    cpu = [s["server_cpu_pct"] for s in samples if s["server_cpu_pct"] is not None]
    y_max = max([1.0, *(s["active"] for s in samples), *cpu]) * 1.1
    sx = _scale(0, x_max, _PAD, _W - 10)
    sy = _scale(0, y_max, _H - _PAD, 10)
    parts = _axes(x_max, y_max, "calls in progress / server CPU %")
    parts.append(_polyline([(sx(s["t_s"]), sy(s["active"])) for s in samples], "#1971c2"))
    cpu_points = [
        (sx(s["t_s"]), sy(s["server_cpu_pct"])) for s in samples if s["server_cpu_pct"] is not None
    ]
    if cpu_points:
        parts.append(_polyline(cpu_points, "#c92a2a", "4 3"))
    parts.append(
        f'<text x="{_PAD + 8}" y="24" font-size="12"><tspan fill="#1971c2">— calls in '
        f'progress</tspan> · <tspan fill="#c92a2a">-- server CPU (% of one core)</tspan></text>'
    )
    return (
        f'<svg width="{_W}" height="{_H}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def page(report: dict[str, Any]) -> str:
    rows = []
    for key, figure in report["figures"].items():
        if figure is None:
            continue
        cells = "".join(
            f"<td>{'' if figure.get(c) is None else figure.get(c)}</td>"
            for c in ("n", "p50", "p95", "p99")
        )
        top = figure.get("max", figure.get("max_le"))
        rows.append(
            f"<tr><th>{html.escape(key)}</th>{cells}<td>{'' if top is None else top}</td></tr>"
        )
    calls = report["calls"]
    finite = [e for e in report["events"] if math.isfinite(e[2])]
    return (
        "<!doctype html><meta charset='utf-8'><title>voice-agent loadtest</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;"
        "text-align:right}th{text-align:left}</style>"
        f"<h1>voice-agent loadtest</h1><p>{calls['started']} calls, "
        f"{calls['peak_concurrent']} at once, {calls['failed']} failed, "
        f"{calls['turns']} turns, {calls['barge_ins']} barge-ins, "
        f"{calls['outbound_gaps']} outbound gaps "
        f"({calls['outbound_gaps_in_load_generator_stalls']} in the load generator's own "
        "stalls).</p>"
        "<table><tr><th>figure (ms, %, MB)</th><th>n</th><th>p50</th><th>p95</th>"
        f"<th>p99</th><th>max</th></tr>{''.join(rows)}</table>"
        f"<h2>Latency over time</h2>{latency_svg(finite)}"
        f"<h2>Load</h2>{load_svg(report['samples'])}"
    )
