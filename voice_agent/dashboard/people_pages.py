"""A person's page (every lead, call, text and note, newest first), the links to it from
leads and calls, and what the admin page shows of the outbox and Twenty. A person of
another tenant does not exist for the viewer (404)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from voice_agent.dashboard.auth import Viewer, dashboard_of, not_found, signed_in
from voice_agent.dashboard.state import Dashboard


@signed_in()
async def person_page(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    if dash.people is None:
        return not_found()
    page = await dash.people.page(int(request.path_params["person_id"]), viewer.scope)
    if page is None:
        return not_found()
    return dash.render("person.html", request, viewer=viewer, nav="leads", page=page)


def _to_person(person_id: int | None) -> Response:
    if person_id is None:
        return not_found()
    return RedirectResponse(f"/people/{person_id}", status_code=303)


@signed_in()
async def lead_person(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    if dash.people is None:
        return not_found()
    return _to_person(await dash.people.for_lead(int(request.path_params["lead_id"]), viewer.scope))


@signed_in()
async def call_person(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    if dash.people is None:
        return not_found()
    return _to_person(await dash.people.for_call(request.path_params["call_sid"], viewer.scope))


async def outbox_context(dash: Dashboard) -> dict[str, Any]:
    """For the admin page: what waits in the outbox per topic, and Twenty's state."""
    stats = await dash.outbox.stats() if dash.outbox is not None else []
    twenty = dash.crm.twenty.status if dash.crm is not None and dash.crm.twenty else None
    return {"outbox_stats": stats, "twenty_status": twenty}
