"""The client portal (#13): a tenant's own agent (edit the draft, see the greeting,
publish or ask for approval, versions with rollback), its settings with the audit log,
and the admins' approval queue.

Tenant-scoped like every page: staff reach only their own tenant; any other tenant's
agent or settings is 404. Tenant text is only ever data in these templates (autoescaped),
never template source, so markup or Jinja in a field is shown as typed.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from prompts import (
    SMS_TOOL_NAMES,
    TOOL_NAMES,
    TURN_RANGES,
    AgentDefinitionError,
    allowed_variables,
)
from prompts.voices import LANGUAGES, PIPELINE_VOICES
from voice_agent.agents.studio import AgentStudio, validate
from voice_agent.dashboard.analysis_form import (
    DERIVATIONS,
    FIELD_TYPES,
    analysis_problem,
    apply_analysis,
    error_row,
    form_rows,
)
from voice_agent.dashboard.auth import Viewer, dashboard_of, not_found, signed_in
from voice_agent.dashboard.branding import BrandError, check_color, check_logo_url
from voice_agent.storage.agents import UnknownAgent
from voice_agent.storage.tenants import Tenant, UnknownTenant
from voice_agent.tenant_setup import (
    TenantFieldError,
    format_calling_hours,
    parse_calling_days,
    parse_calling_hours,
)

#: The texts the form edits, in the order shown (label, field).
TEXT_FIELDS: tuple[tuple[str, str], ...] = (
    ("Greeting", "greeting"),
    ("Greeting for a returning caller", "returning_greeting"),
    ("Goodbye", "goodbye"),
    ("Didn't understand", "fallback"),
    ("Voicemail", "voicemail"),
    ("Offer to transfer", "transfer_offer"),
    ("Transferring", "transferring"),
    ("Transfer unavailable", "transfer_unavailable"),
    ("Wrap-up", "wrap_up"),
    ("Hold", "hold"),
    ("SMS greeting", "sms_greeting"),
    ("SMS hand-off", "sms_handoff"),
    ("Follow-up SMS", "followup_sms"),
)
LONG_FIELDS: tuple[tuple[str, str], ...] = (
    ("Persona", "persona"),
    ("Prompt (voice)", "system_prompt"),
    ("Prompt (SMS)", "sms_system_prompt"),
)
SINGLE_FIELDS: tuple[tuple[str, str], ...] = (
    ("Transfer number", "transfer_number"),
    ("Voice (any pipeline)", "voice"),
)
#: [turn_taking] numbers the form edits (label, key); ranges come from the loader.
TURN_FIELDS: tuple[tuple[str, str], ...] = (
    ("Endpointing: silence that ends the caller's turn (ms, 0: server default)", "silence_ms"),
    ("Barge-in: caller voice needed to interrupt the agent (ms, 0: server default)",
     "interruption_min_ms"),
    ("Text-aware: transcribe this far into a pause (ms)", "speculation_ms"),
    ("Text-aware: wait when the turn reads as finished (ms)", "min_wait_ms"),
    ("Text-aware: wait when the turn is visibly going on (ms)", "max_wait_ms"),
    ("Text-aware: wait when the turn is likely finished (ms)", "likely_wait_ms"),
)  # fmt: skip
#: [turn_taking] switches the form edits (label, key, the default the session applies).
TURN_SWITCHES: tuple[tuple[str, str, bool], ...] = (
    ("Text-aware: wait longer when the caller is visibly not finished", "text_aware", False),
    ("Resume the agent after a backchannel (uh-huh, okay) or a sound with no words",
     "resume_on_backchannel", True),
    ("Text-aware: ask the model early when the turn reads as finished", "early_llm", True),
)  # fmt: skip


def studio_of(request: Request) -> AgentStudio:
    studio = dashboard_of(request).studio
    assert studio is not None, "the portal needs the runtime's AgentStudio"
    return studio


async def _tenant_for(request: Request, viewer: Viewer) -> Tenant | None:
    """The tenant in the URL, if this viewer may see it (staff: only their own)."""
    slug = request.path_params["tenant"]
    if not viewer.user.is_admin and viewer.user.tenant != slug:
        return None
    try:
        return await dashboard_of(request).tenants.get(slug)
    except UnknownTenant:
        return None


# --- the agent ---------------------------------------------------------------------------


async def _agent_page(
    request: Request,
    viewer: Viewer,
    tenant: Tenant,
    slug: str,
    status_code: int = 200,
    error: AgentDefinitionError | None = None,
    data: dict[str, Any] | None = None,
    notice: str | None = None,
    analysis_rows: list[tuple[str, dict[str, Any]]] | None = None,
) -> Response:
    studio = studio_of(request)
    agent = await studio.agent(tenant, slug, viewer.user.email)
    draft = await studio.repo.draft(agent)
    shown = data if data is not None else draft.data
    greeting = None
    try:
        definition = validate(shown)
        greeting = definition.render_speech(definition.greeting)
    except AgentDefinitionError:
        pass
    pending = [a for a in await studio.repo.approvals(tenant.slug) if a.slug == slug]
    return dashboard_of(request).render(
        "agent.html",
        request,
        status_code=status_code,
        viewer=viewer,
        nav="agent",
        tenant=tenant,
        agent=agent,
        data=shown,
        draft=draft,
        greeting=greeting,
        error=_problem(error) if error is not None else None,
        analysis_error_row=error_row(error),
        analysis_rows=(
            analysis_rows
            if analysis_rows is not None
            else list(((shown.get("analysis") or {}).get("fields") or {}).items())
        ),
        notice=notice or request.query_params.get("notice"),
        allowed=allowed_variables(shown),
        versions=await studio.repo.versions(agent),
        pending=pending,
        text_fields=TEXT_FIELDS,
        long_fields=LONG_FIELDS,
        single_fields=SINGLE_FIELDS,
        turn_fields=[(label, key, *TURN_RANGES[key]) for label, key in TURN_FIELDS],
        turn_switches=TURN_SWITCHES,
        languages=sorted(LANGUAGES.items(), key=lambda item: item[1]),
        pipeline_voices={k: sorted(v) if v else None for k, v in PIPELINE_VOICES.items()},
        pipeline=studio.book.pipeline,
        tool_names=sorted(TOOL_NAMES),
        sms_tool_names=sorted(SMS_TOOL_NAMES),
        field_types=FIELD_TYPES,
        derivations=DERIVATIONS,
        slots=[s["slot"] for s in shown.get("steps", []) if isinstance(s, dict) and "slot" in s],
    )


@signed_in()
async def portal_home(request: Request, viewer: Viewer) -> Response:
    """Staff land on their tenant's inbound agent; admins on the tenants list."""
    if viewer.user.is_admin or not viewer.user.tenant:
        return RedirectResponse("/tenants", status_code=303)
    tenant = await dashboard_of(request).tenants.get(viewer.user.tenant)
    return RedirectResponse(f"/portal/{tenant.slug}/agents/{tenant.agent}", status_code=303)


@signed_in()
async def agent_page(request: Request, viewer: Viewer) -> Response:
    tenant = await _tenant_for(request, viewer)
    if tenant is None:
        return not_found()
    try:
        return await _agent_page(request, viewer, tenant, request.path_params["slug"])
    except UnknownAgent:
        return not_found()


def apply_form(data: dict[str, Any], form: FormData) -> dict[str, Any]:
    """The draft's fields with the form's edits laid over them (only fields the form has)."""
    out = copy.deepcopy(data)
    for _, name in (*TEXT_FIELDS, *LONG_FIELDS, *SINGLE_FIELDS):
        if name in form:
            value = str(form[name]).replace("\r\n", "\n").strip()
            if value:
                out[name] = value
            else:
                out.pop(name, None)
    variables = out.get("variables")
    if isinstance(variables, dict):
        for key in list(variables):
            field = f"var.{key}"
            if field in form:
                variables[key] = str(form[field]).strip()
    for i, step in enumerate(out.get("steps", [])):
        for key in ("ask", "reprompt", "ack"):
            field = f"steps.{i}.{key}"
            if field in form and isinstance(step, dict):
                value = str(form[field]).strip()
                if value:
                    step[key] = value
                else:
                    step.pop(key, None)
    _apply_speech(out, form)
    _apply_turn_taking(out, form)
    _apply_tools(out, form)
    apply_analysis(out, form)
    faq: list[dict[str, Any]] = []
    index = 0
    while f"faq.{index}.question" in form:
        question = str(form[f"faq.{index}.question"]).strip()
        answer = str(form.get(f"faq.{index}.answer", "")).strip()
        keywords = [k.strip() for k in str(form.get(f"faq.{index}.keywords", "")).split(",")]
        if question or answer:
            faq.append(
                {"question": question, "answer": answer, "keywords": [k for k in keywords if k]}
            )
        index += 1
    if index:
        out["faq"] = faq
    return out


def _apply_speech(out: dict[str, Any], form: FormData) -> None:
    """Language and the per-pipeline voices; an emptied field falls back to the default."""
    if "language" in form:
        language = str(form["language"]).strip()
        if language:
            out["language"] = language
        else:
            out.pop("language", None)
    voices = dict(out.get("voices") or {})
    touched = False
    for pipeline in PIPELINE_VOICES:
        field = f"voices.{pipeline}"
        if field in form:
            touched = True
            value = str(form[field]).strip()
            if value:
                voices[pipeline] = value
            else:
                voices.pop(pipeline, None)
    if touched:
        if voices:
            out["voices"] = voices
        else:
            out.pop("voices", None)


def _apply_tools(out: dict[str, Any], form: FormData) -> None:
    """The tools by voice and by text (checkboxes), and the links' URLs; a link emptied is
    removed (the loader then names any text that still uses it)."""
    if "tools" in form:  # the form's marker: an unticked box is absent
        out["tools"] = [name for name in sorted(TOOL_NAMES) if form.get(f"tool.{name}") == "on"]
        out["sms_tools"] = [
            name for name in sorted(SMS_TOOL_NAMES) if form.get(f"sms_tool.{name}") == "on"
        ]
    links = out.get("links")
    if isinstance(links, dict):
        for name in list(links):
            field = f"link.{name}"
            if field in form:
                url = str(form[field]).strip()
                if url:
                    links[name] = url
                else:
                    links.pop(name)


def _apply_turn_taking(out: dict[str, Any], form: FormData) -> None:
    """[turn_taking] from the form. A number that does not parse is kept as typed, so the
    loader refuses it with the field and its range named (never silently dropped)."""
    if "turn_taking" not in form:  # the form's marker: a missing checkbox means "off"
        return
    taking = dict(out.get("turn_taking") or {})
    for _, key, default in TURN_SWITCHES:
        # An unticked box is "off"; only what differs from the default is stored.
        if (form.get(f"turn_taking.{key}") == "on") == default:
            taking.pop(key, None)
        else:
            taking[key] = not default
    for _, key in TURN_FIELDS:
        field = f"turn_taking.{key}"
        if field not in form:
            continue
        value = str(form[field]).strip()
        if not value:
            taking.pop(key, None)
            continue
        try:
            taking[key] = int(value)
        except ValueError:
            taking[key] = value
    if taking:
        out["turn_taking"] = taking
    else:
        out.pop("turn_taking", None)


@signed_in()
async def agent_save(request: Request, viewer: Viewer) -> Response:
    tenant = await _tenant_for(request, viewer)
    if tenant is None:
        return not_found()
    slug = request.path_params["slug"]
    studio = studio_of(request)
    try:
        agent = await studio.agent(tenant, slug, viewer.user.email)
    except UnknownAgent:
        return not_found()
    form = await request.form()
    data = apply_form((await studio.repo.draft(agent)).data, form)
    try:
        problem = analysis_problem(form)
        if problem is not None:
            raise problem
        await studio.save_draft(agent, data, viewer.user.email)
    except AgentDefinitionError as exc:
        rows = form_rows(form) if "analysis" in form else None
        return await _agent_page(
            request, viewer, tenant, slug, 400, error=exc, data=data, analysis_rows=rows
        )
    if form.get("action") == "publish":
        return await _publish(request, viewer, tenant, slug)
    return RedirectResponse(f"/portal/{tenant.slug}/agents/{slug}?notice=Draft+saved", 303)


async def _publish(request: Request, viewer: Viewer, tenant: Tenant, slug: str) -> Response:
    studio = studio_of(request)
    agent = await studio.agent(tenant, slug, viewer.user.email)
    try:
        result = await studio.publish(tenant, agent, viewer.user.email, viewer.user.is_admin)
    except AgentDefinitionError as exc:
        return await _agent_page(request, viewer, tenant, slug, 400, error=exc)
    notice = (
        f"Published+version+{result.version}" if result.version is not None else "Sent+for+approval"
    )
    return RedirectResponse(f"/portal/{tenant.slug}/agents/{slug}?notice={notice}", 303)


@signed_in()
async def agent_publish(request: Request, viewer: Viewer) -> Response:
    tenant = await _tenant_for(request, viewer)
    if tenant is None:
        return not_found()
    try:
        return await _publish(request, viewer, tenant, request.path_params["slug"])
    except UnknownAgent:
        return not_found()


@signed_in()
async def agent_rollback(request: Request, viewer: Viewer) -> Response:
    tenant = await _tenant_for(request, viewer)
    if tenant is None:
        return not_found()
    slug = request.path_params["slug"]
    studio = studio_of(request)
    form = await request.form()
    try:
        agent = await studio.agent(tenant, slug, viewer.user.email)
        number = int(str(form.get("version", "")))
        version = await studio.rollback(agent, number, viewer.user.email)
    except (UnknownAgent, ValueError):
        return not_found()
    return RedirectResponse(
        f"/portal/{tenant.slug}/agents/{slug}?notice=Rolled+back:+version+{version}", 303
    )


def _problem(exc: AgentDefinitionError) -> str:
    """The loader's message without the "draft: " source prefix."""
    text = str(exc)
    return text.split(": ", 1)[1] if text.startswith(("draft: ", "approval: ")) else text


# --- approvals (admins) ------------------------------------------------------------------


@signed_in(admin=True)
async def approvals_page(request: Request, viewer: Viewer) -> Response:
    studio = studio_of(request)
    return dashboard_of(request).render(
        "approvals.html",
        request,
        viewer=viewer,
        nav="approvals",
        pending=await studio.repo.approvals(),
    )


@signed_in(admin=True)
async def approval_decide(request: Request, viewer: Viewer) -> Response:
    studio = studio_of(request)
    form = await request.form()
    try:
        approval = await studio.repo.approval(int(request.path_params["approval_id"]))
    except (UnknownAgent, ValueError):
        return not_found()
    await studio.decide(approval, form.get("action") == "approve", viewer.user.email)
    return RedirectResponse("/approvals", status_code=303)


# --- tenant settings ---------------------------------------------------------------------

SETTING_FIELDS = (
    "timezone",
    "calling_hours",
    "calling_days",
    "recording_retention_days",
    "sms_help_text",
    "brand_color",
    "logo_url",
)


def _settings_of(tenant: Tenant) -> dict[str, Any]:
    return {
        "name": tenant.name,
        "timezone": tenant.timezone,
        "calling_hours": format_calling_hours(tenant.calling_start_min, tenant.calling_end_min),
        "calling_days": tenant.calling_days,
        "recording_retention_days": tenant.recording_retention_days,
        "sms_help_text": tenant.sms_help_text,
        "brand_color": tenant.brand_color,
        "logo_url": tenant.logo_url,
        "require_approval": tenant.require_approval,
    }


async def _settings_page(
    request: Request,
    viewer: Viewer,
    tenant: Tenant,
    status_code: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    dash = dashboard_of(request)
    return dash.render(
        "tenant_settings.html",
        request,
        status_code=status_code,
        viewer=viewer,
        nav="settings",
        tenant=tenant,
        values=form or _settings_of(tenant),
        errors=errors or {},
        numbers=await dash.tenants.numbers(tenant.slug),
        audit=await studio_of(request).repo.audit_log(tenant.slug),
    )


@signed_in()
async def settings_page(request: Request, viewer: Viewer) -> Response:
    tenant = await _tenant_for(request, viewer)
    if tenant is None:
        return not_found()
    return await _settings_page(request, viewer, tenant)


@signed_in()
async def settings_save(request: Request, viewer: Viewer) -> Response:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    tenant = await _tenant_for(request, viewer)
    if tenant is None:
        return not_found()
    form = await request.form()
    raw = {name: str(form.get(name, "")).strip() for name in ("name", *SETTING_FIELDS)}
    errors: dict[str, str] = {}
    before = _settings_of(tenant)
    updated = copy.copy(tenant)
    if not raw["name"] or len(raw["name"]) > 200:
        errors["name"] = "must be 1 to 200 characters"
    updated.name = raw["name"]
    try:
        ZoneInfo(raw["timezone"])
        updated.timezone = raw["timezone"]
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = f"{raw['timezone']!r} is not an IANA time zone"
    try:
        updated.calling_start_min, updated.calling_end_min = parse_calling_hours(
            raw["calling_hours"]
        )
        updated.calling_days = parse_calling_days(raw["calling_days"])
    except TenantFieldError as exc:
        errors[exc.field] = exc.message
    try:
        days = int(raw["recording_retention_days"])
        if not 0 <= days <= 3650:
            raise ValueError
        updated.recording_retention_days = days
    except ValueError:
        errors["recording_retention_days"] = "a whole number of days, 0 to 3650"
    help_text = raw["sms_help_text"]
    if len(help_text) > 320:
        errors["sms_help_text"] = "at most 320 characters (two SMS segments)"
    updated.sms_help_text = help_text or None
    try:
        updated.brand_color = check_color(raw["brand_color"])
    except BrandError as exc:
        errors["brand_color"] = str(exc).split(": ", 1)[-1]
    try:
        updated.logo_url = check_logo_url(raw["logo_url"])
    except BrandError as exc:
        errors["logo_url"] = str(exc).split(": ", 1)[-1]
    if viewer.user.is_admin:  # staff cannot lift their own approval requirement
        updated.require_approval = form.get("require_approval") == "on"
    if errors:
        return await _settings_page(request, viewer, tenant, 400, errors, raw)
    after = _settings_of(updated)
    changed = [k for k in after if after[k] != before[k]]
    if changed:
        await dashboard_of(request).tenants.save(updated)
        await studio_of(request).repo.audit(
            tenant.slug,
            viewer.user.email,
            "settings",
            {k: before[k] for k in changed},
            {k: after[k] for k in changed},
        )
    return RedirectResponse(f"/portal/{tenant.slug}/settings", status_code=303)
