"""Retrying unanswered outbound calls on the tenant's schedule, inside its calling hours in
the callee's time zone, never to a number that opted out."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from voice_agent.calling_hours import CallingHours
from voice_agent.phone import time_zone_of
from voice_agent.storage.opt_outs import OptOutRepository
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository
from voice_agent.storage.tenants import Tenant

log = logging.getLogger(__name__)

#: Final call statuses worth another try.
RETRY_STATUSES = frozenset({"no-answer", "busy", "failed"})


def calling_hours(tenant: Tenant) -> CallingHours:
    return CallingHours(tenant.calling_start_min, tenant.calling_end_min, tenant.calling_days)


def callee_zone(number: str, tenant: Tenant) -> str:
    return time_zone_of(number, tenant.timezone)


async def schedule_retry(
    previous: ScheduledCall,
    tenant: Tenant,
    *,
    scheduled: ScheduledCallRepository,
    opt_outs: OptOutRepository,
    now: datetime,
) -> ScheduledCall | None:
    """Queue the next attempt after ``previous`` failed to connect; None when the tenant's
    attempts are used up, the number opted out, or the retry is already queued."""
    if previous.id is None:
        raise ValueError("previous call has no id")
    if previous.attempt >= tenant.retry_attempts:
        log.info("no retry for %s: %d attempts used", previous.to_number, previous.attempt + 1)
        return None
    if await opt_outs.is_opted_out(tenant.slug, previous.to_number):
        log.info("no retry for %s: opted out", previous.to_number)
        return None
    # Twilio retries a callback it thinks failed: one retry per failed attempt.
    for waiting in await scheduled.pending(tenant.slug):
        if (waiting.context or {}).get("retry_of") == previous.id:
            return None
    earliest = now + timedelta(minutes=tenant.retry_interval_min)
    due_at = calling_hours(tenant).next_permitted(earliest, callee_zone(previous.to_number, tenant))
    retry = ScheduledCall(
        tenant=tenant.slug,
        to_number=previous.to_number,
        due_at=due_at,
        reason="retry",
        agent=previous.agent,
        attempt=previous.attempt + 1,
        lead_id=previous.lead_id,
        context={**(previous.context or {}), "retry_of": previous.id},
        created_at=now,
    )
    await scheduled.add(retry)
    log.info(
        "retry %d of %d for %s at %s",
        retry.attempt,
        tenant.retry_attempts,
        retry.to_number,
        due_at.isoformat(),
    )
    return retry
