"""What a call and a tenant's month cost (the price table over the usage rows) and what the
tenant pays for them (cost times its markup); the spend cap's state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from voice_agent.billing.prices import Cost, PriceTable, UsageSummary, cost_of
from voice_agent.storage.billing import BillingRepository
from voice_agent.storage.metering import UsageRepository, month_bounds


@dataclass(slots=True)
class DayCost:
    day: date
    cost: Cost
    price_usd: float


@dataclass(slots=True)
class MonthCost:
    tenant: str
    month: date  # its first day
    usage: dict[str, float]
    cost: Cost
    markup: float
    price_usd: float  # what the tenant pays: cost.total * markup
    cap_usd: float | None
    days: list[DayCost] = field(default_factory=list)

    @property
    def cap_share(self) -> float | None:
        """Share of the monthly cap spent (the tenant's price against it), or None."""
        if self.cap_usd is None:
            return None
        return self.price_usd / self.cap_usd if self.cap_usd > 0 else 1.0


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


class Costs:
    def __init__(
        self, usage: UsageRepository, billing: BillingRepository, prices: PriceTable
    ) -> None:
        self.usage = usage
        self.billing = billing
        self.prices = prices

    async def call_record(
        self, call_sid: str, tenant: str, twilio_price: float | None = None
    ) -> dict[str, Any]:
        """The post-call record's "usage" and "cost_usd", and the tenant's "price_usd"."""
        rows = await self.usage.rows_for_call(call_sid)
        summary = UsageSummary()
        for row in rows:
            summary.add(row.meter, row.quantity)
        cost = cost_of(self.prices, ((r.meter, r.model, r.quantity) for r in rows))
        account = await self.billing.get(tenant)
        record: dict[str, Any] = {
            "usage": summary.as_record(),
            "cost_usd": cost.as_dict(),
            "price_usd": round(cost.total * account.markup, 6),
        }
        if twilio_price is not None:
            # Twilio's own bill for the call leg (whole minutes), once it has priced it.
            record["twilio_price_usd"] = twilio_price
        return record

    async def month(
        self, tenant: str, day: date | None = None, *, daily: bool = False
    ) -> MonthCost:
        start, end = month_bounds(day or datetime.now(UTC).date())
        account = await self.billing.get(tenant)
        totals = await self.usage.totals(tenant, _utc(start), _utc(end))
        summary = UsageSummary()
        for (meter, _model), quantity in totals.items():
            summary.add(meter, quantity)
        cost = cost_of(self.prices, ((m, model, q) for (m, model), q in totals.items()))
        result = MonthCost(
            tenant=tenant,
            month=start,
            usage=summary.as_record(),
            cost=cost,
            markup=account.markup,
            price_usd=cost.total * account.markup,
            cap_usd=account.monthly_cap_usd,
        )
        if daily:
            per_day = await self.usage.daily(tenant, _utc(start), _utc(end))
            when = start
            while when < end:
                day_totals = per_day.get(when, {})
                day_cost = cost_of(self.prices, ((m, mo, q) for (m, mo), q in day_totals.items()))
                result.days.append(DayCost(when, day_cost, day_cost.total * account.markup))
                when += timedelta(days=1)
        return result
