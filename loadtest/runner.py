"""Plays many simultaneous calls against one server and keeps what each caller heard,
plus a once-a-second sample of the server's CPU and memory and this process's own load
(a load generator that falls behind would make the server look slow)."""

from __future__ import annotations

import asyncio
import gc
import random
import time
from dataclasses import dataclass, field

import httpx

from loadtest import procstat, promtext
from loadtest.caller import CallerTurn, CallResult, place_call
from loadtest.scenario import Scenario

SAMPLE_S = 1.0
_LAG_TICK_S = 0.05
#: Loop lag worth remembering when it happened: an outbound gap that falls in one may be
#: the load generator's, not the server's.
_STALL_MS = 5.0
#: The memory leak check compares the server's RSS after this many calls with the end.
LEAK_BASELINE_CALLS = 100
_SETTLE_S = 2.0


@dataclass(frozen=True, slots=True)
class RunOptions:
    base_url: str
    auth_token: str | None
    calls: int  # concurrent callers
    ramp_s: float = 0.0
    #: Keep the callers calling again until this many seconds have passed (None: once).
    duration_s: float | None = None
    #: Start no more than this many calls in all (None: no limit).
    total: int | None = None
    server_pid: int | None = None
    public_base_url: str | None = None
    reply_timeout_s: float = 30.0
    hangup_wait_s: float = 10.0
    #: Share of calls (0-1) placed from the number of a caller who already finished a call,
    #: so the server knows them (caller memory); the rest call from numbers never seen.
    known_callers: float = 0.0
    seed: int = 1


@dataclass(slots=True)
class TurnFigures:
    at_s: float  # end of the caller's speech, seconds into the run
    utterance: str
    barge_in: bool
    reply_ms: float | None
    #: Reply latency beyond the stand-ins' set latencies and the endpointing window.
    excess_ms: float | None
    clear_ms: float | None


@dataclass(slots=True)
class CallFigures:
    index: int
    call_sid: str
    started_s: float
    ended_s: float
    greeting_ms: float | None
    turns: list[TurnFigures]
    gaps_ms: list[float]
    gap_ends: list[float]  # perf_counter() at each gap's end
    failure: str | None
    #: Placed from the number of an earlier finished call (a caller the server may know).
    repeat: bool = False


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    active: int
    done: int
    server_cpu_pct: float | None  # of one core, over the last interval
    server_rss_mb: float | None
    loadgen_cpu_pct: float
    loop_lag_ms: float  # worst lag of this process's event loop in the interval


@dataclass(slots=True)
class Leftovers:
    """What the server holds with no call in progress."""

    rss_mb: float
    open_fds: int
    #: None when the server does not report it (several workers, or an older server).
    asyncio_tasks: int | None


@dataclass(slots=True)
class LeakCheck:
    calls_at_baseline: int
    baseline: Leftovers
    calls_at_end: int = 0
    end: Leftovers | None = None


@dataclass(slots=True)
class RunState:
    started: int = 0
    active: int = 0
    done: int = 0
    failed: int = 0
    calls: list[CallFigures] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    loop_lags_ms: list[float] = field(default_factory=list)
    #: (perf_counter() at wake-up, ms late) for this process's loop stalls past a few ms.
    loop_stalls: list[tuple[float, float]] = field(default_factory=list)
    idle_rss_mb: float | None = None
    leak: LeakCheck | None = None
    elapsed_s: float = 0.0
    loadgen_cpu_s: float = 0.0


def _mb(value: int) -> float:
    return value / 1_048_576


class LoadRun:
    def __init__(self, options: RunOptions, scenario: Scenario) -> None:
        self.options = options
        self.scenario = scenario
        self.state = RunState()
        self._t0 = 0.0
        self._lag_max = 0.0
        self._resume = asyncio.Event()
        self._resume.set()
        self._drained = asyncio.Event()
        #: Numbers whose call finished well: what a repeat caller calls from.
        self._finished_numbers: list[str] = []
        self._numbers = random.Random(options.seed)

    def now_s(self) -> float:
        return time.perf_counter() - self._t0 if self._t0 else 0.0

    async def run(self) -> RunState:
        options, state = self.options, self.state
        if options.server_pid is not None:
            usage = procstat.usage(options.server_pid)
            state.idle_rss_mb = _mb(usage.rss_bytes) if usage else None
        self._t0 = time.perf_counter()
        cpu0 = time.process_time()
        limits = httpx.Limits(max_connections=max(10, options.calls), max_keepalive_connections=50)
        async with httpx.AsyncClient(timeout=15.0, limits=limits) as http:
            watchers = [
                asyncio.create_task(self._watch_lag()),
                asyncio.create_task(self._sample()),
            ]
            try:
                await asyncio.gather(*(self._slot(slot, http) for slot in range(options.calls)))
                if self._leak_check_on():
                    await asyncio.sleep(_SETTLE_S)
                    await self._leak_end(http)
            finally:
                for watcher in watchers:
                    watcher.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
                gc.unfreeze()
        state.elapsed_s = self.now_s()
        state.loadgen_cpu_s = time.process_time() - cpu0
        return state

    def _leak_check_on(self) -> bool:
        total = self.options.total
        return (
            self.options.server_pid is not None
            and total is not None
            and total >= 2 * LEAK_BASELINE_CALLS
        )

    def _more(self) -> bool:
        options, state = self.options, self.state
        if options.total is not None and state.started >= options.total:
            return False
        if options.duration_s is None:
            return True  # once per slot: the slot loop stops after one call
        return self.now_s() < options.duration_s

    async def _slot(self, slot: int, http: httpx.AsyncClient) -> None:
        options = self.options
        if options.ramp_s > 0 and options.calls > 1:
            await asyncio.sleep(options.ramp_s * slot / options.calls)
        while True:
            await self._resume.wait()
            if not self._more():
                return
            await self._one_call(http)
            if options.duration_s is None and options.total is None:
                return

    async def _one_call(self, http: httpx.AsyncClient) -> None:
        state, options = self.state, self.options
        index = state.started
        state.started += 1
        state.active += 1
        if self._leak_check_on() and state.started == LEAK_BASELINE_CALLS:
            # The baseline is taken with no call in progress: hold new calls until the
            # first hundred have ended.
            self._resume.clear()
        turns = self.scenario.call_turns()
        number, repeat = self._caller_number(index)
        started = self.now_s()
        try:
            result = await place_call(
                options.base_url,
                turns,
                from_number=number,
                auth_token=options.auth_token,
                public_base_url=options.public_base_url,
                reply_timeout_s=options.reply_timeout_s,
                hangup_wait_s=options.hangup_wait_s,
                http=http,
                keep_audio=False,
            )
        except Exception as exc:  # one broken call must not end the run
            result = CallResult(call_sid="?", error=f"{type(exc).__name__}: {exc}")
        figures = self._figures(index, started, turns, result)
        figures.repeat = repeat
        if figures.failure is None:
            self._finished_numbers.append(number)
        state.calls.append(figures)
        state.active -= 1
        state.done += 1
        if figures.failure is not None:
            state.failed += 1
        if not self._resume.is_set() and state.active == 0:
            await asyncio.sleep(_SETTLE_S)
            baseline = await self._leftovers(http)
            if baseline is not None:
                state.leak = LeakCheck(state.done, baseline)
            self._resume.set()

    def _caller_number(self, index: int) -> tuple[str, bool]:
        """Each call from its own new number, unless drawn as a repeat caller."""
        share = self.options.known_callers
        if share > 0 and self._finished_numbers and self._numbers.random() < share:
            return self._numbers.choice(self._finished_numbers), True
        return f"+1555{2_000_000 + index:07d}", False

    async def _leftovers(self, http: httpx.AsyncClient) -> Leftovers | None:
        pid = self.options.server_pid
        if pid is None:
            return None
        tasks: float | None = None
        try:
            response = await http.get(self.options.base_url + "/metrics")
            if response.status_code == 200:
                tasks = promtext.parse(response.text).gauge("voice_agent_asyncio_tasks")
        except httpx.HTTPError:
            pass
        # Read after the scrape, so both ends count the same pooled keep-alive connections.
        usage = procstat.usage(pid)
        if usage is None:
            return None
        return Leftovers(
            _mb(usage.rss_bytes), usage.open_fds, None if tasks is None else int(tasks)
        )

    async def _leak_end(self, http: httpx.AsyncClient) -> None:
        state = self.state
        end = await self._leftovers(http)
        if state.leak is not None and end is not None:
            state.leak.calls_at_end = state.done
            state.leak.end = end

    def _figures(
        self, index: int, started: float, turns: list[CallerTurn], result: CallResult
    ) -> CallFigures:
        figures: list[TurnFigures] = []
        failure = result.error
        for number, (turn, heard) in enumerate(zip(turns, result.turns, strict=False)):
            reply = heard.reply_ms
            excess = None
            if reply is not None:
                excess = reply - self.scenario.set_latency_ms(turn.utterance)
            figures.append(
                TurnFigures(
                    heard.speech_end_at - self._t0,
                    turn.utterance.id,
                    heard.barge_in,
                    reply,
                    excess,
                    heard.clear_ms,
                )
            )
            if failure is None and reply is None:
                failure = f"turn {number} ({turn.utterance.id}): no reply"
            if failure is None and heard.barge_in and heard.clear_ms is None:
                failure = f"turn {number} ({turn.utterance.id}): barge-in not cleared"
        if failure is None and result.greeting_ms is None:
            failure = "no greeting"
        if failure is None and len(result.turns) < len(turns):
            failure = f"call ended after {len(result.turns)} of {len(turns)} caller turns"
        if failure is None and self.scenario.ends_in_goodbye and not result.ended_by_server:
            failure = "the agent did not hang up after goodbye"
        return CallFigures(
            index,
            result.call_sid,
            started,
            self.now_s(),
            result.greeting_ms,
            figures,
            list(result.gaps_ms),
            list(result.gap_ends),
            failure,
        )

    async def _watch_lag(self) -> None:
        """How late this process's loop wakes up: past a few ms, the callers' 20 ms clock
        and every figure measured here are skewed, and the report says so."""
        while True:
            # perf_counter, not loop.time(): uvloop's clock ticks in whole milliseconds.
            due = time.perf_counter() + _LAG_TICK_S
            await asyncio.sleep(_LAG_TICK_S)
            woke = time.perf_counter()
            lag = max(0.0, (woke - due) * 1000)
            self.state.loop_lags_ms.append(lag)
            if lag > _STALL_MS:
                self.state.loop_stalls.append((woke, lag))
            self._lag_max = max(self._lag_max, lag)

    async def _sample(self) -> None:
        state, pid = self.state, self.options.server_pid
        last_t, last_cpu = time.perf_counter(), time.process_time()
        last_server = procstat.usage(pid) if pid else None
        while True:
            await asyncio.sleep(SAMPLE_S)
            # The callers' objects live for whole calls; left to the collector, its full
            # passes over them stalled this loop up to 240 ms at 200 calls, and every
            # caller's 20 ms clock with it. Frozen, each pass sees only the last second's
            # objects. run() unfreezes them at the end, so cycles are freed then.
            gc.freeze()
            now, cpu = time.perf_counter(), time.process_time()
            interval = now - last_t
            server = procstat.usage(pid) if pid else None
            server_cpu = None
            if server is not None and last_server is not None:
                server_cpu = (server.cpu_s - last_server.cpu_s) / interval * 100
            state.samples.append(
                Sample(
                    round(self.now_s(), 3),
                    state.active,
                    state.done,
                    None if server_cpu is None else round(server_cpu, 2),
                    None if server is None else round(_mb(server.rss_bytes), 2),
                    round((cpu - last_cpu) / interval * 100, 2),
                    round(self._lag_max, 3),
                )
            )
            self._lag_max = 0.0
            last_t, last_cpu, last_server = now, cpu, server
