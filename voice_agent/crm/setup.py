"""Builds the CRM a server runs: the built-in one always; with TWENTY_API_URL and
TWENTY_API_KEY, the Twenty client and its outbox delivery."""

from __future__ import annotations

from typing import Any

from crm_client import RequestGate, SlidingWindowLimiter, TwentyClient
from voice_agent.caller_memory.cache import CallerMemory
from voice_agent.clock import Clock
from voice_agent.crm.service import CrmService
from voice_agent.crm.twenty_sync import TwentyDelivery
from voice_agent.outbox import OutboxWorker
from voice_agent.settings import Settings
from voice_agent.storage.database import Database
from voice_agent.storage.leads import LeadRepository
from voice_agent.storage.people import PeopleRepository


def twenty_gate(settings: Settings, redis: Any | None, prefix: str = "va:twenty:") -> RequestGate:
    """Twenty's budget: this process's own, or (with Redis) one shared by every worker
    (requests evenly spaced, at most one per 60/TWENTY_REQUESTS_PER_MINUTE seconds)."""
    if redis is not None:
        from voice_agent.outbound.pacing import RedisCpsGate

        return RedisCpsGate(redis, settings.twenty_requests_per_minute / 60, prefix=prefix)
    return SlidingWindowLimiter(settings.twenty_requests_per_minute, 60.0)


def build_crm(
    settings: Settings,
    database: Database,
    outbox: OutboxWorker,
    memory: CallerMemory | None,
    clock: Clock,
    redis: Any | None = None,
) -> CrmService:
    people = PeopleRepository(database, clock)
    twenty = None
    if settings.twenty_api_url and settings.twenty_api_key:
        client = TwentyClient(
            settings.twenty_api_url,
            settings.twenty_api_key,
            gate=twenty_gate(settings, redis),
            timeout_s=settings.twenty_timeout_s,
        )
        twenty = TwentyDelivery(client, people, clock=clock)
        outbox.register(twenty)
    return CrmService(
        people,
        LeadRepository(database),
        outbox.repository,
        twenty=twenty,
        wake=outbox.wake,
        memory=memory,
        clock=clock,
    )
