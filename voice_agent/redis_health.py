"""Redis being away, said once: which parts run in-process meanwhile, and when it is back.

Calls never need Redis; what uses it (the live-events bus across workers, per-call tokens
across workers, SMS thread locks) falls back to this process's own memory. Each part
reports here; the first failure of an outage logs one warning per part, every failure
counts in a metric, and the first success after logs the recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class RedisHealth:
    def __init__(self) -> None:
        self._down: set[str] = set()
        self.errors = 0
        #: Set by the metrics: called with the part's name on every failure, and with
        #: whether Redis is up when that changes.
        self.on_error: Callable[[str], None] | None = None
        self.on_state: Callable[[bool], None] | None = None

    @property
    def up(self) -> bool:
        return not self._down

    def failed(self, part: str, exc: BaseException) -> None:
        self.errors += 1
        if self.on_error is not None:
            self.on_error(part)
        if part in self._down:
            return
        was_up = self.up
        self._down.add(part)
        log.warning(
            "redis unavailable for %s (%s: %s); running in-process until it is back",
            part,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
        )
        if was_up and self.on_state is not None:
            self.on_state(False)

    def ok(self, part: str) -> None:
        if part not in self._down:
            return
        self._down.discard(part)
        log.warning("redis is back for %s", part)
        if self.up and self.on_state is not None:
            self.on_state(True)
