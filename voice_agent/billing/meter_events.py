"""Usage rows to Stripe as v1 meter events, from the outbox (topic "stripe").

One meter event per usage row: ``event_name`` STRIPE_METER_EVENT_NAME, the tenant's
customer, and as value what the tenant pays for the row in millionths of a dollar (the
price table's cost times the tenant's markup, rounded), so one Billing Meter priced at
$0.000001 a unit bills every kind of usage. The row's key is the event's ``identifier``
and the request's idempotency key: a row retried after a lost answer is counted once.
Rows worth nothing (bundled models) are settled without a request; rows of tenants with
no Stripe customer are kept as rejected (replayable once a customer is set)."""

from __future__ import annotations

import asyncio
import time

from voice_agent.billing.prices import PriceTable
from voice_agent.billing.stripe_api import StripeApi
from voice_agent.outbox import Delivered, OutboxItem, Outcome, Rejected, Retry
from voice_agent.storage.billing import BillingRepository, TenantBilling
from voice_agent.storage.metering import MILLI, STRIPE_TOPIC

MICRO = 1_000_000
#: Stripe refuses meter events older than 35 days (integrations.md §8.2); a day's margin.
_OLDEST_S = 34 * 86400


def micro_usd(prices: PriceTable, markup: float, meter: str, model: str, milli: int) -> int:
    """What one row costs the tenant, in millionths of a dollar."""
    return round(prices.cost(meter, model, milli / MILLI) * markup * MICRO)


class MeterEventDelivery:
    topic = STRIPE_TOPIC

    def __init__(
        self,
        api: StripeApi,
        accounts: BillingRepository,
        prices: PriceTable,
        event_name: str,
        batch_size: int = 50,
    ) -> None:
        self._api = api
        self._accounts = accounts
        self._prices = prices
        self._event_name = event_name
        self.batch_size = batch_size

    async def deliver(self, items: list[OutboxItem]) -> list[Outcome]:
        accounts: dict[str, TenantBilling] = {}
        for tenant in {item.message.tenant for item in items}:
            accounts[tenant] = await self._accounts.get(tenant)
        # Items have distinct keys (one per row): sent side by side.
        return list(
            await asyncio.gather(
                *(self._one(item, accounts[item.message.tenant]) for item in items)
            )
        )

    async def _one(self, item: OutboxItem, account: TenantBilling) -> Outcome:
        payload = item.message.payload
        if not account.stripe_customer_id:
            return Rejected(f"tenant {account.tenant} has no Stripe customer")
        value = micro_usd(
            self._prices,
            account.markup,
            str(payload["meter"]),
            str(payload.get("model") or ""),
            int(payload["quantity_milli"]),
        )
        if value <= 0:
            return Delivered()  # nothing to bill
        at = int(payload["at"])
        if at < time.time() - _OLDEST_S:
            return Rejected("older than Stripe accepts meter events (35 days)")
        result = await self._api.meter_event(
            self._event_name, account.stripe_customer_id, str(value), item.message.dedupe, at
        )
        if result.verdict == "delivered":
            return Delivered()
        if result.verdict == "rejected":
            return Rejected(result.reason)
        return Retry(result.reason)
