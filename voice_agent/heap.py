"""Garbage collector policy for a long-running server that carries hundreds of calls.

A full collection walks every object the collector tracks and stops the event loop while
it does: every call's outbound audio and every turn in flight waits. At 200 calls it
walked ~50,000 live per-call objects in 25-140 ms, once every 20-40 s, and
each time a reply with less audio than that queued at Twilio broke up.

So the collector is kept to what is new. Start-up's heap is frozen once it is built, and
then, every second, whatever survived is frozen too: a collection only ever walks the
last second's objects. Frozen objects are still freed the ordinary way when their last
reference goes, and a call's objects hold no reference cycles
(`tests/calls/test_call_garbage.py` keeps it so); but a frozen cycle is never collected.
A library may still leave one on a path the tests do not take, so now and then everything
is unfrozen and collected in one pass: at once when the process has no call up, and
under unbroken load only once the frozen objects have grown by `reclaim_growth` since the
last pass. That pass stops the loop ~155 ms at 200 calls (and breaks up a few replies),
so it is kept for when cycles have piled up; with none, it never comes while calls run.
Counting the frozen objects walks them all (~10 ms at 200 calls), so the growth is read
every `check_every_s`, not every second.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

FREEZE_EVERY_S = 1.0
#: Growth of the frozen objects that brings a reclaim while calls are up: the calls' live
#: objects (~265 a call) come and go, leaked cycles (~100 bytes each) only pile up.
RECLAIM_GROWTH = 250_000
CHECK_EVERY_S = 300.0


def settle_after_startup() -> None:
    """Call once the app is built and warm: collect, then freeze the survivors."""
    gc.collect()
    gc.freeze()
    # The thresholds stay Python's: a young collection of 700 objects pauses ~1 ms; at
    # 10,000 (tried) there were 14 times fewer but each paused ~10 ms, worse for tails.


def reclaim() -> int:
    """Collect everything, frozen objects included; freeze the survivors again. Returns
    the number of unreachable objects found."""
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    return found


class HeapKeeper:
    """Freezes survivors every `freeze_every_s`; reclaims frozen cycles when no call is up,
    and while calls are up once the frozen objects grew by `reclaim_growth` (read every
    `check_every_s`)."""

    def __init__(
        self,
        active_calls: Callable[[], int],
        *,
        freeze_every_s: float = FREEZE_EVERY_S,
        reclaim_growth: int = RECLAIM_GROWTH,
        check_every_s: float = CHECK_EVERY_S,
        frozen: Callable[[], int] = gc.get_freeze_count,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._active_calls = active_calls
        self._freeze_every_s = freeze_every_s
        self._reclaim_growth = reclaim_growth
        self._check_every_s = check_every_s
        self._frozen = frozen
        self._clock = clock
        self._frozen_after_reclaim = frozen()
        self._checked_at = clock()
        #: Whether anything was frozen since the last reclaim (an idle server rests).
        self._dirty = False
        self.reclaims = 0

    def tick(self) -> None:
        """One step of the policy; `run` calls it every `freeze_every_s`."""
        idle = self._active_calls() == 0
        if self._dirty and (idle or self._grown()):
            started = time.perf_counter()
            found = reclaim()
            self.reclaims += 1
            self._frozen_after_reclaim = self._frozen()
            self._dirty = False
            log.log(
                logging.DEBUG if idle else logging.INFO,
                "heap reclaimed: %d unreachable, %.1f ms%s",
                found,
                (time.perf_counter() - started) * 1000.0,
                "" if idle else " (calls were up: frozen objects had grown)",
            )
        elif not idle:
            gc.freeze()
            self._dirty = True

    def _grown(self) -> bool:
        now = self._clock()
        if now - self._checked_at < self._check_every_s:
            return False
        self._checked_at = now
        return self._frozen() - self._frozen_after_reclaim >= self._reclaim_growth

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._freeze_every_s)
            self.tick()


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
