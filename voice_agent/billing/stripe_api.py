"""The few Stripe calls the platform makes, through the stripe SDK's async client (httpx),
at ``STRIPE_API_BASE_URL`` when set (a regional proxy, or the stand-in in tests)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import stripe

log = logging.getLogger(__name__)

#: What became of one meter event: stored by Stripe (or already there), worth retrying,
#: or refused for good.
Verdict = Literal["delivered", "retry", "rejected"]


@dataclass(slots=True, frozen=True)
class MeterEventResult:
    verdict: Verdict
    reason: str = ""


class StripeApi:
    def __init__(self, api_key: str, base_url: str | None = None, timeout_s: float = 10.0) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout_s)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base_url.rstrip("/")} if base_url else None,
            http_client=self._http,
            # The outbox retries, with its own backoff and for as long as it takes.
            max_network_retries=0,
        )

    async def aclose(self) -> None:
        await self._http.close_async()

    async def create_customer(self, tenant: str, name: str, email: str | None = None) -> str:
        """A new Stripe customer for the tenant; its id (``cus_…``)."""
        params: dict[str, object] = {"name": name, "metadata": {"tenant": tenant}}
        if email:
            params["email"] = email
        customer = await self._client.v1.customers.create_async(
            params,  # type: ignore[arg-type]
            # One customer per tenant even when the request is retried.
            options={"idempotency_key": f"customer:{tenant}"},
        )
        return str(customer.id)

    async def meter_event(
        self, event_name: str, customer: str, value: str, identifier: str, timestamp: int
    ) -> MeterEventResult:
        try:
            await self._client.v1.billing.meter_events.create_async(
                {
                    "event_name": event_name,
                    "payload": {"stripe_customer_id": customer, "value": value},
                    "identifier": identifier,
                    "timestamp": timestamp,
                },
                options={"idempotency_key": identifier},
            )
        except stripe.RateLimitError as exc:
            return MeterEventResult("retry", f"rate limited: {exc.user_message or exc}")
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_already_exists":
                # Sent before (a reply lost on the way back): Stripe has it, once.
                return MeterEventResult("delivered", "already recorded")
            return MeterEventResult("rejected", f"{exc.http_status}: {exc.user_message or exc}")
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            # A wrong key is fixed by an operator; until then the events wait.
            return MeterEventResult("retry", f"{exc.http_status}: {exc.user_message or exc}")
        except stripe.StripeError as exc:
            status = exc.http_status
            if status is not None and 400 <= status < 500 and status not in (408, 409):
                return MeterEventResult("rejected", f"{status}: {exc.user_message or exc}")
            return MeterEventResult("retry", f"{status or 'no answer'}: {exc.user_message or exc}")
        return MeterEventResult("delivered")
