"""The tenant's own events webhook on the admin tenant page (#12): a URL and a
``whsec_`` secret that override EVENTS_WEBHOOK_URL / _SECRET for its events. The secret
is never shown back, only its last characters; left blank on save, it is kept."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from voice_agent.dashboard.auth import Viewer, dashboard_of, not_found, signed_in
from voice_agent.events.secret import check_secret, masked, new_secret
from voice_agent.storage.event_targets import EventTargetRepository
from voice_agent.storage.tenants import UnknownTenant


async def tenant_events_context(request: Request, slug: str) -> dict[str, Any]:
    runtime = getattr(request.app.state, "runtime", None)
    events = getattr(runtime, "events", None)
    if events is None:
        return {}
    target = await events.targets.repository.get(slug)
    return {
        "url": target.url or "",
        "secret": masked(target.secret),
        "has_global": bool(runtime.settings.events_webhook_url),
    }


def _check(url: str, secret: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    parts = urlsplit(url)
    if url and (parts.scheme not in ("http", "https") or not parts.netloc):
        errors["events_url"] = "must be an http(s) URL"
    if secret and secret != "new":
        try:
            check_secret(secret)
        except ValueError as exc:
            errors["events_secret"] = str(exc)
    return errors


@signed_in(admin=True)
async def tenant_events(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    slug = request.path_params["slug"]
    try:
        await dash.tenants.get(slug)
    except UnknownTenant:
        return not_found()
    events = getattr(request.app.state.runtime, "events", None)
    if events is None:
        return not_found()
    form = await request.form()
    url = str(form.get("events_url", "")).strip()
    secret = str(form.get("events_secret", "")).strip()
    repository: EventTargetRepository = events.targets.repository
    errors = _check(url, secret)
    generated = ""
    if not errors and url:
        if secret == "new":
            secret = generated = new_secret()
        elif not secret:
            secret = (await repository.get(slug)).secret or ""
        if not secret:
            errors["events_secret"] = "a tenant webhook needs a secret (or type new)"
    if errors:
        from voice_agent.dashboard.admin import render_tenant_page

        return await render_tenant_page(
            request, viewer, status_code=400, errors=errors, form={"events_url": url}
        )
    # An empty URL removes the override: the tenant's events go to the global webhook.
    if url:
        await events.targets.set_override(slug, url, secret)
    else:
        await events.targets.set_override(slug, None, None)
    if generated:
        # Shown this once, for the receiver's configuration; afterwards only its end.
        from voice_agent.dashboard.admin import render_tenant_page

        return await render_tenant_page(request, viewer, new_events_secret=generated)
    return RedirectResponse(f"/tenants/{slug}#events", status_code=303)
