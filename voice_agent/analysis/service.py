"""The background worker that analyses finished calls.

A call's end only wakes it: the worker asks the database which ended calls still lack an
analysis, so a restart (or a worker dying mid-analysis) loses none, a database outage
only delays them, and with several workers each call is claimed by one. Nothing here
runs on a call's audio path.

`on_analyzed` is the seam for what follows an analysis outside this module (a CRM note,
a `call.analyzed` event): each hook is awaited with the stored result, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from prompts import AgentDefinition
from voice_agent.analysis.llm import AnalysisUnavailable
from voice_agent.analysis.result import CallAnalysis, empty_fields
from voice_agent.caller_memory.cache import CallerMemory
from voice_agent.clock import Clock, utc_now
from voice_agent.conversation.ports import CallEndedEvent, CallInfo, TurnEvent
from voice_agent.storage.analyses import AnalysisRepository, CallToAnalyse
from voice_agent.storage.write_queue import WriteQueue

log = logging.getLogger(__name__)

#: Calls that ended longer ago than this without an analysis are left alone.
LOOKBACK = timedelta(days=7)
#: A claim older than this belongs to a worker that died: another takes the call over.
LEASE = timedelta(minutes=5)
#: Without a wake-up (calls ended elsewhere: status callbacks, other workers), look anyway.
POLL_S = 10.0
_MAX_BACKOFF_S = 30.0


class Analyser(Protocol):
    name: str

    async def analyse(
        self, material: CallToAnalyse, agent: AgentDefinition | None, known_name: str = ""
    ) -> CallAnalysis: ...


@dataclass(frozen=True, slots=True)
class AnalysedCall:
    """What an `on_analyzed` hook is given: the call's identity and its stored analysis
    (the contract's summary, outcome and fields, plus source/reason/request)."""

    call_sid: str
    tenant: str
    direction: str
    #: The other party's number (the caller's on inbound calls, the callee's on outbound).
    number: str
    lead_id: int | None
    analysis: dict[str, Any]


AnalyzedHook = Callable[[AnalysedCall], Awaitable[None]]


class AnalysisService:
    def __init__(
        self,
        repository: AnalysisRepository,
        analyser: Analyser,
        agent_for: Callable[[str, str], AgentDefinition | None],
        *,
        writes: WriteQueue | None = None,
        memory: CallerMemory | None = None,
        clock: Clock = utc_now,
        concurrency: int = 4,
        poll_s: float = POLL_S,
    ) -> None:
        self._repo = repository
        self._analyser = analyser
        self._agent_for = agent_for
        self._writes = writes
        self._memory = memory
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        #: Analyses made but not yet stored (the database blinked): stored, not redone.
        self._unsaved: dict[str, CallAnalysis] = {}
        #: Awaited after each analysis is stored; failures are logged, never retried here.
        self.on_analyzed: list[AnalyzedHook] = []
        self.analysed = 0

    # --- the session sink side: a call's end wakes the worker -------------------------

    def call_ended(self, call: CallInfo, event: CallEndedEvent) -> None:
        self._wake.set()

    def call_started(self, call: CallInfo, at: datetime) -> None: ...

    def turn(self, call: CallInfo, turn: TurnEvent) -> None: ...

    def greeting_sent(self, call: CallInfo, first_audio_ms: float) -> None: ...

    def barge_in(self, call: CallInfo, clear_ms: float) -> None: ...

    def provider_error(self, call: CallInfo, stage: str) -> None: ...

    def usage(self, call: CallInfo, usage: object) -> None: ...

    def wake(self) -> None:
        self._wake.set()

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def aclose(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        close = getattr(self._analyser, "aclose", None)
        if close is not None:
            await close()

    async def idle(self, timeout: float = 10.0) -> bool:  # noqa: ASYNC109
        """Wait until nothing is pending (for tests and the demo); False on timeout."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:
                    if self._writes is not None:
                        await self._writes.flush()
                    if not self._running and not await self._repo.pending(self._since(), 1):
                        return True
                    self._wake.set()
                    await asyncio.sleep(0.05)
        return False

    # --- the worker -------------------------------------------------------------------

    def _since(self) -> datetime:
        return self._clock() - LOOKBACK

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                if self._writes is not None:
                    # The call's last records (its end, its turns) go to the database first.
                    await self._writes.flush(timeout=5.0)
                await self._round()
                backoff = 0.5
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_s):
                        await self._wake.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("call analysis paused %.1f s: %s", backoff, exc)
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
            self._wake.clear()

    async def _round(self) -> None:
        for call_sid in await self._repo.pending(self._since()):
            if call_sid in self._running:
                continue
            await self._slots.acquire()
            task = asyncio.create_task(self._one(call_sid))
            self._running[call_sid] = task
            task.add_done_callback(lambda _, sid=call_sid: self._done(sid))

    def _done(self, call_sid: str) -> None:
        self._running.pop(call_sid, None)
        self._slots.release()

    async def _one(self, call_sid: str) -> None:
        try:
            await self._analyse(call_sid)
        except AnalysisUnavailable as exc:
            log.warning("call %s: analysis postponed: %s", call_sid, exc)
            with contextlib.suppress(Exception):
                await self._repo.release(call_sid)
        except Exception as exc:  # the database blinked: the call stays pending
            log.warning("call %s: analysis not stored yet: %s", call_sid, exc)

    async def _analyse(self, call_sid: str) -> None:
        now = self._clock()
        analysis = self._unsaved.get(call_sid)
        if analysis is None:
            if not await self._repo.claim(call_sid, now, LEASE):
                return
            material = await self._repo.load(call_sid)
            if material is None:
                return
            agent = self._agent_for(material.call.tenant, material.call.agent)
            try:
                analysis = await self._analyser.analyse(
                    material, agent, await self._known_name(material)
                )
            except AnalysisUnavailable:
                raise
            except Exception as exc:
                log.exception("call %s: analysis failed", call_sid)
                analysis = CallAnalysis(
                    "",
                    "other",
                    empty_fields(agent),
                    self._analyser.name,
                    reason=f"analysis failed: {type(exc).__name__}: {exc}",
                )
            self._unsaved[call_sid] = analysis
        document = analysis.document()
        stored = await self._repo.store(call_sid, document, self._clock())
        self._unsaved.pop(call_sid, None)
        self.analysed += 1
        if stored is None:
            return
        if self._memory is not None:
            self._memory.forget(stored.tenant, stored.number)
        done = AnalysedCall(
            call_sid, stored.tenant, stored.direction, stored.number, stored.lead_id, document
        )
        for hook in self.on_analyzed:
            try:
                await hook(done)
            except Exception:
                log.exception("call %s: on_analyzed hook %r failed", call_sid, hook)

    async def _known_name(self, material: CallToAnalyse) -> str:
        call = material.call
        if self._memory is None or call.direction != "inbound":
            return ""
        known = await self._memory.lookup(call.tenant, call.from_number)
        return known.name if known is not None else ""
