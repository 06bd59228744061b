"""POST /twilio/voice: a call arrives (or an outbound call is answered); answer with TwiML
that connects a bidirectional Media Stream carrying a single-use per-call token.

Inbound calls are routed by the called number (``To``): its tenant and agent answer. A
number no tenant owns hears a short apology and is hung up on, unless no tenant owns any
number at all (an embedded install, the demo): then the default tenant answers everything.
A lookup that fails or overruns routes by this process's last reading for the number and
answers 503 when it has none, rather than hand the caller to another tenant's agent.
Outbound calls (``Direction`` outbound-api) name their scheduled call in the URL's query;
the lead's fields travel with the token to the agent's prompt.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from voice_agent.caller_memory.greeting import remember_caller
from voice_agent.logs import bind_call
from voice_agent.outbound import urls
from voice_agent.outbound.dialer import encode_variables, prompt_variables
from voice_agent.outbound.service import OutboundService
from voice_agent.runtime import Runtime
from voice_agent.telephony import twiml
from webhooks.twilio_auth import verified_form

log = logging.getLogger(__name__)

_TOKEN_TIMEOUT_S = 2.0
_BILLING_TIMEOUT_S = 0.5
UNKNOWN_NUMBER_MESSAGE = "Sorry, this number is not in service. Goodbye."


async def _call_data(
    request: Request, runtime: Runtime, form: dict[str, str], call_sid: str
) -> dict[str, str] | None:
    """What the media stream's session needs to know; None: this call is not ours."""
    settings = runtime.settings
    to_number = form.get("To", "")
    data = {"call_sid": call_sid, "from": form.get("From", ""), "to": to_number}
    if form.get("Direction", "inbound").startswith("outbound"):
        outbound: OutboundService = request.app.state.outbound
        scheduled = await outbound.scheduled_for(
            urls.scheduled_id(request.query_params.get("scheduled")), call_sid
        )
        agent = await outbound.agent_for(scheduled)
        if scheduled is None or agent is None:
            tenant = await runtime.tenants.get(settings.default_tenant)
            log.warning("outbound call %s names no scheduled call; default agent", call_sid)
            return data | {
                "tenant": tenant.slug,
                "agent": tenant.outbound_agent,
                "direction": "outbound",
            }
        data |= {
            "tenant": scheduled.tenant,
            "agent": agent.slug,
            "direction": "outbound",
            "scheduled": str(scheduled.id),
            "vars": encode_variables(prompt_variables(scheduled.context, agent)),
        }
        if scheduled.lead_id is not None:
            data["lead_id"] = str(scheduled.lead_id)
        return data
    routing = await runtime.router.resolve(to_number)  # RoutingUnavailable: a 503
    if routing.route is not None:
        data |= {
            "tenant": routing.route.tenant.slug,
            "agent": routing.route.agent,
            "direction": "inbound",
        }
        if routing.route.tenant.max_call_s:
            data["max_call_s"] = str(routing.route.tenant.max_call_s)
    elif routing.any_numbers:
        log.warning("call %s to %s: no tenant owns this number; refused", call_sid, to_number)
        return None
    else:
        data |= {
            "tenant": settings.default_tenant,
            "agent": runtime.default_agent.slug,
            "direction": "inbound",
        }
    agent = runtime.agent_for(data["tenant"], data["agent"])[0]  # the tenant's own (#13)
    return await remember_caller(data, runtime.memory, agent, runtime.greetings)


async def _suspended(runtime: Runtime, tenant: str) -> bool:
    """Whether the tenant is suspended (#14). A billing lookup that fails lets the call in:
    a caller is never turned away for our own trouble."""
    if runtime.billing is None:
        return False
    try:
        async with asyncio.timeout(_BILLING_TIMEOUT_S):
            return await runtime.billing.suspended_since(tenant) is not None
    except Exception as exc:
        log.warning("billing state of %s unknown (%s); call let in", tenant, exc)
        return False


async def voice(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    form = await verified_form(request, runtime)
    if form is None:
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    call_sid = form.get("CallSid", "")
    if not call_sid:
        return PlainTextResponse("CallSid is required", status_code=400)
    bind_call(call_sid)
    if runtime.draining:
        # This worker is going away (#15): Twilio's retry or the balancer goes elsewhere.
        return PlainTextResponse("draining", status_code=503, headers={"Retry-After": "1"})
    try:
        # Twilio gives up after 15 s; answer quickly so its fallback URL can take the call.
        async with asyncio.timeout(_TOKEN_TIMEOUT_S):
            call = await _call_data(request, runtime, form, call_sid)
            if call is None:
                return Response(twiml.say_and_hangup(UNKNOWN_NUMBER_MESSAGE), media_type="text/xml")
            bind_call(call_sid, call["tenant"])
            if call.get("direction") == "inbound" and await _suspended(runtime, call["tenant"]):
                call["suspended"] = "1"
            token = await runtime.tokens.issue(call)
            if runtime.resume is not None:
                await runtime.resume.remember(call_sid, call)  # for a resume elsewhere (#15)
    except Exception as exc:
        log.error("call %s: cannot set up the media stream: %s", call_sid, exc or type(exc))
        return PlainTextResponse("temporarily unavailable", status_code=503)
    document = twiml.connect_stream(
        runtime.media_stream_url, {"token": token}, redirect=runtime.resume_url
    )
    return Response(document, media_type="text/xml")
