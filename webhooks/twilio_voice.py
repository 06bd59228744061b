"""POST /twilio/voice: a call arrives (or an outbound call is answered); answer with TwiML
that connects a bidirectional Media Stream carrying a single-use per-call token."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from voice_agent.runtime import Runtime
from voice_agent.telephony import twiml
from webhooks.twilio_auth import verified_form

log = logging.getLogger(__name__)

_TOKEN_TIMEOUT_S = 2.0


async def voice(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    form = await verified_form(request, runtime)
    if form is None:
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    call_sid = form.get("CallSid", "")
    if not call_sid:
        return PlainTextResponse("CallSid is required", status_code=400)
    direction = "inbound" if form.get("Direction", "inbound") == "inbound" else "outbound"
    agent = runtime.default_agent
    call = {
        "call_sid": call_sid,
        "tenant": runtime.settings.default_tenant,
        "agent": agent.slug,
        "direction": direction,
        "from": form.get("From", ""),
        "to": form.get("To", ""),
    }
    try:
        # Twilio gives up after 15 s; answer quickly so its fallback URL can take the call.
        async with asyncio.timeout(_TOKEN_TIMEOUT_S):
            token = await runtime.tokens.issue(call)
    except Exception as exc:
        log.error("call %s: cannot issue a media stream token: %s", call_sid, exc or type(exc))
        return PlainTextResponse("temporarily unavailable", status_code=503)
    document = twiml.connect_stream(runtime.media_stream_url, {"token": token})
    return Response(document, media_type="text/xml")
