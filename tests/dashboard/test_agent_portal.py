"""The client portal (#13) over HTTP: a tenant's staff edit their agent's draft, see the
greeting rendered, publish; an unknown variable is refused by name; malicious text is
inert; approval when the tenant requires it; rollback; settings audited; another
tenant's agent and settings are 404; CSRF as on every form."""

from __future__ import annotations

import html

from tests.dashboard.conftest import ACME_STAFF, ADMIN, XSS, AsUser, Site, csrf_of

AGENT = "/portal/acme/agents/receptionist"


async def test_staff_edit_publish_and_see_the_greeting(site: Site, as_user: AsUser) -> None:
    staff = await as_user(ACME_STAFF)
    home = await staff.get("/portal")
    assert home.status_code == 303 and home.headers["location"] == AGENT
    page = await staff.get(AGENT)
    assert page.status_code == 200
    assert "Thanks for calling Acme Home Services, this is Joe." in page.text
    assert "<code>{business_name}</code>" in page.text  # the allowed variables listed
    token = csrf_of(page.text)

    saved = await staff.post(
        AGENT + "/draft",
        data={
            "csrf_token": token,
            "var.business_name": "Acme Plumbing",
            "greeting": "Hello, {business_name} here. How can we help?",
            "action": "save",
        },
    )
    assert saved.status_code == 303
    page = await staff.get(AGENT)
    assert 'id="rendered-greeting">Hello, Acme Plumbing here. How can we help?<' in page.text
    # Saved is not published: calls still run the template.
    assert site.runtime.agent_for("acme", "receptionist")[1] is None

    published = await staff.post(AGENT + "/publish", data={"csrf_token": token})
    assert published.status_code == 303 and "Published+version+1" in published.headers["location"]
    agent, version = site.runtime.agent_for("acme", "receptionist")
    assert version == 1 and agent is not None
    assert agent.render_speech(agent.greeting) == "Hello, Acme Plumbing here. How can we help?"
    # Globex (same template) is untouched.
    globex = site.runtime.agents.lookup("globex", "receptionist")
    assert globex is not None and "Acme Plumbing" not in globex.render_speech(globex.greeting)


async def test_unknown_variable_and_bad_fields_are_refused_by_name(
    site: Site, as_user: AsUser
) -> None:
    staff = await as_user(ACME_STAFF)
    token = csrf_of((await staff.get(AGENT)).text)
    bad = await staff.post(
        AGENT + "/draft",
        data={"csrf_token": token, "greeting": "Hi from {buisness_name}!", "action": "save"},
    )
    assert bad.status_code == 400
    assert "greeting: placeholder {buisness_name} is not declared" in html.unescape(bad.text)
    # The typed text stays in the form; nothing was stored.
    assert "Hi from {buisness_name}!" in html.unescape(bad.text)
    number = await staff.post(
        AGENT + "/draft",
        data={"csrf_token": token, "transfer_number": "call me maybe", "action": "publish"},
    )
    assert number.status_code == 400
    assert "transfer_number" in number.text and "E.164" in number.text
    assert site.runtime.agent_for("acme", "receptionist")[1] is None
    attribute = await staff.post(
        AGENT + "/draft",
        data={"csrf_token": token, "greeting": "{business_name.__class__}", "action": "save"},
    )
    assert attribute.status_code == 400 and "plain {snake_case} name" in attribute.text


async def test_malicious_text_is_inert(site: Site, as_user: AsUser) -> None:
    staff = await as_user(ACME_STAFF)
    token = csrf_of((await staff.get(AGENT)).text)
    saved = await staff.post(
        AGENT + "/draft",
        data={
            "csrf_token": token,
            "var.business_name": XSS + " {{ 7*7 }} {agent_name}",
            "greeting": "Welcome to {business_name}. {{ config }}",
            "action": "publish",
        },
    )
    assert saved.status_code == 303
    page = await staff.get(AGENT)
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert "49" not in page.text.split('id="rendered-greeting">')[1].split("</p>")[0]
    agent, _ = site.runtime.agent_for("acme", "receptionist")
    assert agent is not None
    spoken = agent.render_speech(agent.greeting)
    # Variable values are not templates: their braces are spoken as typed, not evaluated.
    assert spoken == f"Welcome to {XSS} {{{{ 7*7 }}}} {{agent_name}}. {{ config }}"


async def test_another_tenants_agent_and_settings_are_404(site: Site, as_user: AsUser) -> None:
    staff = await as_user(ACME_STAFF)
    token = csrf_of((await staff.get(AGENT)).text)
    for path in ("/portal/globex/agents/receptionist", "/portal/globex/settings", "/approvals"):
        assert (await staff.get(path)).status_code == 404, path
    for path in (
        "/portal/globex/agents/receptionist/draft",
        "/portal/globex/agents/receptionist/publish",
        "/portal/globex/settings",
    ):
        response = await staff.post(path, data={"csrf_token": token, "greeting": "x"})
        assert response.status_code == 404, path
    # An agent the tenant does not use cannot be made.
    assert (await staff.get("/portal/acme/agents/nobody")).status_code == 404
    # CSRF like every form.
    assert (await staff.post(AGENT + "/publish", data={})).status_code == 403


async def test_approval_required_then_granted_and_rollback(site: Site, as_user: AsUser) -> None:
    admin = await as_user(ADMIN)
    staff = await as_user(ACME_STAFF)
    settings_page = await admin.get("/portal/acme/settings")
    admin_token = csrf_of(settings_page.text)
    form = {
        "csrf_token": admin_token,
        "name": "Acme Plumbing",
        "timezone": "America/New_York",
        "calling_hours": "09:00-20:00",
        "calling_days": "123456",
        "recording_retention_days": "90",
        "sms_help_text": "",
        "brand_color": "#ff6600",
        "logo_url": "https://cdn.example.com/acme.png",
        "require_approval": "on",
    }
    assert (await admin.post("/portal/acme/settings", data=form)).status_code == 303

    token = csrf_of((await staff.get(AGENT)).text)
    asked = await staff.post(
        AGENT + "/draft",
        data={
            "csrf_token": token,
            "greeting": "Version one, {business_name}.",
            "action": "publish",
        },
    )
    assert "Sent+for+approval" in asked.headers["location"]
    assert site.runtime.agent_for("acme", "receptionist")[1] is None
    assert "Waiting for approval" in (await staff.get(AGENT)).text

    queue = await admin.get("/approvals")
    assert "Version one, {business_name}." in html.unescape(queue.text)
    approval_id = (
        site.runtime.agent_studio and (await site.runtime.agent_studio.repo.approvals("acme"))[0].id
    )
    decided = await admin.post(
        f"/approvals/{approval_id}", data={"csrf_token": admin_token, "action": "approve"}
    )
    assert decided.status_code == 303
    agent, version = site.runtime.agent_for("acme", "receptionist")
    assert version == 1 and agent is not None and agent.greeting.startswith("Version one")
    assert "Nothing is waiting" in (await admin.get("/approvals")).text

    # The admin publishes directly; then rolls back to version 1.
    await admin.post(
        AGENT + "/draft",
        data={"csrf_token": admin_token, "greeting": "Version two.", "action": "publish"},
    )
    assert site.runtime.agent_for("acme", "receptionist")[1] == 2
    rolled = await staff.post(AGENT + "/rollback", data={"csrf_token": token, "version": "1"})
    assert rolled.status_code == 303
    agent, version = site.runtime.agent_for("acme", "receptionist")
    assert version == 3 and agent is not None and agent.greeting.startswith("Version one")
    versions = (await staff.get(AGENT)).text
    assert "rollback to v1" in versions and ADMIN in versions

    audit = html.unescape((await staff.get("/portal/acme/settings")).text)
    assert '"require_approval": false' in audit and '"require_approval": true' in audit
    assert "agent.receptionist.published" in audit and ACME_STAFF in audit


async def test_staff_settings_are_validated_audited_and_cannot_lift_approval(
    site: Site, as_user: AsUser
) -> None:
    staff = await as_user(ACME_STAFF)
    token = csrf_of((await staff.get("/portal/acme/settings")).text)
    base = {
        "csrf_token": token,
        "name": "Acme Plumbing",
        "timezone": "America/Chicago",
        "calling_hours": "08:00-18:30",
        "calling_days": "12345",
        "recording_retention_days": "30",
        "sms_help_text": "Acme: call 555-0100. " + XSS,
        "brand_color": "#ff6600",
        "logo_url": "https://cdn.example.com/acme.png",
        "require_approval": "on",
    }
    bad = await staff.post(
        "/portal/acme/settings", data=base | {"calling_hours": "late", "timezone": "Mars/Base"}
    )
    assert bad.status_code == 400 and "calling_hours" in bad.text and "Mars/Base" in bad.text
    ok = await staff.post("/portal/acme/settings", data=base)
    assert ok.status_code == 303
    tenant = await site.runtime.tenants.get("acme")
    assert (tenant.calling_start_min, tenant.calling_end_min, tenant.calling_days) == (
        480,
        1110,
        "12345",
    )
    assert (tenant.timezone, tenant.recording_retention_days) == ("America/Chicago", 30)
    assert tenant.require_approval is False  # staff cannot set it
    page = (await staff.get("/portal/acme/settings")).text
    assert "<script>alert" not in page
    audit = html.unescape(page)
    assert '"calling_hours": "09:00-20:00"' in audit and '"calling_hours": "08:00-18:30"' in audit
    assert ACME_STAFF in audit
