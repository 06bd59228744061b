"""Where a tenant's events go: its own webhook (tenants.events_webhook_url / _secret)
when it has one, else EVENTS_WEBHOOK_URL / EVENTS_WEBHOOK_SECRET.

The tenants' overrides are cached (they change on an admin's save, rarely) so that
``wants`` can answer on the call path without a query; a save in this process refreshes
at once, one in another worker within ``ttl_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from standardwebhooks import Webhook

from voice_agent.storage.event_targets import EventTargetRepository, TenantTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    signer: Webhook
    own: bool  # the tenant's own webhook, not the global one


class Targets:
    def __init__(
        self,
        repository: EventTargetRepository,
        url: str | None,
        secret: str | None,
        ttl_s: float = 30.0,
    ) -> None:
        self.repository = repository
        self._global = Target(url, Webhook(secret), False) if url and secret else None
        self._ttl_s = ttl_s
        self._overrides: dict[str, TenantTarget] = {}
        self._signers: dict[str, Webhook] = {}
        self._loaded_at = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None

    @property
    def has_global(self) -> bool:
        return self._global is not None

    async def refresh(self) -> None:
        overrides = await self.repository.overrides()
        self._signers = {
            slug: Webhook(t.secret) for slug, t in overrides.items() if t.url and t.secret
        }
        self._overrides = overrides
        self._loaded_at = time.monotonic()

    def wants(self, tenant: str) -> bool:
        """Whether events of ``tenant`` have anywhere to go (answered from the cache; a
        stale cache is refreshed in the background, never waited on)."""
        if time.monotonic() - self._loaded_at > self._ttl_s:
            self._refresh_soon()
        return self._global is not None or tenant in self._signers

    def _refresh_soon(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._refreshing = loop.create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:
            # Keeps the last known overrides; the next emit tries again after the ttl.
            self._loaded_at = time.monotonic()
            log.warning("events: tenant webhooks not reloaded: %s", exc)

    async def resolve(self, tenant: str) -> Target | None:
        if time.monotonic() - self._loaded_at > self._ttl_s:
            await self._refresh_quietly()
        override = self._overrides.get(tenant)
        signer = self._signers.get(tenant)
        if override is not None and override.url and signer is not None:
            return Target(override.url, signer, True)
        return self._global

    async def set_override(self, tenant: str, url: str | None, secret: str | None) -> None:
        await self.repository.set(tenant, url, secret)
        await self.refresh()
