"""What a lead and a finished call become in the CRM.

A lead: its person in the built-in CRM (one per email or phone), the lead as an activity,
and (with Twenty) the person's upsert queued in the outbox. A call's analysis: a note on
the person with the summary, the outcome and the agent's fields, the call as an activity,
and the note queued for Twenty. The lead's status moves with the outcome where the
analysis is stored (voice_agent.storage.analyses), in the same transaction.

Everything here runs after the fact (the lead is already stored, the call is over) and
only writes our own tables; Twenty is only ever reached by the outbox worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from crm_client import ActivityInput, NoteInput, Person, PersonInput
from voice_agent.analysis.service import AnalysedCall
from voice_agent.caller_memory.cache import CallerMemory
from voice_agent.clock import utc_now
from voice_agent.crm.twenty_sync import TWENTY_TOPIC, TwentyDelivery, twenty_message
from voice_agent.outbox import OutboxRepository
from voice_agent.storage.crm_backlog import unrecorded_calls, unrecorded_leads
from voice_agent.storage.database import Database
from voice_agent.storage.leads import Lead, LeadRepository
from voice_agent.storage.people import PeopleRepository

log = logging.getLogger(__name__)

#: How far back the catch-up looks for leads and calls the CRM missed, and how often.
CATCH_UP_LOOKBACK = timedelta(days=7)
CATCH_UP_EVERY_S = 120.0

#: The fields a note shows first, in this order; the rest follow as the schema has them.
_FIELD_ORDER = ("name", "need", "budget", "timeline", "interest_level")


def split_name(name: str) -> tuple[str, str]:
    parts = name.strip().split(maxsplit=1)
    if not parts:
        return "", ""
    return parts[0][:100], (parts[1] if len(parts) > 1 else "")[:100]


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def call_note(call: AnalysedCall, at: datetime) -> NoteInput:
    """The note a call's analysis leaves on the person (markdown body)."""
    analysis = call.analysis
    outcome = str(analysis.get("outcome") or "other")
    summary = str(analysis.get("summary") or "").strip()
    fields: dict[str, Any] = dict(analysis.get("fields") or {})
    ordered = [k for k in _FIELD_ORDER if k in fields] + sorted(
        k for k in fields if k not in _FIELD_ORDER
    )
    lines = [f"**Outcome:** {outcome}", ""]
    if summary:
        lines += [summary, ""]
    for key in ordered:
        value = fields[key]
        if value not in (None, ""):
            lines.append(f"- **{_label(key)}:** {value}")
    lines += ["", f"Call {call.call_sid} ({call.direction}, {at:%Y-%m-%d %H:%M} UTC)"]
    title = f"{call.direction.capitalize()} call {at:%b} {at.day}: {outcome}"
    return NoteInput(
        key=f"call:{call.call_sid}",
        title=title,
        body="\n".join(lines).strip(),
        fields={"outcome": outcome, **fields},
    )


class CrmService:
    def __init__(
        self,
        people: PeopleRepository,
        leads: LeadRepository,
        outbox: OutboxRepository,
        *,
        twenty: TwentyDelivery | None = None,
        wake: Callable[[str], None] | None = None,
        memory: CallerMemory | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.people = people
        self._leads = leads
        self._outbox = outbox
        self.twenty = twenty
        self._wake = wake
        self._memory = memory
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    # --- catching up on what was missed -----------------------------------------------

    async def catch_up(self, database: Database, limit: int = 200) -> int:
        """Record the leads and analysed calls of the last days that have no activity row
        yet (their CRM write failed after their own commit). Returns how many."""
        since = self._clock() - CATCH_UP_LOOKBACK
        async with database.engine.connect() as conn:
            missed_leads = await unrecorded_leads(conn, since, limit)
            missed_calls = await unrecorded_calls(conn, since, limit)
        for lead in missed_leads:
            try:
                await self.lead_captured(lead)
            except Exception:  # one bad row must not hold the others back
                log.exception("crm: lead %s not caught up", lead.id)
        for call in missed_calls:
            try:
                await self.call_analyzed(
                    AnalysedCall(
                        call.call_sid,
                        call.tenant,
                        call.direction,
                        call.number,
                        call.lead_id,
                        call.analysis,
                    )
                )
            except Exception:
                log.exception("crm: call %s not caught up", call.call_sid)
        if missed_leads or missed_calls:
            log.info(
                "crm: caught up on %d leads and %d calls", len(missed_leads), len(missed_calls)
            )
        return len(missed_leads) + len(missed_calls)

    def start(self, database: Database, every_s: float = CATCH_UP_EVERY_S) -> None:
        async def run() -> None:
            while True:
                try:
                    await self.catch_up(database)
                except Exception as exc:  # the database blinked: next round
                    log.warning("crm: catch-up postponed: %s", str(exc).splitlines()[0])
                await asyncio.sleep(every_s)

        if self._task is None:
            self._task = asyncio.create_task(run(), name="crm-catch-up")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.twenty is not None:
            await self.twenty.aclose()

    async def _mirror(self, *messages: Any) -> None:
        if self.twenty is None:
            return
        if await self._outbox.enqueue(*messages) and self._wake is not None:
            self._wake(TWENTY_TOPIC)

    def _forget(self, tenant: str, phone: str | None) -> None:
        if self._memory is not None and phone:
            self._memory.forget(tenant, phone)

    # --- a lead ------------------------------------------------------------------------

    async def lead_captured(self, lead: Lead) -> Person:
        """The lead's person, made or brought up to date; its Twenty upsert queued."""
        assert lead.id is not None
        incoming = PersonInput(lead.first_name, lead.last_name, lead.email, lead.phone)
        person, _ = await self.people.upsert(lead.tenant, incoming)
        person_id = int(person.id)
        source = f" from {lead.source}" if lead.source else ""
        await self._mirror(
            twenty_message(lead.tenant, person_id, incoming, f"{lead.tenant}:lead:{lead.id}")
        )
        # Last: the activity is what tells the catch-up this lead is done.
        await self.people.add_activity(
            lead.tenant,
            person_id,
            ActivityInput("lead", str(lead.id), f"Lead{source}", lead.created_at),
        )
        self._forget(lead.tenant, lead.phone)
        return person

    async def lead_hook(self, lead: Lead) -> None:
        """For OutboundService.on_lead: a CRM failure never fails the lead."""
        try:
            await self.lead_captured(lead)
        except Exception:
            log.exception("lead %s: not written to the CRM", lead.id)

    # --- a call's analysis -------------------------------------------------------------

    async def analysis_hook(self, call: AnalysedCall) -> None:
        """For AnalysisService.on_analyzed (which logs a failure)."""
        await self.call_analyzed(call)

    async def call_analyzed(self, call: AnalysedCall) -> Person | None:
        """The analysis as a note on the call's person (made from the number, the lead or
        the name the call gave, when there is none yet)."""
        lead = await self._leads.get(call.lead_id, call.tenant) if call.lead_id else None
        # A withheld caller id ("anonymous", "client:…") is no phone number.
        number = call.number if call.number.startswith("+") else ""
        phone = number or (lead.phone if lead else "") or None
        email = lead.email if lead else None
        if not phone and not email:
            return None
        person = await self.people.find(call.tenant, phone=phone, email=email)
        fields = call.analysis.get("fields") or {}
        said = fields.get("name") if isinstance(fields.get("name"), str) else ""
        first, last = (lead.first_name, lead.last_name) if lead else split_name(said)
        incoming = PersonInput(first, last, email, phone)
        if person is None or not person.name:
            person, _ = await self.people.upsert(call.tenant, incoming)
        else:
            incoming = PersonInput(
                person.first_name, person.last_name, person.email or email, person.phone or phone
            )
        person_id = int(person.id)
        now = self._clock()
        note = call_note(call, now)
        await self.people.add_note(call.tenant, person_id, note)
        await self._mirror(
            twenty_message(call.tenant, person_id, incoming, f"{call.tenant}:note:{note.key}", note)
        )
        # Last: the activity is what tells the catch-up this call is done.
        await self.people.add_activity(
            call.tenant,
            person_id,
            ActivityInput("call", call.call_sid, note.title, now),
        )
        self._forget(call.tenant, phone)
        return person
