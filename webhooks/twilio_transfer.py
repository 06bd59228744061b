"""Warm-transfer webhooks: POST /twilio/whisper (what the human hears before the bridge) and
POST /twilio/transfer (the ``<Dial action>``: bridged call over, or nobody answered)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from voice_agent.runtime import Runtime
from voice_agent.telephony import warm_transfer
from voice_agent.telephony.twiml import say_language
from webhooks.twilio_auth import verified_form

log = logging.getLogger(__name__)

_FALLBACK_WHISPER = "You have a transferred call from the automated assistant."
_FALLBACK_APOLOGY = "Sorry, nobody is available right now. We will call you back soon. Goodbye."


async def whisper(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    form = await verified_form(request, runtime)
    if form is None:
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    token = request.query_params.get("t", "")
    data = await runtime.tokens.redeem(token) if token else None
    summary = (data or {}).get("summary") or _FALLBACK_WHISPER
    language = say_language((data or {}).get("language"))  # the agent's ISO code
    return Response(warm_transfer.whisper(summary, language), media_type="text/xml")


async def transfer_result(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    form = await verified_form(request, runtime)
    if form is None:
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    query = request.query_params
    number, stage = query.get("number", ""), query.get("stage", "warm")
    tenant = query.get("tenant", "")
    agent = runtime.agent_for(tenant, query.get("agent", ""))[0] if tenant else None
    agent = agent or runtime.agents.get(query.get("agent", ""))
    apology = _FALLBACK_APOLOGY
    if agent is not None and agent.transfer_unavailable:
        apology = agent.render_speech(agent.transfer_unavailable) + " Goodbye."
    dial_status = form.get("DialCallStatus", "")
    log.info("call %s: transfer (%s) to %s: %s", form.get("CallSid"), stage, number, dial_status)
    action = warm_transfer.WarmTransfer(
        None, runtime.tokens, runtime.settings.public_base_url, runtime.settings.transfer_ring_s
    ).action_url(number, agent.slug if agent else "", "cold", tenant)
    document = warm_transfer.after_dial(
        dial_status,
        stage,
        number,
        apology,
        action,
        runtime.settings.transfer_ring_s,
        language=say_language(agent.language if agent is not None else None),
    )
    return Response(document, media_type="text/xml")
