"""Wiring the outbound flows into a running server (called from the app's lifespan)."""

from __future__ import annotations

from voice_agent.conversation.phrases import PhraseCache
from voice_agent.outbound.dialer import Dialer, DialerConfig
from voice_agent.outbound.greetings import GreetingStore, SharedGreetings
from voice_agent.outbound.intake import IntakeLock
from voice_agent.outbound.pacing import RedisCpsGate
from voice_agent.outbound.service import OutboundService
from voice_agent.runtime import Runtime
from voice_agent.storage.leads import LeadRepository
from webhooks.lead import LeadLimits
from webhooks.rate_limits import MemoryRateLimiter, RateLimiter, RedisRateLimiter

#: Personal greetings cached by text, apart from the agents' fixed phrases.
_PERSONAL_GREETINGS = 64


def build_outbound(runtime: Runtime) -> OutboundService:
    settings = runtime.settings
    greetings = GreetingStore(
        PhraseCache(runtime.pipeline.tts, _PERSONAL_GREETINGS),
        shared=SharedGreetings(runtime.redis) if runtime.redis is not None else None,  # type: ignore[arg-type]
    )
    runtime.greetings = greetings
    leads = LeadRepository(runtime.database)
    dialer = Dialer(
        config=DialerConfig(
            public_base_url=settings.public_base_url,
            from_number=settings.twilio_from_number,
            cps=settings.outbound_cps,
            poll_s=settings.dialer_poll_s,
        ),
        rest=runtime.rest,
        agents=runtime.agents,
        tenants=runtime.tenants,
        opt_outs=runtime.opt_outs,
        scheduled=runtime.scheduled_calls,
        leads=leads,
        calls=runtime.calls,
        greetings=greetings,
        now=runtime.clock,
        gate=(
            RedisCpsGate(runtime.redis, settings.outbound_cps)  # type: ignore[arg-type]
            if runtime.redis is not None
            else None
        ),
        billing=runtime.billing,
    )
    service = OutboundService(
        dialer=dialer,
        rest=runtime.rest,
        agents=runtime.agents,
        tenants=runtime.tenants,
        opt_outs=runtime.opt_outs,
        scheduled=runtime.scheduled_calls,
        leads=leads,
        calls=runtime.calls,
        duplicate_window_s=settings.lead_duplicate_window_s,
        now=runtime.clock,
        intake=IntakeLock(runtime.redis),  # type: ignore[arg-type]
        price_delay_s=settings.price_fetch_delay_s,
        default_tenant=settings.default_tenant,
        live_calls=runtime.live_calls,
        phrases=greetings.synthesiser,
        usage=runtime.billing.usage if runtime.billing is not None else None,
    )
    if runtime.crm is not None:
        service.on_lead.append(runtime.crm.lead_hook)  # a new lead's person in the CRM (#12)
    service.control = runtime.control
    return service


def build_lead_limits(runtime: Runtime) -> LeadLimits:
    settings = runtime.settings
    per_ip: RateLimiter
    per_tenant: RateLimiter
    if runtime.redis is not None:
        per_ip = RedisRateLimiter(runtime.redis, settings.lead_rate_per_ip_per_min)  # type: ignore[arg-type]
        per_tenant = RedisRateLimiter(runtime.redis, settings.lead_rate_per_tenant_per_min)  # type: ignore[arg-type]
    else:
        per_ip = MemoryRateLimiter(settings.lead_rate_per_ip_per_min)
        per_tenant = MemoryRateLimiter(settings.lead_rate_per_tenant_per_min)
    return LeadLimits(per_ip, per_tenant)
