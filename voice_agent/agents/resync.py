"""Each worker's periodic check that it runs the published agent versions.

Publishing tells the other workers over Redis (AgentUpdates), but a message sent while a
worker was resubscribing, or while Redis was down, is simply lost. So every
AGENT_RESYNC_S each worker reads the current version ids (a few bytes per agent) and
reloads any agent whose version differs from the one it runs: a missed update is picked
up within that bound, greeting included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from voice_agent.agents.book import AgentBook
from voice_agent.storage.agents import AgentRepository

log = logging.getLogger(__name__)


class AgentResync:
    def __init__(
        self,
        book: AgentBook,
        repo: AgentRepository,
        on_update: Callable[[str, str], Awaitable[None]],
        interval_s: float,
    ) -> None:
        self._book = book
        self._repo = repo
        self._on_update = on_update
        self._interval_s = interval_s
        #: The last version each reload was asked for: a stored version that does not
        #: validate (so is never installed) is tried once, not every period.
        self._tried: dict[tuple[str, str], int] = {}
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> list[tuple[str, str]]:
        """Reload every agent whose current version differs from this worker's; the
        agents reloaded."""
        wanted = await self._repo.current_versions()
        running = self._book.versions()
        stale = [
            key
            for key, version in wanted.items()
            if running.get(key) != version and self._tried.get(key) != version
        ]
        for key in stale:
            version = wanted[key]
            log.info("agent %s/%s: reloading v%d (an update was missed)", *key, version)
            try:
                await self._on_update(*key)
            except Exception:
                # A database blink or a failed greeting synthesis: tried again next period.
                log.warning("agent %s/%s: reload failed", *key, exc_info=True)
                continue
            if self._book.versions().get(key) != version:
                self._tried[key] = version  # reloaded, yet not installed: it is invalid
        return stale

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database blinked: the next period tries again.
                log.warning("agent resync failed; retrying in %.0f s", self._interval_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
