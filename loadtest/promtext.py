"""The server's own view, from its Prometheus /metrics: histogram deltas over a run.

Scraped once before the calls and once after, so a long-running server's earlier
traffic does not count. Quantiles are estimated the way PromQL's histogram_quantile
does it (linear within the bucket), so they are only as fine as the buckets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass(slots=True)
class Histogram:
    #: (upper bound, cumulative count), ascending, +Inf last.
    buckets: list[tuple[float, float]] = field(default_factory=list)
    total: float = 0.0
    count: float = 0.0

    def minus(self, before: Histogram | None) -> Histogram:
        if before is None:
            return self
        earlier = dict(before.buckets)
        return Histogram(
            [(bound, count - earlier.get(bound, 0.0)) for bound, count in self.buckets],
            self.total - before.total,
            self.count - before.count,
        )

    def quantile(self, q: float) -> float | None:
        if self.count <= 0 or not self.buckets:
            return None
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower_bound  # beyond the last finite bucket: at least this much
                inside = cumulative - lower_count
                share = (rank - lower_count) / inside if inside else 1.0
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, cumulative
        return lower_bound

    def upper_bound(self) -> float | None:
        """The top of the highest non-empty bucket: the most the largest value can be."""
        previous = 0.0
        highest: float | None = None
        for bound, cumulative in self.buckets:
            if cumulative > previous:
                highest = bound
            previous = cumulative
        return highest

    def summary(self) -> dict[str, float | int | None]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        top = self.upper_bound()
        return {
            "n": int(self.count),
            "p50": rounded(self.quantile(0.50)),
            "p95": rounded(self.quantile(0.95)),
            "p99": rounded(self.quantile(0.99)),
            # The exact maximum is not in a histogram; this is its bucket's upper bound.
            "max_le": None if top is None else (None if math.isinf(top) else top),
            "mean": rounded(self.total / self.count) if self.count else None,
        }


@dataclass(slots=True)
class Scrape:
    histograms: dict[tuple[str, tuple[tuple[str, str], ...]], Histogram]
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def gauge(self, name: str, **labels: str) -> float | None:
        return self.gauges.get((name, tuple(sorted(labels.items()))))

    def histogram(self, name: str, **labels: str) -> Histogram | None:
        return self.histograms.get((name, tuple(sorted(labels.items()))))

    def counter_delta(self, before: Scrape | None) -> dict[str, float]:
        """Counters that grew during the run, as `name{label="value"}` -> increase."""
        out: dict[str, float] = {}
        for (name, labels), value in self.counters.items():
            grown = value - (before.counters.get((name, labels), 0.0) if before else 0.0)
            if grown:
                selector = ",".join(f'{k}="{v}"' for k, v in labels)
                out[f"{name}{{{selector}}}" if selector else name] = grown
        return out


def parse(text: str) -> Scrape:
    histograms: dict[tuple[str, tuple[tuple[str, str], ...]], Histogram] = {}
    counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        if family.type == "histogram":
            for sample in family.samples:
                labels = {k: v for k, v in sample.labels.items() if k != "le"}
                key = (family.name, tuple(sorted(labels.items())))
                histogram = histograms.setdefault(key, Histogram())
                if sample.name.endswith("_bucket"):
                    histogram.buckets.append((float(sample.labels["le"]), sample.value))
                elif sample.name.endswith("_sum"):
                    histogram.total = sample.value
                elif sample.name.endswith("_count"):
                    histogram.count = sample.value
        elif family.type == "counter":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counters[(family.name, tuple(sorted(sample.labels.items())))] = sample.value
        elif family.type == "gauge":
            for sample in family.samples:
                gauges[(family.name, tuple(sorted(sample.labels.items())))] = sample.value
    for histogram in histograms.values():
        histogram.buckets.sort()
    return Scrape(histograms, counters, gauges)
