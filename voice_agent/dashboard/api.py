"""JSON for the dashboard and scripts, transcript exports, recordings (with HTTP Range, so
the player can seek) and the live event stream. Same sign-in and tenant scope as the pages."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse

from voice_agent.billing.service import Billing, twilio_usd
from voice_agent.dashboard.auth import Viewer, dashboard_of, not_found, signed_in
from voice_agent.dashboard.filters import parse_filter
from voice_agent.dashboard.timeline import timeline
from voice_agent.storage.call_views import CallView
from voice_agent.storage.transcript import transcript_dict, transcript_text

HEARTBEAT_S = 15.0


async def call_cost_record(billing: Billing | None, view: CallView) -> dict[str, Any]:
    """The post-call record's "usage" and "cost_usd" (#14)."""
    if billing is None:
        return {}
    twilio = twilio_usd(view.price, view.price_unit)
    return await billing.costs.call_record(view.call.call_sid, view.call.tenant, twilio)


def _json(data: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status_code, media_type="application/json", headers=headers
    )


def _call_json(view: CallView) -> dict[str, Any]:
    data = transcript_dict(view.call)
    data.update(
        lead_id=view.lead_id,
        outcome=view.outcome,
        summary=view.summary,
        fields=view.fields,
        answered_by=view.answered_by,
        duration_s=view.duration_s,
        has_recording=bool(view.recording_path),
        is_test=view.is_test,
        timeline=[
            {"seq": t.seq, "role": t.role, "offset_s": t.offset_s, "end_s": t.end_s}
            for t in timeline(view.call)
        ],
    )
    return data


@signed_in(api=True)
async def api_calls(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    parsed = parse_filter(request.query_params, viewer.scope)
    if parsed.errors:
        return JSONResponse({"errors": parsed.errors}, status_code=400)
    try:
        limit = int(request.query_params.get("limit", "50"))
    except ValueError:
        return JSONResponse({"errors": {"limit": "must be a whole number"}}, status_code=400)
    page = await dash.search.page(parsed.where, limit=limit, cursor=parsed.cursor)
    return _json(
        {
            "calls": [
                {
                    "call_sid": r.call_sid,
                    "tenant": r.tenant,
                    "direction": r.direction,
                    "from": r.from_number,
                    "to": r.to_number,
                    "agent": r.agent,
                    "status": r.status,
                    "outcome": r.outcome,
                    "started_at": r.started_at.isoformat(),
                    "ended_at": r.ended_at.isoformat() if r.ended_at else None,
                    "duration_s": r.duration_s,
                    "is_test": r.is_test,
                }
                for r in page.rows
            ],
            "next_cursor": page.next_cursor,
        }
    )


@signed_in(api=True)
async def api_call(request: Request, viewer: Viewer) -> Response:
    view = await dashboard_of(request).calls.get(request.path_params["call_sid"], viewer.scope)
    if view is None:
        return not_found(api=True)
    data = _call_json(view)
    data.update(await call_cost_record(dashboard_of(request).billing, view))
    return _json(data)


@signed_in()
async def transcript_json(request: Request, viewer: Viewer) -> Response:
    """The same document as ``voice-agent transcript --json``, as a download."""
    sid = request.path_params["call_sid"]
    view = await dashboard_of(request).calls.get(sid, viewer.scope)
    if view is None:
        return not_found()
    disposition = f'attachment; filename="{_filename(sid)}.json"'
    return _json(transcript_dict(view.call), headers={"content-disposition": disposition})


@signed_in()
async def transcript_txt(request: Request, viewer: Viewer) -> Response:
    sid = request.path_params["call_sid"]
    view = await dashboard_of(request).calls.get(sid, viewer.scope)
    if view is None:
        return not_found()
    return Response(
        transcript_text(view.call),
        media_type="text/plain; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{_filename(sid)}.txt"'},
    )


@signed_in()
async def recording(request: Request, viewer: Viewer) -> Response:
    view = await dashboard_of(request).calls.get(request.path_params["call_sid"], viewer.scope)
    if view is None or not view.recording_path:
        return not_found()
    path = view.recording_path
    # Swept by retention, or never finished: the call exists, its audio does not.
    if not await asyncio.to_thread(os.path.isfile, path):
        return not_found()
    # FileResponse answers Range requests with 206 and the asked-for bytes: the player seeks
    # without downloading the whole file.
    return FileResponse(
        path,
        media_type="audio/wav" if path.endswith(".wav") else None,
        headers={"cache-control": "private, no-store"},
    )


@signed_in(api=True)
async def live_events(request: Request, viewer: Viewer) -> Response:
    """Server-sent events: every call event of the viewer's scope, as it happens; with
    ``?call_sid=``, one call's only (its page)."""
    bus = dashboard_of(request).bus
    if bus is None:
        return JSONResponse({"error": "live events are not available"}, status_code=503)
    scope = viewer.scope
    only = request.query_params.get("call_sid") or None

    async def stream() -> AsyncIterator[bytes]:
        with bus.subscribe() as events:
            yield b"retry: 2000\n\n"
            while True:
                try:
                    async with asyncio.timeout(HEARTBEAT_S):
                        event = await events.get()
                except TimeoutError:
                    yield b": heartbeat\n\n"  # keeps proxies from closing an idle stream
                    continue
                if scope is not None and event.get("tenant") != scope:
                    continue
                if only is not None and event.get("call_sid") != only:
                    continue
                yield b"data: " + orjson.dumps(event) + b"\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def _filename(sid: str) -> str:
    return "".join(c for c in sid if c.isalnum() or c in "-_")[:64] or "call"


@signed_in(api=True)
async def api_leads(request: Request, viewer: Viewer) -> Response:
    status = request.query_params.get("status") or None
    leads = await dashboard_of(request).leads.recent(viewer.scope, limit=200, status=status)
    return _json(
        {
            "leads": [
                {
                    "id": lead.id,
                    "tenant": lead.tenant,
                    "first_name": lead.first_name,
                    "last_name": lead.last_name,
                    "email": lead.email,
                    "phone": lead.phone,
                    "source": lead.source,
                    "status": lead.status,
                    "fields": lead.fields,
                    "opted_out": lead.opted_out,
                    "created_at": lead.created_at.isoformat(),
                }
                for lead in leads
            ]
        }
    )


@signed_in(api=True)
async def api_sms_thread(request: Request, viewer: Viewer) -> Response:
    thread = await dashboard_of(request).sms.thread(request.path_params["thread_id"], viewer.scope)
    if thread is None:
        return not_found(api=True)
    return _json(
        {
            "id": thread.id,
            "tenant": thread.tenant,
            "number": thread.number,
            "business_number": thread.business_number,
            "state": thread.state,
            "opted_out": thread.opted_out,
            "messages": [
                {
                    "direction": m.direction,
                    "body": m.body,
                    "status": m.status,
                    "segments": m.segments,
                    "created_at": m.created_at.isoformat(),
                }
                for m in thread.messages
            ],
        }
    )
