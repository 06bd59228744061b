"""The outbound dialer: every outbound call goes through here, at most OUTBOUND_CPS a second.

Calls come from two places: the lead webhook (a claimed scheduled call it wants placed at
once) and the queue of scheduled calls (retries, callbacks, leads that arrived outside
calling hours), which the dialer polls. Right before each call leaves, the number's opt-out
and the tenant's calling hours are checked again: a STOP may have arrived while it waited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from prompts import AgentDefinition
from voice_agent.agents.book import lookup as tenant_agent
from voice_agent.billing.service import Billing
from voice_agent.clock import Clock, utc_now
from voice_agent.outbound import urls
from voice_agent.outbound.greetings import GreetingStore
from voice_agent.outbound.pacing import CpsGate, RedisCpsGate
from voice_agent.outbound.retries import callee_zone, calling_hours, schedule_retry
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.leads import LeadRepository
from voice_agent.storage.opt_outs import OptOutRepository
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository
from voice_agent.storage.tenants import TenantRepository, UnknownTenant
from voice_agent.telephony.rest import TwilioRest, TwilioRestError

log = logging.getLogger(__name__)


#: Claimed calls whose worker died before placing them go back to the queue after this.
_STALE_CLAIM = timedelta(minutes=5)
_RELEASE_EVERY = timedelta(minutes=1)
#: A call held back while its tenant may not call out (#14) is looked at again after this,
#: or at once when the tenant is restored.
_HOLD = timedelta(minutes=5)
#: How long Twilio lets the callee's phone ring.
RING_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class Placed:
    """What became of one request to call: a CallSid, or why there is none."""

    call_sid: str | None
    #: "placed" | "opted-out" | "rescheduled" | "held" | "failed"
    outcome: str
    due_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DialerConfig:
    public_base_url: str
    from_number: str | None
    cps: float = 1.0
    poll_s: float = 1.0
    machine_detection: str = "DetectMessageEnd"


#: Lead facts a call may set even where the agent defines a default for them.
LEAD_VARIABLES = frozenset(
    {"first_name", "last_name", "email", "phone", "source", "lead_source_note"}
)
_MAX_VARIABLE_CHARS = 200


def prompt_variables(
    context: dict[str, Any] | None, agent: AgentDefinition | None = None
) -> dict[str, str]:
    """The string values of a scheduled call's context: what the agent's templates see.

    A form's extra fields come from the public: they may add variables but never replace
    one the agent's definition sets (its business name, hours, policies)."""
    values: dict[str, str] = {}
    for key, value in (context or {}).items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            continue
        if key == "retry_of":
            continue
        if agent is not None and key in agent.variables and key not in LEAD_VARIABLES:
            continue
        values[str(key)] = str(value)[:_MAX_VARIABLE_CHARS]
    return values


def encode_variables(variables: dict[str, str]) -> str:
    return orjson.dumps(variables).decode()


class Dialer:
    def __init__(
        self,
        *,
        config: DialerConfig,
        rest: TwilioRest | None,
        agents: dict[str, AgentDefinition],
        tenants: TenantRepository,
        opt_outs: OptOutRepository,
        scheduled: ScheduledCallRepository,
        leads: LeadRepository,
        calls: CallRepository,
        greetings: GreetingStore | None = None,
        now: Clock = utc_now,
        gate: CpsGate | RedisCpsGate | None = None,
        billing: Billing | None = None,
    ) -> None:
        self.config = config
        self._rest = rest
        self._agents = agents
        self._tenants = tenants
        self._opt_outs = opt_outs
        self._scheduled = scheduled
        self._leads = leads
        self._calls = calls
        self._greetings = greetings
        self._now = now
        self._gate = gate or CpsGate(config.cps)
        self._billing = billing
        self._queue: asyncio.Queue[tuple[ScheduledCall, asyncio.Future[Placed]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._released_at: datetime | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self, *, poll: bool = True) -> None:
        self._tasks.append(asyncio.create_task(self._place_queued(), name="dialer"))
        if poll:
            self._tasks.append(asyncio.create_task(self._poll(), name="dialer-poll"))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        # Requests still queued stay "placing"; release_stale puts them back later.
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            future.cancel()

    # --- requests ------------------------------------------------------------------------

    def submit(self, call: ScheduledCall) -> asyncio.Future[Placed]:
        """Queue a claimed (status "placing") scheduled call; the future gives its fate."""
        if call.id is None:
            raise ValueError("scheduled call has no id: add it first")
        future: asyncio.Future[Placed] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((call, future))
        return future

    async def run_due(self) -> int:
        """Claim the scheduled calls that are due and queue them; returns how many."""
        now = self._now()
        if self._released_at is None or now - self._released_at >= _RELEASE_EVERY:
            await self._scheduled.release_stale(now, _STALE_CLAIM)
            self._released_at = now
        due = await self._scheduled.claim_due(now, limit=50)
        for call in due:
            self.submit(call)
        return len(due)

    async def _poll(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dialer: polling scheduled calls failed")
            await asyncio.sleep(self.config.poll_s)

    async def _place_queued(self) -> None:
        while True:
            call, future = await self._queue.get()
            if future.cancelled():
                continue
            try:
                placed = await self.place(call)
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as exc:
                log.exception("dialer: call to %s failed", call.to_number)
                placed = Placed(None, "failed", error=str(exc) or type(exc).__name__)
            if not future.done():
                future.set_result(placed)

    # --- one call ------------------------------------------------------------------------

    async def place(self, call: ScheduledCall) -> Placed:
        """Check, pace and place one claimed call. Callers outside this class use submit()."""
        assert call.id is not None
        try:
            tenant = await self._tenants.get(call.tenant)
        except UnknownTenant:
            return await self._fail(call, f"unknown tenant {call.tenant!r}", retry=False)
        if await self._opt_outs.is_opted_out(tenant.slug, call.to_number):
            await self._scheduled.finish(call.id, "cancelled", error="opted out", now=self._now())
            if call.lead_id is not None:
                await self._leads.set_status(call.lead_id, "opted-out", self._now())
            log.info("dialer: %s opted out; call not placed", call.to_number)
            return Placed(None, "opted-out")
        now = self._now()
        held = await self._held(call, now)
        if held is not None:
            return held
        hours = calling_hours(tenant)
        zone = callee_zone(call.to_number, tenant)
        if call.reason != "manual" and not hours.allows(now, zone):
            due_at = hours.next_permitted(now, zone)
            await self._scheduled.reschedule(call.id, due_at, now)
            return Placed(None, "rescheduled", due_at=due_at)
        if self._rest is None or not self.config.from_number:
            return await self._fail(
                call,
                "outbound calls need TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER",
                retry=False,
            )
        agent = tenant_agent(self._agents, call.tenant, call.agent or tenant.outbound_agent)
        if agent is None:
            return await self._fail(call, f"no agent {call.agent!r}", retry=False)
        if self._greetings is not None:
            variables = prompt_variables(call.context, agent)
            text = agent.render_speech(agent.greeting, variables)
            self._greetings.prepare(str(call.id), text, agent.voice)
            if agent.voicemail:
                # Ready too in case a machine answers: it is spoken in the agent's voice.
                self._greetings.warm(agent.render_speech(agent.voicemail, variables), agent.voice)
        base = self.config.public_base_url
        await self._gate.wait()
        try:
            call_sid = await self._rest.create_call(
                to=call.to_number,
                from_=self.config.from_number,
                url=urls.with_query(base, urls.VOICE_PATH, scheduled=call.id),
                status_callback=urls.with_query(base, urls.STATUS_PATH, scheduled=call.id),
                status_callback_event=list(urls.STATUS_EVENTS),
                machine_detection=self.config.machine_detection,
                async_amd="true",
                async_amd_status_callback=urls.with_query(base, urls.AMD_PATH, scheduled=call.id),
                timeout=RING_TIMEOUT_S,
            )
        except TwilioRestError as exc:
            transient = exc.status == 0 or exc.status >= 500 or exc.status == 429
            return await self._fail(call, str(exc), retry=transient)
        now = self._now()
        await self._scheduled.finish(call.id, "placed", call_sid=call_sid, now=now)
        await self._calls.record_progress(
            call_sid,
            status="queued",
            at=now,
            tenant=tenant.slug,
            direction="outbound",
            from_number=self.config.from_number,
            to_number=call.to_number,
            agent=agent.slug,
            lead_id=call.lead_id,
        )
        if call.lead_id is not None:
            await self._leads.set_status(call.lead_id, "calling", now)
        log.info("dialer: %s call %s to %s placed", call.reason, call_sid, call.to_number)
        return Placed(call_sid, "placed")

    async def _held(self, call: ScheduledCall, now: datetime) -> Placed | None:
        """Hold the call back (kept pending) while its tenant is suspended or past its
        monthly spend cap; None when it may go."""
        if self._billing is None:
            return None
        assert call.id is not None
        standing = await self._billing.standing(call.tenant)
        if standing.may_call_out:
            return None
        reason = "tenant suspended" if standing.suspended else "monthly spend cap reached"
        until = now + _HOLD
        await self._billing.held.hold(call.id, until, reason, now)
        log.info("dialer: call to %s held (%s)", call.to_number, reason)
        return Placed(None, "held", due_at=until, error=reason)

    async def _fail(self, call: ScheduledCall, error: str, *, retry: bool) -> Placed:
        assert call.id is not None
        now = self._now()
        log.error("dialer: call to %s not placed: %s", call.to_number, error)
        await self._scheduled.finish(call.id, "failed", error=error, now=now)
        retried = None
        if retry:
            with contextlib.suppress(UnknownTenant):
                tenant = await self._tenants.get(call.tenant)
                retried = await schedule_retry(
                    call, tenant, scheduled=self._scheduled, opt_outs=self._opt_outs, now=now
                )
        if call.lead_id is not None and retried is None:
            await self._leads.set_status(call.lead_id, "failed", now)
        return Placed(None, "failed", error=error, due_at=retried.due_at if retried else None)
