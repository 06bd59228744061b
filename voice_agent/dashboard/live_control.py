"""POST /api/calls/{sid}/hangup and /api/calls/{sid}/transfer: staff act on a live call,
whichever worker or host holds its stream (voice_agent.call_control). Signed in, CSRF
checked, tenant-scoped like every other call route; 200 with the holder's acknowledgement,
404 outside the viewer's scope, 409 when no worker holds the call (it is not live)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from voice_agent.dashboard.auth import Viewer, dashboard_of, not_found, signed_in

_TIMEOUT_S = 3.0


async def _act(request: Request, viewer: Viewer, action: str, **args: str) -> Response:
    sid = request.path_params["call_sid"]
    if await dashboard_of(request).calls.get(sid, viewer.scope) is None:
        return not_found(api=True)
    control = request.app.state.runtime.control
    ack = await control.send(sid, action, timeout_s=_TIMEOUT_S, **args)
    if ack is None:
        return JSONResponse({"ok": False, "error": "the call is not live"}, status_code=409)
    return JSONResponse(ack, status_code=200 if ack.get("ok") else 422)


@signed_in(api=True)
async def hangup(request: Request, viewer: Viewer) -> Response:
    return await _act(request, viewer, "hangup", reason="ended-by-staff")


@signed_in(api=True)
async def transfer(request: Request, viewer: Viewer) -> Response:
    form = await request.form()
    number = str(form.get("number") or "")
    if not number:
        return JSONResponse({"ok": False, "error": "number is required"}, status_code=422)
    return await _act(request, viewer, "transfer", number=number)
