"""The SMS tools' effects on storage: hand a thread to staff, book a call back."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from voice_agent.calling_hours import CallingHours
from voice_agent.phone import time_zone_of
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository
from voice_agent.storage.sms import SmsRepository, SmsThread
from voice_agent.storage.tenants import Tenant

log = logging.getLogger(__name__)


def local_zone(tenant: Tenant, number: str) -> str:
    """The zone the other party lives in, as far as their number tells; else the tenant's."""
    return time_zone_of(number, tenant.timezone)


def parse_local_time(at: str, zone: str) -> datetime:
    """An ISO 8601 time from the model; without an offset it is the party's local time."""
    parsed = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed


class ThreadTools:
    """TextTools for one thread (see voice_agent.conversation.text_mode)."""

    def __init__(
        self,
        thread: SmsThread,
        tenant: Tenant,
        repo: SmsRepository,
        scheduled: ScheduledCallRepository,
        now: datetime | None = None,
    ) -> None:
        self._thread = thread
        self._tenant = tenant
        self._repo = repo
        self._scheduled = scheduled
        self._now = now
        self.booked: ScheduledCall | None = None

    async def hand_off(self, reason: str) -> str:
        await self._repo.set_state(self._thread.id, "handoff")
        self._thread.state = "handoff"
        log.info(
            "sms thread %d (%s, %s) handed off to staff: %s",
            self._thread.id,
            self._tenant.slug,
            self._thread.number,
            reason or "no reason given",
        )
        return "handed off: a member of staff will text back; you will not be asked again"

    async def schedule_callback(self, at: str | None, note: str) -> str:
        tenant, number = self._tenant, self._thread.number
        zone = local_zone(tenant, number)
        now = self._now or datetime.now(UTC)
        asked = now
        if at:
            try:
                asked = parse_local_time(at, zone)
            except ValueError:
                return f"error: {at!r} is not an ISO 8601 date and time; ask when to call"
        asked = max(asked, now)
        hours = CallingHours(tenant.calling_start_min, tenant.calling_end_min, tenant.calling_days)
        due = hours.next_permitted(asked, zone)
        call = ScheduledCall(
            tenant=tenant.slug,
            to_number=number,
            due_at=due.astimezone(UTC),
            reason="callback",
            agent=tenant.outbound_agent,
            context={"source": "sms", "sms_thread_id": self._thread.id, "note": note},
        )
        await self._scheduled.add(call)
        self.booked = call
        local = due.astimezone(ZoneInfo(zone))
        when = local.strftime("%A %B %d at %I:%M %p").replace(" 0", " ")
        moved = "" if due == asked else " (the asked time was outside calling hours)"
        return f"call back booked for {when} ({zone}){moved}"
