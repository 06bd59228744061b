"""Caller memory cached per (tenant, number): the voice webhook asks with a short budget,
and a lookup that overruns it or fails only means the caller is greeted as a stranger."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from voice_agent.caller_memory.lookup import Finder, KnownCaller

log = logging.getLogger(__name__)

#: What the voice webhook waits for a lookup that is not cached (a few queries).
LOOKUP_BUDGET_S = 0.25


class CallerMemory:
    def __init__(
        self,
        find: Finder,
        ttl_s: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._find = find
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[float, KnownCaller | None]] = (
            OrderedDict()
        )
        #: Lookups in flight, shared by concurrent calls from one number.
        self._finding: dict[tuple[str, str], asyncio.Future[KnownCaller | None]] = {}
        self.hits = 0
        self.misses = 0

    def cached(self, tenant: str, number: str) -> tuple[bool, KnownCaller | None]:
        """(found in the cache, what it holds), without waiting on anything."""
        key = (tenant, number)
        entry = self._entries.get(key)
        if entry is None or entry[0] < self._clock():
            return False, None
        self._entries.move_to_end(key)
        return True, entry[1]

    async def lookup(
        self, tenant: str, number: str, budget_s: float = LOOKUP_BUDGET_S
    ) -> KnownCaller | None:
        hit, known = self.cached(tenant, number)
        if hit:
            self.hits += 1
            return known
        self.misses += 1
        key = (tenant, number)
        finding = self._finding.get(key)
        if finding is None:
            finding = asyncio.ensure_future(self._fill(key))
            self._finding[key] = finding
            finding.add_done_callback(lambda _: self._finding.pop(key, None))
        try:
            async with asyncio.timeout(budget_s):
                # Shielded: a lookup that overruns still fills the cache for the next call.
                return await asyncio.shield(finding)
        except TimeoutError:
            log.info("caller memory for %s: lookup overran %.0f ms", number, budget_s * 1000)
        except Exception as exc:
            log.warning("caller memory for %s unavailable: %s", number, exc)
        return None

    async def _fill(self, key: tuple[str, str]) -> KnownCaller | None:
        known = await self._find(*key)
        self._entries[key] = (self._clock() + self._ttl, known)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return known

    def forget(self, tenant: str, number: str) -> None:
        """Something new about this number (a call analysed, a lead): look it up afresh."""
        self._entries.pop((tenant, number), None)
