"""POST /webhooks/stripe: subscription and invoice events that suspend or restore a tenant.

Verified on the raw body with the stripe SDK (``Stripe-Signature``, 5-minute tolerance):
400 when forged, stale or unparsable. Each event id is handled once; a redelivery answers
200 and changes nothing. Events for customers no tenant has are acknowledged and logged.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from voice_agent.billing.service import Billing
from voice_agent.runtime import Runtime

log = logging.getLogger(__name__)

TOLERANCE_S = 300
#: Subscription states a tenant is served in; any other (past_due aside) suspends it.
_ACTIVE = frozenset({"active", "trialing"})
_ENDED = frozenset({"canceled", "unpaid", "incomplete_expired", "paused"})


def _refuse(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=400)


async def stripe_webhook(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    secret = runtime.settings.stripe_webhook_secret
    billing = runtime.billing
    if not secret or billing is None:
        return _refuse("STRIPE_WEBHOOK_SECRET is not set: events cannot be verified")
    payload = await request.body()
    try:
        event = stripe.Webhook.construct_event(
            payload, request.headers.get("stripe-signature", ""), secret, tolerance=TOLERANCE_S
        )
    except stripe.SignatureVerificationError:
        return _refuse("signature does not verify (forged, or older than 5 minutes)")
    except ValueError:
        return _refuse("not a Stripe event")
    if not await billing.accounts.claim_event(event.id, event.type):
        return JSONResponse({"received": True, "duplicate": True})
    try:
        outcome = await handle_event(billing, event.type, event.data.object.to_dict())
    except Exception:
        # Forgotten again, so Stripe's next delivery of it is handled.
        await billing.accounts.release_event(event.id)
        raise
    return JSONResponse({"received": True, "outcome": outcome})


async def handle_event(billing: Billing, kind: str, obj: dict[str, Any]) -> str:
    """Apply one event (its data.object as plain JSON); returns what it did."""
    customer = obj.get("customer")
    if not isinstance(customer, str):
        return "ignored"
    account = await billing.accounts.by_customer(customer)
    if account is None:
        log.info("stripe %s for %s: no tenant has this customer", kind, customer)
        return "unknown-customer"
    tenant = account.tenant
    if kind == "customer.subscription.deleted":
        await billing.suspend(tenant, "subscription-deleted")
        return "suspended"
    if kind == "invoice.payment_failed":
        account = await billing.payment_failed(tenant)
        return "suspended" if account.suspended else "grace"
    if kind == "invoice.paid":
        await billing.restore(tenant, "invoice-paid")
        return "restored"
    if kind == "customer.subscription.updated":
        status = obj.get("status")
        if status in _ACTIVE:
            await billing.restore(tenant, f"subscription-{status}")
            return "restored"
        if status in _ENDED:
            await billing.suspend(tenant, f"subscription-{status}")
            return "suspended"
        if status == "past_due":
            account = await billing.payment_failed(tenant)
            return "suspended" if account.suspended else "grace"
    return "ignored"
