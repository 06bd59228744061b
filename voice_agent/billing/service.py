"""A tenant's standing with the platform: its cost and price, its cap, its suspension.

Suspension changes a flag and nothing else: calls, texts, scheduled calls and usage rows
all stay. The flows that serve a tenant ask ``standing`` before they act."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from voice_agent.billing.costs import Costs
from voice_agent.billing.meter_events import MeterEventDelivery
from voice_agent.billing.prices import PriceTable
from voice_agent.billing.stripe_api import StripeApi
from voice_agent.billing.tenant_options import NEW_CUSTOMER
from voice_agent.clock import Clock, utc_now
from voice_agent.settings import Settings
from voice_agent.storage.billing import BillingRepository, HeldCalls, TenantBilling
from voice_agent.storage.database import Database
from voice_agent.storage.metering import UsageRepository
from voice_agent.tenant_setup import TenantFieldError

log = logging.getLogger(__name__)

#: Called with (tenant, "tenant.suspended" | "tenant.restored", data) once the change is
#: stored; the events package sends it on (see Billing.on_change).
ChangeHook = Callable[[str, str, dict[str, Any]], Any]


@dataclass(slots=True, frozen=True)
class Standing:
    suspended: bool
    over_cap: bool
    cap_share: float | None  # share of the monthly cap spent, None without a cap
    warn: bool  # cap_share at or past the warning share

    @property
    def may_call_out(self) -> bool:
        return not (self.suspended or self.over_cap)


def twilio_usd(price: float | None, unit: str | None) -> float | None:
    """Twilio's price for a call, when it gave one in dollars."""
    if price is None or (unit or "USD").upper() != "USD":
        return None
    return price


class Billing:
    def __init__(self, db: Database, settings: Settings, clock: Clock = utc_now) -> None:
        self._clock = clock
        self.accounts = BillingRepository(db)
        self.held = HeldCalls(db)
        self.usage = UsageRepository(db, report=bool(settings.stripe_api_key))
        self.prices = PriceTable.from_settings(settings)
        self.costs = Costs(self.usage, self.accounts, self.prices)
        self._settings = settings
        self._warning = settings.spend_cap_warning
        self._hooks: list[ChangeHook] = []
        #: Usage goes to Stripe only with a key; the outbox delivers it (meter_events).
        self.stripe: StripeApi | None = (
            StripeApi(settings.stripe_api_key, settings.stripe_api_base_url)
            if settings.stripe_api_key
            else None
        )

    @property
    def reports_usage(self) -> bool:
        return self.stripe is not None

    def meter_delivery(self) -> MeterEventDelivery | None:
        """The outbox delivery of usage rows to Stripe, when Stripe is set up."""
        if self.stripe is None:
            return None
        s = self._settings
        return MeterEventDelivery(
            self.stripe, self.accounts, self.prices, s.stripe_meter_event_name, s.stripe_batch_size
        )

    async def aclose(self) -> None:
        if self.stripe is not None:
            await self.stripe.aclose()

    async def configure(self, tenant: str, name: str, values: dict[str, Any]) -> TenantBilling:
        """Store billing fields (tenant_options.parse); a Stripe customer of "new" is
        created through Stripe's API first. Raises TenantFieldError, or CustomerTaken
        when the customer is another tenant's."""
        values = dict(values)
        if values.get("stripe_customer_id") == NEW_CUSTOMER:
            key = self._settings.stripe_api_key
            if not key:
                raise TenantFieldError("stripe_customer", "creating one needs STRIPE_API_KEY")
            if self.stripe is not None:
                values["stripe_customer_id"] = await self.stripe.create_customer(tenant, name)
            else:
                api = StripeApi(key, self._settings.stripe_api_base_url)
                try:
                    values["stripe_customer_id"] = await api.create_customer(tenant, name)
                finally:
                    await api.aclose()
        return await self.accounts.update(tenant, **values)

    def on_change(self, hook: ChangeHook) -> None:
        self._hooks.append(hook)

    async def account(self, tenant: str) -> TenantBilling:
        """The tenant's billing state, suspending it first if an unpaid invoice's grace
        period has run out (Stripe may send nothing more once its retries end)."""
        account = await self.accounts.get(tenant)
        failed = account.payment_failed_at
        if failed is not None and not account.suspended:
            if self._clock() - failed >= timedelta(days=account.grace_days):
                account = await self.suspend(tenant, "payment-failed")
        return account

    async def suspended_since(self, tenant: str) -> datetime | None:
        return (await self.account(tenant)).suspended_at

    async def payment_failed(self, tenant: str) -> TenantBilling:
        """An unpaid invoice: the grace period starts at the first one's arrival."""
        account = await self.accounts.get(tenant)
        if account.payment_failed_at is None:
            account = await self.accounts.update(tenant, payment_failed_at=self._clock())
            log.warning(
                "tenant %s: invoice payment failed; grace %d days", tenant, account.grace_days
            )
        return await self.account(tenant)

    async def standing(self, tenant: str) -> Standing:
        account = await self.account(tenant)
        share: float | None = None
        if account.monthly_cap_usd is not None:
            share = (await self.costs.month(tenant)).cap_share
        return Standing(
            suspended=account.suspended,
            over_cap=share is not None and share >= 1.0,
            cap_share=share,
            warn=share is not None and share >= self._warning,
        )

    async def suspend(self, tenant: str, reason: str) -> TenantBilling:
        """Suspend (once: suspending a suspended tenant changes nothing, emits nothing)."""
        account = await self.accounts.get(tenant)
        if account.suspended:
            return account
        now = self._clock()
        account = await self.accounts.update(tenant, suspended_at=now, suspended_reason=reason)
        log.warning("tenant %s suspended: %s", tenant, reason)
        await self._changed(
            tenant, "tenant.suspended", {"reason": reason, "suspended_at": now.isoformat()}
        )
        return account

    async def restore(self, tenant: str, reason: str) -> TenantBilling:
        account = await self.accounts.get(tenant)
        if not account.suspended:
            if account.payment_failed_at is not None:
                return await self.accounts.update(tenant, payment_failed_at=None)
            return account
        account = await self.accounts.update(
            tenant, suspended_at=None, suspended_reason=None, payment_failed_at=None
        )
        released = await self.held.release(tenant, self._clock())
        log.warning("tenant %s restored (%s); %d held calls due now", tenant, reason, released)
        await self._changed(
            tenant,
            "tenant.restored",
            {"reason": reason, "restored_at": self._clock().isoformat()},
        )
        return account

    async def _changed(self, tenant: str, kind: str, data: dict[str, Any]) -> None:
        for hook in self._hooks:
            try:
                result = hook(tenant, kind, data)
                if hasattr(result, "__await__"):
                    await result
            except Exception:
                log.exception("billing change hook failed for %s %s", tenant, kind)
