"""Outbound flows as the webhooks see them: call a new lead, follow a call's progress,
act on the answering-machine verdict."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prompts import AgentDefinition
from voice_agent.agents.book import lookup as tenant_agent
from voice_agent.billing.prices import CALL_SECONDS
from voice_agent.call_tap import CallTap
from voice_agent.clock import Clock
from voice_agent.conversation.phrases import PhraseCache
from voice_agent.outbound.dialer import Dialer, Placed, prompt_variables
from voice_agent.outbound.intake import IntakeLock
from voice_agent.outbound.retries import RETRY_STATUSES, schedule_retry
from voice_agent.storage.calls import FINAL_STATUSES, CallRepository
from voice_agent.storage.leads import Lead, LeadRepository
from voice_agent.storage.metering import UsageRepository
from voice_agent.storage.opt_outs import OptOutRepository
from voice_agent.storage.records import UsageRecord
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository
from voice_agent.storage.tenants import TenantRepository, UnknownTenant
from voice_agent.telephony import twiml
from voice_agent.telephony.rest import TwilioRest, TwilioRestError

log = logging.getLogger(__name__)

#: AnsweredBy values after the machine's greeting ended (DetectMessageEnd): speak now.
VOICEMAIL_VERDICTS = frozenset({"machine_end_beep", "machine_end_silence", "machine_end_other"})
#: A machine whose greeting end will not be reported, or a fax: nothing to say to it.
HANG_UP_VERDICTS = frozenset({"machine_start", "fax"})
_PRICE_ATTEMPTS = 3
_VOICEMAIL_SYNTH_S = 5.0


@dataclass(frozen=True, slots=True)
class LeadCall:
    lead: Lead
    duplicate: bool
    call_sid: str | None
    #: "placed" | "queued" (still waiting for its CPS slot) | "opted-out" | "rescheduled"
    #: | "failed"
    status: str
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallProgress:
    call_sid: str
    status: str
    duration_s: int | None = None
    price: float | None = None
    price_unit: str | None = None
    from_number: str = ""
    to_number: str = ""


class OutboundService:
    def __init__(
        self,
        *,
        dialer: Dialer,
        rest: TwilioRest | None,
        agents: dict[str, AgentDefinition],
        tenants: TenantRepository,
        opt_outs: OptOutRepository,
        scheduled: ScheduledCallRepository,
        leads: LeadRepository,
        calls: CallRepository,
        duplicate_window_s: float,
        now: Clock,
        intake: IntakeLock | None = None,
        price_delay_s: float = 60.0,
        default_tenant: str = "default",
        live_calls: Mapping[str, CallTap] | None = None,
        phrases: PhraseCache | None = None,
        usage: UsageRepository | None = None,
    ) -> None:
        self.dialer = dialer
        self._rest = rest
        self._agents = agents
        self._tenants = tenants
        self._opt_outs = opt_outs
        self._scheduled = scheduled
        self.leads = leads
        self._calls = calls
        self._window = timedelta(seconds=duplicate_window_s)
        self.now = now
        # Two identical submissions racing (here or in another worker) make one lead.
        self._intake = intake or IntakeLock()
        self._price_delay_s = price_delay_s
        self._default_tenant = default_tenant
        self._live_calls: Mapping[str, CallTap] = live_calls if live_calls is not None else {}
        self._phrases = phrases
        self._usage = usage
        self._background: set[asyncio.Task[None]] = set()
        #: Awaited with each new lead once stored (not with duplicates): the CRM (#12).
        self.on_lead: list[Callable[[Lead], Awaitable[None]]] = []
        #: #15: reaches a call streaming on another worker (set by outbound.setup).
        self.control: Any = None

    async def aclose(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # --- leads ---------------------------------------------------------------------------

    async def take_lead(self, lead: Lead, wait_s: float) -> LeadCall:
        """Store the lead (or find the one it duplicates) and call it through the dialer;
        waits up to ``wait_s`` for the CallSid."""
        async with self._intake.hold(lead.tenant, lead.phone, lead.email or ""):
            now = self.now()
            existing = await self.leads.recent_duplicate(
                lead.tenant, lead.phone, lead.email, now - self._window
            )
            if existing is None:
                lead.created_at = lead.updated_at = now
                await self.leads.add(lead)
        if existing is not None:
            assert existing.id is not None
            attempts = await self._scheduled.for_lead(existing.id)
            sid = next((c.call_sid for c in attempts if c.call_sid), None)
            status = attempts[0].status if attempts else existing.status
            return LeadCall(existing, True, sid, status)
        assert lead.id is not None
        for hook in self.on_lead:
            await hook(lead)
        call = ScheduledCall(
            tenant=lead.tenant,
            to_number=lead.phone,
            due_at=now,
            reason="lead",
            lead_id=lead.id,
            context=lead.variables(),
            status="placing",  # claimed by this request: the poller must not take it too
            created_at=now,
        )
        await self._scheduled.add(call)
        placing = self.dialer.submit(call)
        done, _ = await asyncio.wait({placing}, timeout=wait_s)
        if not done:
            return LeadCall(lead, False, None, "queued")
        placed: Placed = placing.result()
        return LeadCall(lead, False, placed.call_sid, placed.outcome, placed.due_at)

    # --- progress ------------------------------------------------------------------------

    async def scheduled_for(self, scheduled_id: int | None, call_sid: str) -> ScheduledCall | None:
        """The scheduled call a webhook's ``scheduled`` parameter names, if it is this call's."""
        if scheduled_id is None:
            return None
        call = await self._scheduled.get(scheduled_id)
        if call is None or (call.call_sid is not None and call.call_sid != call_sid):
            return None
        return call

    async def call_progress(self, progress: CallProgress, scheduled: ScheduledCall | None) -> None:
        """A status callback: store it; a final no-answer/busy/failed schedules a retry."""
        now = self.now()
        if scheduled is not None:
            tenant_slug, direction = scheduled.tenant, "outbound"
            agent = scheduled.agent or ""
            from_number, to_number = progress.from_number, scheduled.to_number
        else:
            route, any_numbers = await self._tenants.lookup(progress.to_number)
            tenant_slug = route.tenant.slug if route else ""
            direction, agent = "inbound", route.agent if route else ""
            if not any_numbers:
                tenant_slug = self._default_tenant  # the embedded install: all calls are its
            from_number, to_number = progress.from_number, progress.to_number
        await self._calls.record_progress(
            progress.call_sid,
            status=progress.status,
            at=now,
            tenant=tenant_slug,
            direction=direction,
            from_number=from_number,
            to_number=to_number,
            agent=agent,
            duration_s=progress.duration_s,
            price=progress.price,
            price_unit=progress.price_unit,
            lead_id=scheduled.lead_id if scheduled else None,
        )
        if progress.status not in FINAL_STATUSES:
            return
        if (
            self._usage is not None
            and progress.duration_s
            and tenant_slug
            # A browser test call has no phone leg; a callback naming one is not billed.
            and not await self._calls.is_test(progress.call_sid)
        ):
            # Twilio's own count of the call's seconds: the one it bills.
            await self._usage.add(
                UsageRecord(
                    key=f"{progress.call_sid}:call_seconds",
                    tenant=tenant_slug,
                    call_sid=progress.call_sid,
                    meter=CALL_SECONDS,
                    quantity=progress.duration_s,
                    model=f"twilio:{direction}",
                    at=now,
                )
            )
        if progress.price is None and progress.status == "completed" and self._rest is not None:
            task = asyncio.create_task(self._fetch_price(progress.call_sid))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        if scheduled is None:
            return
        facts = await self._calls.call_facts(progress.call_sid) or {}
        answered_by = facts.get("answered_by") or ""
        if progress.status in RETRY_STATUSES:
            await self._calls.set_call_facts(progress.call_sid, outcome=progress.status)
            try:
                tenant = await self._tenants.get(scheduled.tenant)
            except UnknownTenant:
                return
            await schedule_retry(
                scheduled, tenant, scheduled=self._scheduled, opt_outs=self._opt_outs, now=now
            )
            if scheduled.lead_id is not None:
                status = "no-answer" if progress.status != "failed" else "failed"
                await self.leads.set_status(scheduled.lead_id, status, now)
        elif progress.status == "completed" and scheduled.lead_id is not None:
            if facts.get("outcome") == "voicemail":
                status = "voicemail"
            elif answered_by.startswith("machine") or answered_by == "fax":
                status = "no-answer"  # a machine nobody could leave a message on
            else:
                status = "contacted"
            # The call's analysis (#12) may have set a finer status already: keep it.
            await self.leads.set_status(scheduled.lead_id, status, now, only_from=("calling",))

    async def _fetch_price(self, call_sid: str) -> None:
        """Status callbacks carry no price; Twilio sets it on the call a while after the end."""
        assert self._rest is not None
        delay = self._price_delay_s
        for _ in range(_PRICE_ATTEMPTS):
            await asyncio.sleep(delay)
            try:
                price, unit = await self._rest.call_price(call_sid)
            except TwilioRestError as exc:
                log.warning("call %s: price not fetched: %s", call_sid, exc)
                price, unit = None, None
            if price is not None:
                await self._calls.set_call_facts(call_sid, price=price, price_unit=unit)
                return
            delay *= 2
        log.info("call %s: Twilio had no price for it after %d tries", call_sid, _PRICE_ATTEMPTS)

    # --- answering machine ---------------------------------------------------------------

    async def machine_verdict(
        self, call_sid: str, answered_by: str, scheduled: ScheduledCall | None
    ) -> str:
        """The async AMD result. A machine past its beep gets the agent's voicemail message,
        then the call hangs up: in the agent's own voice on the media stream when the call
        streams through this process, else spoken by Twilio (``<Say>``). A machine that
        cannot take a message is hung up on. Returns "voicemail", "machine" (hung up),
        "none" or "failed"."""
        await self._calls.set_call_facts(call_sid, answered_by=answered_by[:32])
        message: tuple[str, AgentDefinition] | None = None
        if answered_by in VOICEMAIL_VERDICTS:
            message = await self._voicemail(scheduled)
            action = "voicemail" if message is not None else "machine"
        elif answered_by in HANG_UP_VERDICTS:
            action = "machine"
        else:
            return "none"  # a person (or unknown): the agent is already talking to them
        if message is None or not await self._leave_on_stream(call_sid, *message):
            if not await self._act_by_rest(call_sid, answered_by, message):
                return "failed"
        await self._calls.set_call_facts(call_sid, outcome=action)
        if action == "voicemail" and scheduled is not None and scheduled.lead_id is not None:
            await self.leads.set_status(scheduled.lead_id, "voicemail", self.now())
        log.info("call %s: answered by %s: %s", call_sid, answered_by, action)
        return action

    async def _leave_on_stream(self, call_sid: str, text: str, agent: AgentDefinition) -> bool:
        tap = self._live_calls.get(call_sid)
        if tap is None and self.control is not None:
            # Streaming on another worker: it synthesises and plays the message there.
            ack = await self.control.send(
                call_sid,
                "voicemail",
                timeout_s=_VOICEMAIL_SYNTH_S + 1,
                text=text,
                voice=agent.voice,
            )
            return bool(ack and ack.get("ok"))
        if tap is None or self._phrases is None:
            return False
        try:
            async with asyncio.timeout(_VOICEMAIL_SYNTH_S):
                audio = await self._phrases.get(text, agent.voice)  # made while it rang
        except Exception as exc:
            log.warning("call %s: voicemail audio unavailable (%s); Twilio says it", call_sid, exc)
            return False
        # The webhook answers now; the message plays for as long as it lasts.
        task = asyncio.create_task(tap.leave_message(audio))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return True

    async def _act_by_rest(
        self, call_sid: str, answered_by: str, message: tuple[str, AgentDefinition] | None
    ) -> bool:
        if self._rest is None:
            log.error("call %s: answered by %s, but no Twilio REST client", call_sid, answered_by)
            return False
        try:
            if message is None:
                await self._rest.hangup(call_sid)
            else:
                text, agent = message
                document = twiml.say_and_hangup(text, language=twiml.say_language(agent.language))
                await self._rest.update_twiml(call_sid, document)
        except TwilioRestError as exc:
            log.error("call %s: cannot act on AMD verdict %s: %s", call_sid, answered_by, exc)
            return False
        return True

    async def _voicemail(
        self, scheduled: ScheduledCall | None
    ) -> tuple[str, AgentDefinition] | None:
        agent = await self.agent_for(scheduled)
        if agent is None or not agent.voicemail:
            return None
        variables = prompt_variables(scheduled and scheduled.context, agent)
        return agent.render_speech(agent.voicemail, variables), agent

    async def agent_for(self, scheduled: ScheduledCall | None) -> AgentDefinition | None:
        """The agent that makes a scheduled call: its own, else its tenant's outbound agent."""
        if scheduled is None:
            return None
        slug = scheduled.agent
        if not slug:
            try:
                slug = (await self._tenants.get(scheduled.tenant)).outbound_agent
            except UnknownTenant:
                return None
        return tenant_agent(self._agents, scheduled.tenant, slug)
