"""A loopback imitation of the parts of api.stripe.com the agent uses, for the real stripe
SDK pointed at it (``STRIPE_API_BASE_URL``): customers and v1 meter events, form-encoded
requests with secret-key auth, Stripe's error shape, idempotency keys (a retried request
gets the first answer again) and meter event identifiers (a second event with one is
refused). Outages are injected: a status for the next N requests, or refused connections.

Also signs webhook events the way Stripe does (``Stripe-Signature: t=…,v1=…``) so tests
can post them to the server."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loadtest.standins.embedded import EmbeddedServer

#: How far back a meter event's timestamp may be (Stripe: 35 calendar days) and forward
#: (5 minutes), integrations.md §8.2.
_PAST_S = 35 * 86400
_FUTURE_S = 300


def _error(
    status: int, message: str, kind: str = "invalid_request_error", **extra: Any
) -> Response:
    return JSONResponse({"error": {"message": message, "type": kind, **extra}}, status_code=status)


def form_to_nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (``payload[value]=3``) back into nested dicts."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload`` (integrations.md §8.1)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event_body(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> bytes:
    """A v1 snapshot event as Stripe posts it to a webhook endpoint."""
    return orjson.dumps(
        {
            "id": event_id or f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": "2025-03-31.basil",
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
    )


@dataclass(slots=True)
class MeterEvent:
    event_name: str
    identifier: str
    customer: str
    value: str
    timestamp: int
    received_at: float  # monotonic
    received_wall: float  # unix time, to compare with a row's own time


@dataclass(slots=True)
class _Outage:
    status: int
    remaining: int


@dataclass
class StripeStandin:
    api_key: str = "sk_test_standin"
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    meter_events: list[MeterEvent] = field(default_factory=list)
    #: Every request answered (failures included), as (method, path).
    requests: list[tuple[str, str]] = field(default_factory=list)
    base_url: str = ""

    def __post_init__(self) -> None:
        self._identifiers: set[str] = set()
        self._idempotent: dict[str, tuple[int, bytes]] = {}
        self._outage: _Outage | None = None
        self._lose = 0
        self.app = Starlette(
            routes=[
                Route("/v1/customers", self._create_customer, methods=["POST"]),
                Route("/v1/customers/{id}", self._get_customer, methods=["GET"]),
                Route("/v1/billing/meter_events", self._meter_event, methods=["POST"]),
            ]
        )
        self._server = EmbeddedServer(self.app, "stand-in Stripe server")

    # --- control ---

    def fail(self, status: int = 500, times: int = 1_000_000) -> None:
        """Answer the next ``times`` requests with ``status`` (an outage until heal())."""
        self._outage = _Outage(status, times)

    def heal(self) -> None:
        self._outage = None

    def lose_answers(self, times: int) -> None:
        """Record the next ``times`` meter events, then answer 500 as if the reply was lost
        on the way back: the client cannot tell, and sends them again."""
        self._lose = times

    def events_for(self, customer: str) -> list[MeterEvent]:
        return [e for e in self.meter_events if e.customer == customer]

    # --- lifecycle ---

    async def start(self, port: int = 0) -> str:
        self.base_url = f"http://127.0.0.1:{await self._server.start(port)}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving: connections are refused until start() again on the same port."""
        await self._server.stop()

    async def __aenter__(self) -> StripeStandin:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- requests ---

    async def _guard(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path))
        outage = self._outage
        if outage is not None and outage.remaining > 0:
            outage.remaining -= 1
            return _error(outage.status, "stand-in outage", "api_error")
        header = request.headers.get("authorization", "")
        if header != f"Bearer {self.api_key}":
            return _error(401, "Invalid API Key provided.")
        return None

    async def _form(self, request: Request) -> dict[str, Any]:
        body = (await request.body()).decode()
        return form_to_nested(parse_qsl(body, keep_blank_values=True))

    def _replayed(self, request: Request) -> Response | None:
        key = request.headers.get("idempotency-key")
        if key and key in self._idempotent:
            status, body = self._idempotent[key]
            return Response(
                body,
                status_code=status,
                media_type="application/json",
                headers={"idempotent-replayed": "true", "idempotency-key": key},
            )
        return None

    def _remember(self, request: Request, status: int, data: dict[str, Any]) -> Response:
        body = orjson.dumps(data)
        key = request.headers.get("idempotency-key")
        if key:
            self._idempotent[key] = (status, body)
        return Response(body, status_code=status, media_type="application/json")

    async def _create_customer(self, request: Request) -> Response:
        refused = await self._guard(request) or self._replayed(request)
        if refused is not None:
            return refused
        form = await self._form(request)
        customer = {
            "id": f"cus_{secrets.token_hex(7)}",
            "object": "customer",
            "created": int(time.time()),
            "email": form.get("email"),
            "name": form.get("name"),
            "metadata": form.get("metadata", {}),
            "livemode": False,
        }
        self.customers[customer["id"]] = customer
        return self._remember(request, 200, customer)

    async def _get_customer(self, request: Request) -> Response:
        refused = await self._guard(request)
        if refused is not None:
            return refused
        customer = self.customers.get(request.path_params["id"])
        if customer is None:
            return _error(
                404, f"No such customer: '{request.path_params['id']}'", code="resource_missing"
            )
        return JSONResponse(customer)

    async def _meter_event(self, request: Request) -> Response:
        refused = await self._guard(request) or self._replayed(request)
        if refused is not None:
            return refused
        form = await self._form(request)
        payload = form.get("payload") or {}
        name, customer = form.get("event_name"), payload.get("stripe_customer_id")
        value = payload.get("value")
        if not name:
            return _error(400, "Missing required param: event_name.", param="event_name")
        if not customer or customer not in self.customers:
            return _error(400, "No customer for payload[stripe_customer_id].", param="payload")
        try:
            float(value or "")
        except ValueError:
            return _error(400, "payload[value] must be a number.", param="payload")
        now = int(time.time())
        timestamp = int(form.get("timestamp") or now)
        if not now - _PAST_S <= timestamp <= now + _FUTURE_S:
            return _error(400, "timestamp out of range.", param="timestamp")
        identifier = form.get("identifier") or f"auto_{secrets.token_hex(8)}"
        if identifier in self._identifiers:
            # UNVERIFIED: the exact error code Stripe gives a repeated identifier.
            return self._remember(
                request,
                400,
                {
                    "error": {
                        "message": f"An event with identifier {identifier} already exists.",
                        "type": "invalid_request_error",
                        "code": "resource_already_exists",
                    }
                },
            )
        self._identifiers.add(identifier)
        self.meter_events.append(
            MeterEvent(
                name, identifier, customer, str(value), timestamp, time.monotonic(), time.time()
            )
        )
        if self._lose > 0:
            self._lose -= 1
            return _error(500, "stand-in: answer lost after the event was stored", "api_error")
        return self._remember(
            request,
            200,
            {
                "object": "billing.meter_event",
                "created": now,
                "event_name": name,
                "identifier": identifier,
                "livemode": False,
                "payload": payload,
                "timestamp": timestamp,
            },
        )
