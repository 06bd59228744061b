"""Billing on the admin tenant pages (#14): the month's cost and price with a daily chart,
the tenant's Stripe customer, markup, spend cap and grace period, and suspend / restore
by hand."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from voice_agent.billing.costs import DayCost, MonthCost
from voice_agent.billing.tenant_options import parse
from voice_agent.dashboard.auth import Viewer, dashboard_of, not_found, signed_in
from voice_agent.dashboard.state import Dashboard
from voice_agent.storage.billing import CustomerTaken
from voice_agent.storage.tenants import UnknownTenant
from voice_agent.tenant_setup import TenantFieldError

_W, _H, _PAD = 620, 160, 24


def cost_chart(days: list[DayCost]) -> Markup:
    """The month's price per day as server-rendered SVG bars, each with its figure as a
    tooltip (no script needed)."""
    if not days:
        return Markup("")
    peak = max((d.price_usd for d in days), default=0.0) or 1.0
    step = (_W - 2 * _PAD) / len(days)
    bars: list[str] = []
    for i, day in enumerate(days):
        height = (_H - 2 * _PAD) * day.price_usd / peak
        x = _PAD + i * step
        y = _H - _PAD - height
        label = f"{day.day.isoformat()}: ${day.price_usd:.4f}"
        bars.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(1.0, step - 2):.1f}" '
            f'height="{height:.1f}"><title>{escape(label)}</title></rect>'
        )
        if i % 5 == 0:
            bars.append(f'<text x="{x:.1f}" y="{_H - 8}">{day.day.day}</text>')
    bars.append(f'<text x="{_PAD}" y="14">max ${peak:.2f} a day</text>')
    return Markup(
        f'<svg class="cost-chart" id="cost-chart" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="Price per day this month">{"".join(bars)}</svg>'
    )


async def month_costs(dash: Dashboard, slugs: list[str]) -> dict[str, MonthCost]:
    if dash.billing is None:
        return {}
    return {slug: await dash.billing.costs.month(slug) for slug in slugs}


async def tenant_billing_context(dash: Dashboard, slug: str) -> dict[str, Any]:
    """What the tenant page shows of billing; empty when billing is not set up."""
    if dash.billing is None:
        return {}
    month = await dash.billing.costs.month(slug, daily=True)
    return {
        "month": month,
        "account": await dash.billing.account(slug),
        "standing": await dash.billing.standing(slug),
        "chart": cost_chart(month.days),
    }


@signed_in(admin=True)
async def tenant_billing(request: Request, viewer: Viewer) -> Response:
    dash = dashboard_of(request)
    slug = request.path_params["slug"]
    try:
        tenant = await dash.tenants.get(slug)
    except UnknownTenant:
        return not_found()
    if dash.billing is None:
        return not_found()
    form = await request.form()
    action = str(form.get("action", "save"))
    if action == "suspend":
        await dash.billing.suspend(slug, "by an admin")
        return RedirectResponse(f"/tenants/{slug}", status_code=303)
    if action == "restore":
        await dash.billing.restore(slug, "by an admin")
        return RedirectResponse(f"/tenants/{slug}", status_code=303)
    fields = {
        name: str(form.get(name, "")).strip()
        for name in ("stripe_customer", "markup", "monthly_cap", "grace_days")
    }
    try:
        values = parse(
            fields["stripe_customer"] or None,
            fields["markup"],
            fields["monthly_cap"],
            fields["grace_days"],
        )
        await dash.billing.configure(slug, tenant.name, values)
    except TenantFieldError as exc:
        errors = {exc.field: exc.message}
    except CustomerTaken as exc:
        errors = {"stripe_customer": f"{exc} belongs to another tenant"}
    else:
        return RedirectResponse(f"/tenants/{slug}", status_code=303)
    from voice_agent.dashboard.admin import render_tenant_page

    return await render_tenant_page(request, viewer, status_code=400, errors=errors, form=fields)
