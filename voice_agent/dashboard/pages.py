"""The staff pages: calls (list, one call), live calls, leads, SMS threads. Every read is
given the viewer's scope; what lies outside it answers 404."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from voice_agent.dashboard.api import call_cost_record
from voice_agent.dashboard.auth import Viewer, dashboard_of, not_found, signed_in
from voice_agent.dashboard.filters import DIRECTIONS, STATUSES, parse_filter
from voice_agent.dashboard.timeline import STAGES, timeline
from voice_agent.storage.analyses import OUTCOMES


async def index(request: Request) -> Response:
    return RedirectResponse("/calls", status_code=303)


@signed_in()
async def calls_page(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    parsed = parse_filter(request.query_params, viewer.scope)
    page = None
    if not parsed.errors:
        page = await dash.search.page(parsed.where, limit=50, cursor=parsed.cursor)
    chosen = {k: v for k, v in parsed.values.items() if v}
    next_url = None
    if page is not None and page.next_cursor:
        next_url = "/calls?" + urlencode(chosen | {"after": page.next_cursor})
    tenants = [t.slug for t in await dash.tenants.all()] if viewer.user.is_admin else []
    return dash.render(
        "calls.html",
        request,
        status_code=400 if parsed.errors else 200,
        viewer=viewer,
        nav="calls",
        values=parsed.values,
        errors=parsed.errors,
        page=page,
        next_url=next_url,
        first_url="/calls?" + urlencode(chosen),
        paged=parsed.cursor is not None,
        directions=DIRECTIONS,
        statuses=STATUSES,
        outcomes=OUTCOMES,
        agents=sorted(dash.agents),
        tenants=tenants,
    )


@signed_in()
async def call_page(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    view = await dash.calls.get(request.path_params["call_sid"], viewer.scope)
    if view is None:
        return not_found()
    lead = await dash.leads.get(view.lead_id, viewer.scope) if view.lead_id else None
    return dash.render(
        "call.html",
        request,
        viewer=viewer,
        nav="calls",
        view=view,
        call=view.call,
        lead=lead,
        turns=timeline(view.call),
        stages=STAGES,
        has_recording=bool(view.recording_path),
        billing=await call_cost_record(dash.billing, view),
    )


@signed_in()
async def live_page(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    live = []
    for sid in await dash.calls.in_progress(viewer.scope):
        view = await dash.calls.get(sid, viewer.scope)
        if view is not None:
            live.append((view.call, timeline(view.call)))
    return dash.render("live.html", request, viewer=viewer, nav="live", live=live)


@signed_in()
async def leads_page(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    status = request.query_params.get("status") or None
    leads = await dash.leads.recent(viewer.scope, limit=200, status=status)
    return dash.render(
        "leads.html", request, viewer=viewer, nav="leads", leads=leads, status=status or ""
    )


@signed_in()
async def sms_page(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    threads = await dash.sms.threads(viewer.scope, limit=200)
    return dash.render("sms.html", request, viewer=viewer, nav="sms", threads=threads)


@signed_in()
async def sms_thread_page(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    thread = await dash.sms.thread(request.path_params["thread_id"], viewer.scope)
    if thread is None:
        return not_found()
    return dash.render("sms_thread.html", request, viewer=viewer, nav="sms", thread=thread)
