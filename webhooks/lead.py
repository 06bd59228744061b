"""POST /webhooks/lead: the marketing form (directly or through n8n) hands us a lead; we store
it and call it within seconds.

Body: JSON ``{"firstName", "lastName", "email", "phone", "source"}`` plus optional extra
fields (kept on the lead and passed to the agent's prompt). The tenant is the body's
``tenant`` field, else the ``tenant`` query parameter, else the ``X-Tenant`` header, else
DEFAULT_TENANT. Answers 202 ``{"lead_id", "call_sid", "call_status", "duplicate"}``;
``call_sid`` is null when the call is still waiting for its turn in the CPS queue
(``call_status`` "queued"), was moved into calling hours ("rescheduled", with
``scheduled_at``), the number opted out ("opted-out") or Twilio refused it ("failed").
"""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any

import orjson
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from voice_agent.outbound.service import OutboundService
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.runtime import Runtime
from voice_agent.storage.leads import Lead
from voice_agent.storage.tenants import UnknownTenant
from webhooks.rate_limits import RateLimiter

log = logging.getLogger(__name__)

_MAX_BODY = 64 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_KNOWN = {
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "source": "source",
    "tenant": "tenant",
}
_MAX_EXTRA_FIELDS = 30


#: The database is unreachable (or timed out): the sender should try again later.
_STORAGE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


def _unavailable(exc: Exception) -> JSONResponse:
    log.error("lead not stored: database unavailable: %s", str(exc).splitlines()[0] or exc)
    return JSONResponse(
        {"detail": "temporarily unavailable, try again"},
        status_code=503,
        headers={"Retry-After": "30"},
    )


class LeadLimits:
    def __init__(self, per_ip: RateLimiter, per_tenant: RateLimiter) -> None:
        self.per_ip = per_ip
        self.per_tenant = per_tenant


def _problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status)


def _authorized(request: Request, secret: str | None) -> bool:
    if not secret:
        return False
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), secret.encode()
    )


def parse_lead(body: Any, default_tenant: str) -> tuple[Lead | None, list[dict[str, str]]]:
    """The lead in a request body, or the list of field errors."""
    if not isinstance(body, dict):
        return None, [{"field": "body", "message": "must be a JSON object"}]
    errors: list[dict[str, str]] = []
    values: dict[str, str] = {}
    extras: dict[str, Any] = {}
    for key, value in body.items():
        name = _KNOWN.get(key)
        if name is None:
            if isinstance(value, str | int | float | bool) or value is None:
                extras[key] = value
            else:
                errors.append({"field": key, "message": "extra fields must be plain values"})
            continue
        if value is None:
            continue
        if not isinstance(value, str):
            errors.append({"field": key, "message": "must be a string"})
            continue
        values[name] = value.strip()
    if len(extras) > _MAX_EXTRA_FIELDS:
        errors.append({"field": "body", "message": f"at most {_MAX_EXTRA_FIELDS} extra fields"})
    first = values.get("first_name", "")
    if not first and not any(e["field"] in ("firstName", "first_name") for e in errors):
        errors.append({"field": "firstName", "message": "is required"})
    elif len(first) > 100:
        errors.append({"field": "firstName", "message": "at most 100 characters"})
    if len(values.get("last_name", "")) > 100:
        errors.append({"field": "lastName", "message": "at most 100 characters"})
    email = values.get("email") or None
    if email is not None and (len(email) > 320 or not _EMAIL.match(email)):
        errors.append({"field": "email", "message": "is not an email address"})
    phone = ""
    raw_phone = values.get("phone", "")
    if not raw_phone:
        if not any(e["field"] == "phone" for e in errors):
            errors.append({"field": "phone", "message": "is required"})
    else:
        try:
            phone = to_e164(raw_phone)
        except InvalidPhoneNumber:
            errors.append({"field": "phone", "message": "is not a valid phone number"})
    if len(values.get("source", "")) > 100:
        errors.append({"field": "source", "message": "at most 100 characters"})
    if errors:
        return None, errors
    lead = Lead(
        tenant=values.get("tenant") or default_tenant,
        first_name=first,
        last_name=values.get("last_name", ""),
        email=email.lower() if email else None,
        phone=phone,
        source=values.get("source") or None,
        fields=extras or None,
    )
    return lead, []


async def lead(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    outbound: OutboundService = request.app.state.outbound
    limits: LeadLimits = request.app.state.lead_limits
    settings = runtime.settings
    if not _authorized(request, settings.lead_webhook_secret):
        log.warning(
            "lead refused from %s: missing or wrong bearer secret",
            request.client.host if request.client else "?",
        )
        return _problem(401, "a valid Authorization: Bearer secret is required")
    client = request.client.host if request.client else "?"
    if not await limits.per_ip.allow(f"lead-ip:{client}"):
        return _problem(429, "too many leads from this address", retry_after_s=60)
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        return _problem(413, "body too large")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _problem(422, "invalid lead", errors=[{"field": "body", "message": "not JSON"}])
    default_tenant = (
        request.query_params.get("tenant")
        or request.headers.get("x-tenant")
        or settings.default_tenant
    )
    parsed, errors = parse_lead(body, default_tenant)
    if parsed is None:
        return _problem(422, "invalid lead", errors=errors)
    try:
        await runtime.tenants.get(parsed.tenant)
    except UnknownTenant:
        return _problem(
            422, "invalid lead", errors=[{"field": "tenant", "message": "no such tenant"}]
        )
    except _STORAGE_ERRORS as exc:
        return _unavailable(exc)
    if not await limits.per_tenant.allow(f"lead-tenant:{parsed.tenant}"):
        return _problem(429, "too many leads for this tenant", retry_after_s=60)
    try:
        taken = await outbound.take_lead(parsed, settings.lead_call_wait_s)
    except _STORAGE_ERRORS as exc:
        return _unavailable(exc)
    if not taken.duplicate and runtime.events is not None:
        _lead_created(runtime, taken.lead, taken.call_sid, taken.status)
    payload: dict[str, Any] = {
        "lead_id": taken.lead.id,
        "call_sid": taken.call_sid,
        "call_status": taken.status,
        "duplicate": taken.duplicate,
    }
    if taken.due_at is not None:
        payload["scheduled_at"] = taken.due_at.isoformat()
    return JSONResponse(payload, status_code=202)


def _lead_created(runtime: Runtime, stored: Lead, call_sid: str | None, status: str) -> None:
    """The lead.created event (its id derives from the lead's: a repost changes nothing)."""
    assert runtime.events is not None
    runtime.events.emit(
        stored.tenant,
        "lead.created",
        {
            "lead_id": stored.id,
            "first_name": stored.first_name,
            "last_name": stored.last_name,
            "email": stored.email,
            "phone": stored.phone,
            "source": stored.source,
            "fields": stored.fields or {},
            "status": stored.status,
            "call_sid": call_sid,
            "call_status": status,
        },
        key=f"lead:{stored.id}",
        at=stored.created_at,
    )
