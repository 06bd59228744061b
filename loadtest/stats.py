"""Percentile summaries, the one shape every figure in a report takes."""

from __future__ import annotations

import math
from collections.abc import Iterable

QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (no interpolation: a p99 of 100 values
    is the 99th value, one that really occurred)."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summary(values: Iterable[float]) -> dict[str, float | int | None]:
    """{"n", "p50", "p95", "p99", "max"}; the figures are None when there are no values."""
    ordered = sorted(values)
    out: dict[str, float | int | None] = {"n": len(ordered)}
    for name, q in QUANTILES:
        out[name] = round(percentile(ordered, q), 3) if ordered else None
    out["max"] = round(ordered[-1], 3) if ordered else None
    return out
