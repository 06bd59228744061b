"""POST /twilio/sms (a text arrives) and POST /twilio/sms/status (delivery progress of the
texts we sent). Both signed like /twilio/voice."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from twilio.twiml.messaging_response import MessagingResponse

from voice_agent.runtime import Runtime
from voice_agent.sms.service import InboundSms, SmsUnavailable
from webhooks.twilio_auth import verified_form

log = logging.getLogger(__name__)


def _twiml(body: str | None = None, status_callback: str | None = None) -> Response:
    response = MessagingResponse()
    if body:
        response.message(body, status_callback=status_callback)
    return Response(response.to_xml(), media_type="text/xml")


async def sms(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    form = await verified_form(request, runtime)
    if form is None:
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    try:
        inbound = InboundSms.from_form(form)
    except ValueError as exc:
        return PlainTextResponse(f"bad SMS webhook: {exc}", status_code=400)
    assert runtime.sms is not None
    try:
        reply = await runtime.sms.receive(inbound)
    except SmsUnavailable as exc:
        # Twilio then tries the number's fallback URL; nothing was sent to the texter.
        log.error(
            "sms %s from %s not handled: database unavailable: %s",
            inbound.message_sid,
            inbound.from_number,
            exc,
        )
        return PlainTextResponse("temporarily unavailable", status_code=503)
    if reply is None:
        return _twiml()
    return _twiml(reply.body, reply.status_callback)


async def sms_status(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    form = await verified_form(request, runtime)
    if form is None:
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    missing = [
        name for name, value in (("MessageSid", sid), ("MessageStatus", status)) if not value
    ]
    if missing:
        return PlainTextResponse("bad status callback: missing " + ", ".join(missing), 400)
    raw_id = request.query_params.get("m")
    message_id = int(raw_id) if raw_id and raw_id.isdigit() else None
    assert runtime.sms is not None
    try:
        found = await runtime.sms.delivery_status(
            sid, status, form.get("ErrorCode") or None, message_id
        )
    except SmsUnavailable as exc:
        log.error("sms status %s for %s not recorded: %s", status, sid, exc)
        return PlainTextResponse("temporarily unavailable", status_code=503)
    if not found:
        # Twilio retries on errors; an unknown sid is not worth retrying.
        log.info("sms status %s for unknown message %s", status, sid)
    return Response(status_code=204)
