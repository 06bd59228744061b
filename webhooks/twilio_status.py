"""POST /twilio/status (call progress) and POST /twilio/amd (async answering-machine
verdict): signed like every Twilio webhook; both answer 204 with no body."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from voice_agent.call_actions import FINAL_STATUSES
from voice_agent.outbound import urls
from voice_agent.outbound.service import CallProgress, OutboundService
from voice_agent.runtime import Runtime
from webhooks.twilio_auth import verified_form

log = logging.getLogger(__name__)

_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    }
)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _price(value: str | None) -> float | None:
    """Twilio reports cost as a negative amount (money leaving the account)."""
    try:
        return abs(float(value)) if value else None
    except ValueError:
        return None


async def status(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    outbound: OutboundService = request.app.state.outbound
    form = await verified_form(request, runtime)
    if form is None:
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    call_sid, call_status = form.get("CallSid", ""), form.get("CallStatus", "")
    if not call_sid or call_status not in _STATUSES:
        return PlainTextResponse("CallSid and a known CallStatus are required", status_code=400)
    scheduled = await outbound.scheduled_for(
        urls.scheduled_id(request.query_params.get("scheduled")), call_sid
    )
    progress = CallProgress(
        call_sid=call_sid,
        status=call_status,
        duration_s=_int(form.get("CallDuration")),
        price=_price(form.get("Price")),
        price_unit=(form.get("PriceUnit") or None),
        from_number=form.get("From", ""),
        to_number=form.get("To", ""),
    )
    await outbound.call_progress(progress, scheduled)
    if call_status in FINAL_STATUSES and runtime.control is not None:
        # The worker still holding the call's stream (if any) closes it now (#15).
        await runtime.control.notify(call_sid, "status", status=call_status)
    return Response(status_code=204)


async def amd(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    outbound: OutboundService = request.app.state.outbound
    form = await verified_form(request, runtime)
    if form is None:
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    call_sid, answered_by = form.get("CallSid", ""), form.get("AnsweredBy", "")
    if not call_sid or not answered_by:
        return PlainTextResponse("CallSid and AnsweredBy are required", status_code=400)
    scheduled = await outbound.scheduled_for(
        urls.scheduled_id(request.query_params.get("scheduled")), call_sid
    )
    await outbound.machine_verdict(call_sid, answered_by, scheduled)
    return Response(status_code=204)
