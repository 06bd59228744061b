"""Which tenant answers a called number, even while the database is too slow to say.

An inbound call must be answered within Twilio's webhook timeout. When the lookup fails or
overruns its limit (a database outage, or a saturated process whose database round trips
queue behind the calls' frames), the call is routed by what this process last read for
that number. Only a deployment that has never had a number (the embedded install) falls
back to the default tenant; anywhere else a caller of one business must never reach
another business's agent, so an unknown number is refused (Twilio's fallback URL takes it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from voice_agent.storage.tenants import NumberRoute, TenantRepository

log = logging.getLogger(__name__)

#: Called numbers are the deployment's own (signed webhooks), so few; the bound is a guard.
_MAX_REMEMBERED = 10_000


class RoutingUnavailable(RuntimeError):
    """The lookup failed and nothing this process has read says where the number goes."""


@dataclass(frozen=True, slots=True)
class Routing:
    route: NumberRoute | None  # None: no tenant owns the number
    any_numbers: bool  # whether any tenant owns a number (else the default tenant answers)
    stale: bool = False  # from memory: the lookup failed


class NumberRouter:
    def __init__(
        self,
        tenants: TenantRepository,
        *,
        timeout_s: float = 1.0,
        on_stale: Callable[[], object] = lambda: None,
    ) -> None:
        self._tenants = tenants
        self._timeout_s = timeout_s
        self._on_stale = on_stale
        self._known: dict[str, NumberRoute | None] = {}
        self._any_numbers: bool | None = None  # None: never read
        self._abandoned: set[asyncio.Future[tuple[NumberRoute | None, bool]]] = set()

    async def resolve(self, number: str) -> Routing:
        """The route of ``number``; RoutingUnavailable when neither the database nor memory
        can say."""
        # Not asyncio.timeout: a cancelled query on a stalled connection takes seconds more
        # to close it, so the lookup is left to finish in the background instead.
        lookup = asyncio.ensure_future(self._tenants.lookup(number))
        try:
            await asyncio.wait((lookup,), timeout=self._timeout_s)
        finally:
            if not lookup.done():
                lookup.cancel()
                self._abandoned.add(lookup)
                lookup.add_done_callback(self._forget)
        if not lookup.done():
            return self._remembered(number, TimeoutError(f"no answer in {self._timeout_s:g} s"))
        try:
            route, any_numbers = lookup.result()
        except Exception as exc:
            return self._remembered(number, exc)
        if len(self._known) >= _MAX_REMEMBERED:
            self._known.clear()
        self._known[number] = route
        self._any_numbers = any_numbers
        return Routing(route, any_numbers)

    def _forget(self, lookup: asyncio.Future[tuple[NumberRoute | None, bool]]) -> None:
        self._abandoned.discard(lookup)
        if not lookup.cancelled():
            lookup.exception()  # retrieved: it was reported when it was given up on

    def _remembered(self, number: str, exc: BaseException) -> Routing:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if number in self._known:
            route = self._known[number]
            self._on_stale()
            log.warning("routing lookup for %s failed (%s); last known route used", number, reason)
            return Routing(route, route is not None or bool(self._any_numbers), stale=True)
        if self._any_numbers is False:
            self._on_stale()
            log.warning("routing lookup for %s failed (%s); no numbers known", number, reason)
            return Routing(None, False, stale=True)
        raise RoutingUnavailable(f"routing lookup for {number} failed: {reason}") from exc
