"""POST /twilio/voice: a call arrives (or an outbound call is answered); answer with TwiML
that connects a bidirectional Media Stream carrying a single-use per-call token."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from voice_agent.runtime import Runtime
from voice_agent.telephony import twiml
from webhooks.twilio_auth import verified_form

log = logging.getLogger(__name__)


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
    token = await runtime.tokens.issue(
        {
            "call_sid": call_sid,
            "tenant": runtime.settings.default_tenant,
            "agent": agent.slug,
            "direction": direction,
            "from": form.get("From", ""),
            "to": form.get("To", ""),
        }
    )
    document = twiml.connect_stream(runtime.media_stream_url, {"token": token})
    return Response(document, media_type="text/xml")
