"""Garbage collector settings for a long-running server with a large, static heap.

After start-up the heap holds hundreds of thousands of long-lived objects (the SDKs,
pydantic models, SQLAlchemy, numpy). A full collection walks all of them and stops the
event loop for tens of milliseconds: every call's audio and every turn in flight waits,
which is what shows up in the latency tails. Freezing what start-up built moves it out
of the collector's sight; per-call objects are still collected as usual.
"""

from __future__ import annotations

import gc
import time


def settle_after_startup() -> None:
    """Call once the app is built and warm: collect, then freeze the survivors."""
    gc.collect()
    gc.freeze()
    # The thresholds stay Python's: a young collection of 700 objects pauses ~1 ms; at
    # 10,000 (tried) there were 14 times fewer but each paused ~10 ms, worse for tails.


class GcPauses:
    """Collections per generation and the time each stopped the event loop (process-wide:
    the collector is one per process, so is this)."""

    __slots__ = ("_started", "collections", "pause_s")

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.pause_s = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        self.collections[generation] += 1
        self.pause_s[generation] += time.perf_counter() - self._started


PAUSES = GcPauses()


def watch_pauses() -> GcPauses:
    """Start counting collections and their pauses (once per process)."""
    if PAUSES not in gc.callbacks:
        gc.callbacks.append(PAUSES)
    return PAUSES
