"""Trying a tenant's draft agent in the browser (#13): by text, on the same dialogue engine
as SMS, and by voice, over a websocket carrying Twilio Media Streams' JSON frames (8 kHz
mu-law) so the very same call session runs it.

The voice test starts with a signed-in, CSRF-checked POST that mints a single-use call
token bound to the tenant and agent (as the voice webhook does for Twilio); the browser
then opens ``/portal/talk`` with its session cookie and sends ``start`` with that token.
The call is stored like any other, marked ``is_test``, and no telephony is involved.
"""

from __future__ import annotations

import logging
import secrets

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from prompts import AgentDefinitionError
from voice_agent.agents.studio import validate
from voice_agent.dashboard.agent_pages import _tenant_for, studio_of
from voice_agent.dashboard.auth import Viewer, dashboard_of, not_found, signed_in
from voice_agent.dashboard.sessions import COOKIE_NAME
from voice_agent.storage.agents import UnknownAgent

log = logging.getLogger(__name__)

TALK_PATH = "/portal/talk"
_MAX_TURNS = 40
_MAX_TEXT = 1000
_POLICY_VIOLATION = 1008


@signed_in(api=True)
async def chat(request: Request, viewer: Viewer) -> Response:
    """POST {"history": [{"role": "user"|"assistant", "text": …}, …]} → {"reply": …}."""
    tenant = await _tenant_for(request, viewer)
    if tenant is None:
        return not_found(True)
    studio = studio_of(request)
    try:
        agent = await studio.agent(tenant, request.path_params["slug"], viewer.user.email)
        body = orjson.loads(await request.body())
        history = [
            ("assistant" if t["role"] == "assistant" else "user", str(t["text"])[:_MAX_TEXT])
            for t in body["history"][-_MAX_TURNS:]
        ]
    except UnknownAgent:
        return not_found(True)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return JSONResponse({"error": 'send {"history": [{"role", "text"}, …]}'}, 422)
    if not history or history[-1][0] != "user":
        return JSONResponse({"error": "the history must end with your message"}, 422)
    try:
        definition = validate((await studio.repo.draft(agent)).data)
    except AgentDefinitionError as exc:
        return JSONResponse({"error": str(exc)}, 422)
    # The runtime runs the dialogue: the dashboard composes no conversation itself.
    reply = await request.app.state.runtime.try_text(definition, history)
    return JSONResponse({"reply": reply.text, "tools": reply.tools, "handed_off": reply.handed_off})


@signed_in(api=True)
async def talk_token(request: Request, viewer: Viewer) -> Response:
    """A single-use token for one browser test call of this tenant's draft agent."""
    tenant = await _tenant_for(request, viewer)
    if tenant is None:
        return not_found(True)
    try:
        agent = await studio_of(request).agent(
            tenant, request.path_params["slug"], viewer.user.email
        )
    except UnknownAgent:
        return not_found(True)
    runtime = request.app.state.runtime
    call_sid = "CT" + secrets.token_hex(16)  # CT: a test call, never a Twilio CallSid
    token = await runtime.tokens.issue(
        {
            "call_sid": call_sid,
            "tenant": tenant.slug,
            "agent": agent.slug,
            "direction": "inbound",
            "from": "browser",
            "to": "",
            "test": "1",
            "draft": "1",
            "by": viewer.user.email,
        }
    )
    return JSONResponse({"call_sid": call_sid, "token": token, "path": TALK_PATH})


async def talk_socket(websocket: WebSocket) -> None:
    """The browser tester's media websocket: a signed-in user, from our own origin."""
    app = websocket.app
    dash = app.state.dashboard
    session = dash.codec.loads(websocket.cookies.get(COOKIE_NAME))
    user = None
    if session is not None and session.user_id is not None:
        user = await dash.users.get(session.user_id)
    host = websocket.headers.get("host", "")
    origin = websocket.headers.get("origin", "")
    same_origin = origin.split("://", 1)[-1] == host
    if user is None or not same_origin:
        await websocket.close(code=_POLICY_VIOLATION)
        return
    # The media endpoint (telephony) is composed by the app, which owns the route too.
    await app.state.talk_endpoint.handle(websocket)


__all__ = ["TALK_PATH", "chat", "dashboard_of", "talk_socket", "talk_token"]
