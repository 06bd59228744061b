"""Tenants' billing state (Stripe customer, markup, spend cap, grace period, suspension) and
the Stripe webhook events already handled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from voice_agent.storage.database import Database
from voice_agent.storage.tables import scheduled_calls, stripe_events, tenant_billing


class CustomerTaken(Exception):
    """The Stripe customer already belongs to another tenant."""


@dataclass(slots=True, frozen=True)
class TenantBilling:
    tenant: str
    stripe_customer_id: str | None = None
    markup: float = 1.0
    monthly_cap_usd: float | None = None
    grace_days: int = 7
    payment_failed_at: datetime | None = None
    suspended_at: datetime | None = None
    suspended_reason: str | None = None

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None


_FIELDS = frozenset(
    {
        "stripe_customer_id",
        "markup",
        "monthly_cap_usd",
        "grace_days",
        "payment_failed_at",
        "suspended_at",
        "suspended_reason",
    }
)


def _billing(row: Row[Any]) -> TenantBilling:
    m = row._mapping
    return TenantBilling(
        tenant=m["tenant"],
        stripe_customer_id=m["stripe_customer_id"],
        markup=m["markup"],
        monthly_cap_usd=m["monthly_cap_usd"],
        grace_days=m["grace_days"],
        payment_failed_at=m["payment_failed_at"],
        suspended_at=m["suspended_at"],
        suspended_reason=m["suspended_reason"],
    )


class BillingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, tenant: str) -> TenantBilling:
        """The tenant's billing state; defaults (no customer, markup 1, no cap) without a row."""
        async with self._db.engine.connect() as conn:
            row = (
                await conn.execute(select(tenant_billing).where(tenant_billing.c.tenant == tenant))
            ).first()
        return _billing(row) if row is not None else TenantBilling(tenant)

    async def by_customer(self, customer_id: str) -> TenantBilling | None:
        query = select(tenant_billing).where(tenant_billing.c.stripe_customer_id == customer_id)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _billing(row) if row is not None else None

    async def update(self, tenant: str, **values: Any) -> TenantBilling:
        """Set billing fields (creating the row). Raises CustomerTaken when the Stripe
        customer is another tenant's."""
        unknown = set(values) - _FIELDS
        if unknown:
            raise TypeError(f"not billing fields: {sorted(unknown)}")
        now = datetime.now(UTC)
        try:
            async with self._db.engine.begin() as conn:
                result = await conn.execute(
                    update(tenant_billing)
                    .where(tenant_billing.c.tenant == tenant)
                    .values(**values, updated_at=now)
                )
                if result.rowcount == 0:
                    await conn.execute(
                        insert(tenant_billing).values(tenant=tenant, updated_at=now, **values)
                    )
        except IntegrityError:
            customer = values.get("stripe_customer_id")
            if customer is not None:
                raise CustomerTaken(customer) from None
            raise
        return await self.get(tenant)

    async def claim_event(self, event_id: str, event_type: str) -> bool:
        """True the first time an event id is seen; False for a redelivery."""
        try:
            async with self._db.engine.begin() as conn:
                await conn.execute(
                    insert(stripe_events).values(
                        event_id=event_id, type=event_type, received_at=datetime.now(UTC)
                    )
                )
        except IntegrityError:
            return False
        return True

    async def release_event(self, event_id: str) -> None:
        """Forget an event whose handling failed, so Stripe's retry is handled again."""
        async with self._db.engine.begin() as conn:
            await conn.execute(stripe_events.delete().where(stripe_events.c.event_id == event_id))


#: The mark on a scheduled call the dialer holds back for billing reasons (suspension,
#: spend cap): kept pending, retried later, released at once when the tenant is restored.
HELD_PREFIX = "held: "


class HeldCalls:
    """Scheduled calls held back while a tenant may not call out, without losing them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def hold(self, id_: int, until: datetime, reason: str, now: datetime) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(scheduled_calls)
                .where(scheduled_calls.c.id == id_)
                .values(
                    status="pending",
                    due_at=until,
                    last_error=HELD_PREFIX + reason,
                    updated_at=now,
                )
            )

    async def release(self, tenant: str, now: datetime) -> int:
        """Make the tenant's held calls due now; returns how many."""
        async with self._db.engine.begin() as conn:
            result = await conn.execute(
                update(scheduled_calls)
                .where(
                    scheduled_calls.c.tenant == tenant,
                    scheduled_calls.c.status == "pending",
                    scheduled_calls.c.last_error.startswith(HELD_PREFIX),
                )
                .values(due_at=now, last_error=None, updated_at=now)
            )
        return int(result.rowcount or 0)
