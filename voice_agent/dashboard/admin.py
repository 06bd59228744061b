"""Admin pages: tenants (numbers, agent in use, usage this month, branding) and users.
Staff get 404 here, as for anything outside their tenant."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from voice_agent.agents.book import lookup as tenant_agent
from voice_agent.dashboard.auth import Viewer, dashboard_of, not_found, signed_in
from voice_agent.dashboard.billing_pages import month_costs, tenant_billing_context
from voice_agent.dashboard.branding import BrandError, check_color, check_logo_url
from voice_agent.dashboard.event_pages import tenant_events_context
from voice_agent.dashboard.people_pages import outbox_context
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.storage.tenants import NumberTaken, TenantExists, UnknownTenant
from voice_agent.storage.users import ROLES, UserError
from voice_agent.tenant_setup import TenantFieldError, new_tenant


async def _tenants_page(
    request: Request, viewer: Viewer, status_code: int = 200, **extra: Any
) -> Response:
    dash = dashboard_of(request)
    rows = []
    for tenant in await dash.tenants.all():
        rows.append((tenant, await dash.usage.this_month(tenant.slug)))
    context: dict[str, Any] = {"errors": {}, "form": {}} | extra
    return dash.render(
        "tenants.html",
        request,
        status_code=status_code,
        viewer=viewer,
        nav="tenants",
        rows=rows,
        costs=await month_costs(dash, [t.slug for t, _ in rows]),
        agents=sorted(dash.agents),
        **await outbox_context(dash),
        **context,
    )


@signed_in(admin=True)
async def tenants_page(request: Request, viewer: Viewer) -> Response:
    return await _tenants_page(request, viewer)


@signed_in(admin=True)
async def tenant_create(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    form = await request.form()
    fields = {name: str(form.get(name, "")).strip() for name in _NEW_TENANT_FIELDS}
    try:
        tenant = new_tenant(
            fields["slug"],
            fields["name"],
            fields["agent"],
            fields["outbound_agent"],
            dash.agents,
            fields["timezone"] or "America/New_York",
        )
        await dash.tenants.create(tenant)
        if dash.studio is not None:  # its own agents, introducing it by its name (#13)
            await dash.studio.create_for_new_tenant(tenant, viewer.user.email)
    except TenantFieldError as exc:
        errors = {exc.field: exc.message}
    except TenantExists:
        errors = {"slug": f"a tenant {fields['slug']!r} exists already"}
    else:
        return RedirectResponse(f"/tenants/{tenant.slug}", status_code=303)
    return await _tenants_page(request, viewer, status_code=400, errors=errors, form=fields)


_NEW_TENANT_FIELDS = ("slug", "name", "agent", "outbound_agent", "timezone")


async def _tenant_page(
    request: Request, viewer: Viewer, status_code: int = 200, **extra: Any
) -> Response:
    dash = dashboard_of(request)
    try:
        tenant = await dash.tenants.get(request.path_params["slug"])
    except UnknownTenant:
        return not_found()
    context: dict[str, Any] = {"errors": {}, "form": {}} | extra
    return dash.render(
        "tenant.html",
        request,
        status_code=status_code,
        viewer=viewer,
        nav="tenants",
        tenant=tenant,
        numbers=await dash.tenants.numbers(tenant.slug),
        usage=await dash.usage.this_month(tenant.slug),
        inbound=tenant_agent(dash.agents, tenant.slug, tenant.agent),
        outbound=tenant_agent(dash.agents, tenant.slug, tenant.outbound_agent),
        agents=sorted(dash.agents),
        billing=await tenant_billing_context(dash, tenant.slug),
        events_target=await tenant_events_context(request, tenant.slug),
        **context,
    )


#: For the billing form's errors (voice_agent.dashboard.billing_pages).
render_tenant_page = _tenant_page


@signed_in(admin=True)
async def tenant_page(request: Request, viewer: Viewer) -> Response:
    return await _tenant_page(request, viewer)


@signed_in(admin=True)
async def tenant_add_number(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    slug = request.path_params["slug"]
    form = await request.form()
    raw = str(form.get("number", ""))
    agent = str(form.get("agent", "")) or None
    errors: dict[str, str] = {}
    if agent is not None and agent not in dash.agents:
        errors["agent"] = f"no agent definition named {agent}"
    try:
        number = to_e164(raw)
    except InvalidPhoneNumber:
        errors["number"] = f"{raw!r} is not a phone number"
    if not errors:
        try:
            await dash.tenants.add_number(slug, number, agent)
        except UnknownTenant:
            return not_found()
        except NumberTaken:
            errors["number"] = f"{number} already routes to a tenant"
    if errors:
        return await _tenant_page(
            request, viewer, status_code=400, errors=errors, form={"number": raw}
        )
    return RedirectResponse(f"/tenants/{slug}", status_code=303)


@signed_in(admin=True)
async def tenant_remove_number(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    slug = request.path_params["slug"]
    number = str((await request.form()).get("number", ""))
    # Only a number of this tenant: the form names both, and a forged pair does nothing.
    if number in {n for n, _ in await dash.tenants.numbers(slug)}:
        await dash.tenants.remove_number(number)
    return RedirectResponse(f"/tenants/{slug}", status_code=303)


@signed_in(admin=True)
async def tenant_branding(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    try:
        tenant = await dash.tenants.get(request.path_params["slug"])
    except UnknownTenant:
        return not_found()
    form = await request.form()
    errors: dict[str, str] = {}
    name = str(form.get("name", "")).strip()
    if not name or len(name) > 200:
        errors["name"] = "must be 1 to 200 characters"
    try:
        color = check_color(str(form.get("brand_color", "")))
    except BrandError as exc:
        errors["brand_color"] = str(exc).split(": ", 1)[1]
    try:
        logo = check_logo_url(str(form.get("logo_url", "")))
    except BrandError as exc:
        errors["logo_url"] = str(exc).split(": ", 1)[1]
    if errors:
        return await _tenant_page(request, viewer, status_code=400, errors=errors, form=form)
    tenant.name, tenant.brand_color, tenant.logo_url = name, color, logo
    await dash.tenants.save(tenant)
    return RedirectResponse(f"/tenants/{tenant.slug}", status_code=303)


async def _users_page(
    request: Request, viewer: Viewer, status_code: int = 200, error: str | None = None
) -> Response:
    dash = dashboard_of(request)
    return dash.render(
        "users.html",
        request,
        status_code=status_code,
        viewer=viewer,
        nav="users",
        users=await dash.users.all(),
        tenants=[t.slug for t in await dash.tenants.all()],
        roles=ROLES,
        error=error,
    )


@signed_in(admin=True)
async def users_page(request: Request, viewer: Viewer) -> Response:
    return await _users_page(request, viewer)


@signed_in(admin=True)
async def user_add(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    form = await request.form()
    role = str(form.get("role", ""))
    tenant = str(form.get("tenant", "")) or None
    if role == "admin":
        tenant = None
    try:
        await dash.users.add(
            str(form.get("email", "")), str(form.get("password", "")), role, tenant
        )
    except UserError as exc:
        return await _users_page(request, viewer, 400, str(exc))
    except UnknownTenant:
        return await _users_page(request, viewer, 400, f"tenant: no tenant {tenant}")
    return RedirectResponse("/users", status_code=303)
