"""A model reply started early (#18): at a pause whose transcript reads as a finished
turn, before the turn is confirmed. Its events are buffered, unseen, until the turn ends
on that pause (then replayed to the reply as if it had just asked), or it is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import AsyncIterator

from voice_agent.providers.base import DialogueEvent, ProviderError

__all__ = ["EarlyReply"]


class EarlyReply:
    """One speculative model request and what it has streamed so far."""

    __slots__ = (
        "_done",
        "_error",
        "_events",
        "_task",
        "_wake",
        "history_len",
        "pause",
        "started",
        "text",
    )

    def __init__(
        self,
        pause: int,
        text: str,
        history_len: int,
        source: AsyncIterator[DialogueEvent],
        context: contextvars.Context,
    ) -> None:
        #: The listener's pause it was started at, the transcript it answers, and the
        #: length of the history it was asked with (a change makes it stale).
        self.pause = pause
        self.text = text
        self.history_len = history_len
        self.started = time.perf_counter()
        self._events: list[DialogueEvent] = []
        self._error: ProviderError | None = None
        self._done = False
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._pump(source), context=context)

    @property
    def failed(self) -> bool:
        return self._error is not None

    def matches(self, pause: int, text: str, history_len: int) -> bool:
        return (self.pause, self.text, self.history_len) == (pause, text, history_len)

    def cancel(self) -> None:
        """Drop it: the caller went on, or the reply is no longer wanted."""
        self._task.cancel()
        self._events.clear()

    async def _pump(self, source: AsyncIterator[DialogueEvent]) -> None:
        try:
            async with contextlib.aclosing(source) as events:  # type: ignore[type-var]
                async for event in events:
                    self._events.append(event)
                    self._wake.set()
        except ProviderError as exc:
            # Kept without its traceback, whose frames hold the session.
            self._error = exc.with_traceback(None)
        finally:
            self._done = True
            self._wake.set()

    async def events(self) -> AsyncIterator[DialogueEvent]:
        """Everything streamed so far, then the rest as it comes; the request's error, if
        it failed, where it failed."""
        index = 0
        try:
            while True:
                while index < len(self._events):
                    yield self._events[index]
                    index += 1
                if self._done:
                    if self._error is not None:
                        raise self._error
                    return
                self._wake.clear()
                await self._wake.wait()
        finally:
            self._task.cancel()
