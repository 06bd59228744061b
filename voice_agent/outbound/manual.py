"""`voice-agent call +E164 [--tenant SLUG]`: an outbound agent call placed by hand.

By default the command places the call itself, through the Twilio REST API, with exactly the
URLs the server's dialer uses (voice, status and AMD webhooks on PUBLIC_BASE_URL, naming a
scheduled call of reason "manual" it records first), so the running server answers it like
any other outbound call. Manual calls skip the calling-hours check (a person chose to call
now) but never ring a number that opted out. Placed this way the greeting is synthesised by
the server when the call is answered, not while it rings.

With ``--queue`` the command only records the scheduled call, due now: the server's dialer
places it within DIALER_POLL_S, through its CPS-capped queue and with the greeting made
while the phone rings.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice_agent.clock import utc_now
from voice_agent.outbound.dialer import Dialer, DialerConfig
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.runtime import default_tenant
from voice_agent.settings import Settings
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.leads import LeadRepository
from voice_agent.storage.migrate import upgrade
from voice_agent.storage.opt_outs import OptOutRepository
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository
from voice_agent.storage.tenants import TenantRepository, UnknownTenant
from voice_agent.telephony.rest import TwilioRest


@dataclass(frozen=True, slots=True)
class ManualCall:
    exit_code: int
    message: str


async def manual_call(
    settings: Settings,
    number: str,
    tenant_slug: str | None = None,
    first_name: str | None = None,
    queue: bool = False,
) -> ManualCall:
    from prompts.loader import load_agents

    try:
        to_number = to_e164(number)
    except InvalidPhoneNumber as exc:
        return ManualCall(2, f"NUMBER: {exc}")
    if not queue and not (
        settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number
    ):
        return ManualCall(
            2, "TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER must be set"
        )
    await upgrade(settings.database_url)
    database = await Database.connect(settings.database_url)
    rest: TwilioRest | None = None
    try:
        tenants = TenantRepository(database)
        slug = tenant_slug or settings.default_tenant
        agents = load_agents()
        if slug == settings.default_tenant:
            # As the server does at start: a fresh install's calls have an owner.
            await tenants.ensure(default_tenant(settings, agents))
        try:
            tenant = await tenants.get(slug)
        except UnknownTenant:
            return ManualCall(2, f"--tenant: no tenant {slug!r}")
        opt_outs = OptOutRepository(database)
        if await opt_outs.is_opted_out(tenant.slug, to_number):
            return ManualCall(1, f"{to_number} opted out of calls from {tenant.slug}; not called")
        scheduled = ScheduledCallRepository(database)
        now = utc_now()
        call = ScheduledCall(
            tenant=tenant.slug,
            to_number=to_number,
            due_at=now,
            reason="manual",
            context={"first_name": first_name} if first_name else None,
            status="pending" if queue else "placing",
            created_at=now,
        )
        call_id = await scheduled.add(call)
        if queue:
            return ManualCall(0, f"queued as scheduled call {call_id}")
        assert settings.twilio_account_sid and settings.twilio_auth_token
        rest = TwilioRest(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            settings.twilio_api_base_url,
        )
        dialer = Dialer(
            config=DialerConfig(settings.public_base_url, settings.twilio_from_number),
            rest=rest,
            agents=agents,
            tenants=tenants,
            opt_outs=opt_outs,
            scheduled=scheduled,
            leads=LeadRepository(database),
            calls=CallRepository(database),
        )
        placed = await dialer.place(call)
    finally:
        if rest is not None:
            await rest.aclose()
        await database.dispose()
    if placed.call_sid is None:
        return ManualCall(1, f"call not placed: {placed.error or placed.outcome}")
    return ManualCall(0, placed.call_sid)
