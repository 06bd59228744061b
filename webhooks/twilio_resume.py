"""POST /twilio/resume: where Twilio goes (the ``<Redirect>`` after ``<Connect><Stream>``)
when a call's media stream ends. A call the agent ended on purpose hangs up; a stream that
dropped (its worker died) is connected again, on whichever worker this is, and the new
session goes on from the stored turns (voice_agent.resume)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from voice_agent.logs import bind_call
from voice_agent.resume import MAX_RESUMES
from voice_agent.runtime import Runtime
from voice_agent.telephony import twiml
from webhooks.twilio_auth import verified_form

log = logging.getLogger(__name__)


def _xml(document: str) -> Response:
    return Response(document, media_type="text/xml")


async def resume(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    form = await verified_form(request, runtime)
    if form is None:
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    call_sid = form.get("CallSid", "")
    if not call_sid:
        return PlainTextResponse("CallSid is required", status_code=400)
    bind_call(call_sid)
    if runtime.resume is None:
        return _xml(twiml.hangup())
    try:
        if await runtime.resume.ended_on_purpose(call_sid):
            return _xml(twiml.hangup())
        data = await runtime.resume.recall(call_sid)
        if data is None:
            log.warning("call %s: stream ended and nothing is known to resume it", call_sid)
            return _xml(twiml.hangup())
        count = int(data.get("resumes", "0")) + 1
        if count > MAX_RESUMES:
            log.warning("call %s: stream dropped %d times; hanging up", call_sid, count)
            return _xml(twiml.hangup())
        data |= {"resume": "1", "resumes": str(count)}
        bind_call(call_sid, data.get("tenant"))
        await runtime.resume.remember(call_sid, data)
        token = await runtime.tokens.issue(data)
    except Exception as exc:
        log.error("call %s: cannot resume: %s", call_sid, exc or type(exc).__name__)
        return PlainTextResponse("temporarily unavailable", status_code=503)
    log.info("call %s: stream dropped; resuming (%d)", call_sid, count)
    return _xml(
        twiml.connect_stream(
            runtime.media_stream_url, {"token": token}, redirect=runtime.resume_url
        )
    )
