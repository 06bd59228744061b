"""Drain on SIGTERM: a deploy or a scale-down must not cut calls.

The moment the signal arrives this worker says it is not ready (``/readyz`` 503, so the
load balancer sends new calls elsewhere) and refuses new calls at the voice webhook (503:
Twilio's retry or the balancer takes them to another worker). Calls in progress go on for
up to ``DRAIN_TIMEOUT_S``; those still running then hear a short goodbye in the agent's own
voice and are hung up. Only then is the server told to stop, so its shutdown (which closes
every websocket at once) finds no call left, and the lifespan's close stores every turn
and recording before the process exits.

uvicorn owns SIGTERM (its handler starts that abrupt shutdown). When the app runs under
uvicorn's own handler, ``install`` puts the drain in front of it and calls it at the end;
elsewhere (tests serving the app in a thread, other servers) nothing is installed and
``begin()`` is called directly. With ``--workers N`` uvicorn's supervisor forwards SIGTERM
to every worker, and each drains its own calls.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

log = logging.getLogger(__name__)

DRAIN_REASON = "server-drain"
#: How long the goodbyes (and the sockets' closing after them) may take past the timeout.
_GOODBYE_LIMIT_S = 15.0
_POLL_S = 0.05


class Endable(Protocol):
    async def say_goodbye(self, reason: str, text: str | None = None) -> None: ...


class Drain:
    def __init__(
        self,
        timeout_s: float,
        live_calls: Mapping[str, Endable],
        on_begin: list[Callable[[], Any]] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self._live = live_calls
        self._on_begin = on_begin or []
        self._exit: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._steps: list[asyncio.Future[Any]] = []
        self.started_at: float | None = None
        #: Seconds from the signal to the last call ended (None until drained).
        self.took_s: float | None = None
        self.done = asyncio.Event()

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def begin(self) -> None:
        """Stop taking calls now; end the running ones within the timeout. Idempotent."""
        if self.draining:
            return
        self.started_at = time.monotonic()
        log.info(
            "draining: %d call(s) in progress, up to %g s before goodbye",
            len(self._live),
            self.timeout_s,
        )
        for callback in self._on_begin:
            try:
                result = callback()
                if asyncio.iscoroutine(result):
                    self._steps.append(asyncio.ensure_future(result))
            except Exception:
                log.exception("drain: a start-of-drain step failed")
        self._task = asyncio.create_task(self._run(), name="drain")

    async def _run(self) -> None:
        assert self.started_at is not None
        try:
            deadline = self.started_at + self.timeout_s
            await self._calls_over(deadline)
            if self._live:
                calls = list(self._live.values())
                log.info("drain timeout: saying goodbye on %d call(s)", len(calls))
                goodbyes = [asyncio.create_task(c.say_goodbye(DRAIN_REASON)) for c in calls]
                await asyncio.wait(goodbyes, timeout=_GOODBYE_LIMIT_S)
                await self._calls_over(time.monotonic() + _GOODBYE_LIMIT_S)
            self.took_s = time.monotonic() - self.started_at
            log.info("drained in %.2f s; %d call(s) left", self.took_s, len(self._live))
        except Exception:
            log.exception("drain failed; stopping anyway")
        finally:
            self.done.set()
            if self._exit is not None:
                self._exit()

    async def _calls_over(self, until: float) -> None:
        """Until no call is live here or `until` (monotonic) passes. Polled: calls end
        through the live-call map's owners, which signal nothing."""
        while True:
            if not self._live or time.monotonic() >= until:
                return
            await asyncio.sleep(_POLL_S)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*self._steps, return_exceptions=True)

    def install(self) -> bool:
        """Put the drain in front of uvicorn's SIGTERM handler (main thread only); True
        when installed."""
        if threading.current_thread() is not threading.main_thread():
            return False
        previous = signal.getsignal(signal.SIGTERM)
        if not _is_uvicorn_handler(previous):
            return False
        loop = asyncio.get_running_loop()

        def on_sigterm(signum: int, frame: object) -> None:
            # A signal handler runs between two bytecodes of whatever the loop was doing:
            # schedule the drain, touch nothing here.
            loop.call_soon_threadsafe(self.begin)

        def stop_server() -> None:
            previous(signal.SIGTERM, None)  # type: ignore[operator,misc]

        self._exit = stop_server
        signal.signal(signal.SIGTERM, on_sigterm)
        return True


def _is_uvicorn_handler(handler: object) -> bool:
    owner = getattr(handler, "__self__", None)
    if owner is None:
        return False
    try:
        from uvicorn.server import Server
    except ImportError:  # pragma: no cover - uvicorn is a dependency
        return False
    return isinstance(owner, Server)
