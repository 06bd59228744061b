"""The dashboard's pages and API over HTTP: filters and search, the call page, recordings
with Range, exports, leads, SMS, tenant administration and white-label branding."""

from __future__ import annotations

import re

import orjson
import soundfile

from tests.dashboard.conftest import (
    ACME_CALL,
    ACME_STAFF,
    ADMIN,
    GLOBEX_STAFF,
    AsUser,
    Site,
    csrf_of,
)
from tests.dashboard.seed import SeedTurn, add_call, add_lead, add_opt_out, add_thread
from voice_agent.storage.transcript import transcript_dict


async def test_calls_page_filters_and_search(as_user: AsUser, site: Site) -> None:
    acme = await as_user(ACME_STAFF)
    await add_call(
        site.db,
        "CA" + "c" * 32,
        "acme",
        [SeedTurn("caller", "Boiler quote please", 0, 2)],
        direction="outbound",
    )
    found = await acme.get("/calls", params={"q": "kitchen sink"})
    assert found.status_code == 200
    assert ACME_CALL in found.text and "CA" + "c" * 32 not in found.text
    outbound = await acme.get("/calls", params={"direction": "outbound"})
    assert "CA" + "c" * 32 in outbound.text and ACME_CALL not in outbound.text
    assert "No calls match." in (await acme.get("/calls", params={"q": "volcano"})).text
    bad = await acme.get("/calls", params={"since": "yesterday", "direction": "sideways"})
    assert bad.status_code == 400
    assert "<b>since</b>" in bad.text and "<b>direction</b>" in bad.text


async def test_api_pages_and_field_errors(as_user: AsUser, site: Site) -> None:
    admin = await as_user(ADMIN)
    for i in range(4):
        await add_call(site.db, f"CAp{i}", "acme", [SeedTurn("caller", "page me", 0, 1)])
    first = (await admin.get("/api/calls", params={"q": "page", "limit": 3})).json()
    assert len(first["calls"]) == 3 and first["next_cursor"]
    rest = (
        await admin.get(
            "/api/calls", params={"q": "page", "limit": 3, "after": first["next_cursor"]}
        )
    ).json()
    assert len(rest["calls"]) == 1 and rest["next_cursor"] is None
    sids = {c["call_sid"] for c in first["calls"] + rest["calls"]}
    assert sids == {f"CAp{i}" for i in range(4)}
    bad = await admin.get(
        "/api/calls", params={"until": "2026-13-01", "after": "zzz", "number": "x"}
    )
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"until", "after", "number"}
    assert (await admin.get("/api/calls", params={"limit": "lots"})).json() == {
        "errors": {"limit": "must be a whole number"}
    }


async def test_call_page_timeline_waterfall_and_player(as_user: AsUser) -> None:
    acme = await as_user(ACME_STAFF)
    html = (await acme.get(f"/calls/{ACME_CALL}")).text
    assert f'src="/calls/{ACME_CALL}/recording"' in html
    assert "Leaking sink; visit booked." in html and "booked" in html
    starts = re.findall(r'data-start="([\d.]+)"', html)
    assert starts == ["0.200", "3.000", "6.000", "8.200", "10.000"]
    assert html.count('class="turn agent interrupted"') == 1
    assert html.count('class="waterfall"') == 2
    # 820 ms is the longest reply: its stages fill the bar; 640 ms fills 78 % of it.
    assert 'class="seg endpointing" style="left: 0.00%; width: 40.00%"' in html
    assert re.search(r'class="seg tts" style="left: 62\.44%; width: 11\.71%"', html)
    assert "LLM first token 82 ms" in html


async def test_recording_served_with_range_requests(as_user: AsUser, site: Site) -> None:
    acme = await as_user(ACME_STAFF)
    url = f"/calls/{ACME_CALL}/recording"
    whole = await acme.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav"
    assert whole.content == site.recording.read_bytes()
    assert soundfile.info(str(site.recording)).channels == 2
    part = await acme.get(url, headers={"range": "bytes=44-1043"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 44-1043/{len(whole.content)}"
    assert part.content == whole.content[44:1044]
    # Swept by retention: the call stays, its audio is gone.
    site.recording.unlink()
    assert (await acme.get(url)).status_code == 404
    assert (await acme.get(f"/calls/{ACME_CALL}")).status_code == 200


async def test_exports_match_the_transcript_command(as_user: AsUser, site: Site) -> None:
    acme = await as_user(ACME_STAFF)
    exported = await acme.get(f"/calls/{ACME_CALL}/transcript.json")
    assert "attachment" in exported.headers["content-disposition"]
    stored = await site.runtime.calls.get_call(ACME_CALL)
    assert stored is not None
    assert exported.json() == orjson.loads(orjson.dumps(transcript_dict(stored)))
    text = (await acme.get(f"/calls/{ACME_CALL}/transcript.txt")).text
    assert "[00:00:03] Caller: My kitchen sink is leaking under the cabinet." in text
    assert "[interrupted]" in text


async def test_leads_and_sms_with_opt_out_state(as_user: AsUser, site: Site) -> None:
    lead = await add_lead(site.db, "acme", "+14155550101", "Ana", status="contacted")
    await add_lead(site.db, "globex", "+14155550199", "Gus")
    await add_opt_out(site.db, "acme", "+14155550101")
    thread = await add_thread(
        site.db,
        "acme",
        "+14155550101",
        [("inbound", "<b>hi</b> there"), ("outbound", "Hello!"), ("inbound", "STOP")],
    )
    theirs = await add_thread(site.db, "globex", "+14155550199", [("inbound", "globex only")])
    acme = await as_user(ACME_STAFF)
    leads = (await acme.get("/leads")).text
    assert "Ana" in leads and "opted out" in leads and "Gus" not in leads
    threads = (await acme.get("/sms")).text
    assert f'href="/sms/{thread}"' in threads and f'href="/sms/{theirs}"' not in threads
    view = (await acme.get(f"/sms/{thread}")).text
    assert "&lt;b&gt;hi&lt;/b&gt; there" in view and "opted out (STOP)" in view
    assert (await acme.get(f"/sms/{theirs}")).status_code == 404
    # The JSON API, scoped the same way.
    api_leads = (await acme.get("/api/leads")).json()["leads"]
    assert [(x["first_name"], x["opted_out"]) for x in api_leads] == [("Ana", True)]
    api_thread = (await acme.get(f"/api/sms/{thread}")).json()
    assert [m["body"] for m in api_thread["messages"]] == ["<b>hi</b> there", "Hello!", "STOP"]
    assert api_thread["opted_out"] is True
    assert (await acme.get(f"/api/sms/{theirs}")).status_code == 404
    assert (await acme.get("/sms/not-a-number")).status_code == 404
    # The call page shows its lead, scoped the same way.
    await add_call(site.db, "CAlead", "acme", [], lead_id=lead)
    assert "Ana" in (await acme.get("/calls/CAlead")).text


async def test_tenant_admin_numbers_usage_and_agent(as_user: AsUser, site: Site) -> None:
    admin = await as_user(ADMIN)
    page = await admin.get("/tenants/acme")
    assert page.status_code == 200
    assert "Usage this month" in page.text
    agent = site.runtime.agents["receptionist"]
    assert "Inbound: receptionist" in page.text and agent.persona in page.text
    csrf = csrf_of(page.text)
    add = await admin.post(
        "/tenants/acme/numbers", data={"csrf_token": csrf, "number": "(415) 555-0134"}
    )
    assert add.status_code == 303
    assert await site.runtime.tenants.numbers("acme") == [("+14155550134", None)]
    taken = await admin.post(
        "/tenants/globex/numbers", data={"csrf_token": csrf, "number": "+14155550134"}
    )
    assert taken.status_code == 400 and "already routes to a tenant" in taken.text
    bad = await admin.post(
        "/tenants/acme/numbers", data={"csrf_token": csrf, "number": "12", "agent": "nobody"}
    )
    assert bad.status_code == 400 and "<b>number</b>" in bad.text and "<b>agent</b>" in bad.text
    # Removing through another tenant's URL does nothing.
    await admin.post(
        "/tenants/globex/numbers/remove", data={"csrf_token": csrf, "number": "+14155550134"}
    )
    assert await site.runtime.tenants.numbers("acme") == [("+14155550134", None)]
    await admin.post(
        "/tenants/acme/numbers/remove", data={"csrf_token": csrf, "number": "+14155550134"}
    )
    assert await site.runtime.tenants.numbers("acme") == []
    listing = (await admin.get("/tenants")).text
    assert 'href="/tenants/acme"' in listing and 'href="/tenants/globex"' in listing
    assert (await admin.get("/tenants/nope")).status_code == 404


async def test_white_label_on_staff_pages(as_user: AsUser, site: Site) -> None:
    acme = await as_user(ACME_STAFF)
    html = (await acme.get("/calls")).text
    assert "--brand: #ff6600;" in html and "Acme Plumbing" in html
    assert 'src="https://cdn.example.com/acme.png"' in html
    globex = await as_user(GLOBEX_STAFF)
    assert "--brand: #00aa55;" in (await globex.get("/calls")).text

    admin = await as_user(ADMIN)
    csrf = csrf_of((await admin.get("/tenants/acme")).text)
    hostile = {
        "csrf_token": csrf,
        "name": "Acme",
        "brand_color": "red;}body{display:none",
        "logo_url": "javascript:alert(1)",
    }
    refused = await admin.post("/tenants/acme/branding", data=hostile)
    assert refused.status_code == 400
    assert "<b>brand_color</b>" in refused.text and "<b>logo_url</b>" in refused.text
    ok = await admin.post(
        "/tenants/acme/branding",
        data={"csrf_token": csrf, "name": "Acme & Sons", "brand_color": "#123abc", "logo_url": ""},
    )
    assert ok.status_code == 303
    html = (await acme.get("/calls")).text
    assert "--brand: #123abc;" in html and "Acme &amp; Sons" in html and "acme.png" not in html


async def test_a_bad_colour_stored_elsewhere_never_reaches_css(as_user: AsUser, site: Site) -> None:
    tenant = await site.runtime.tenants.get("acme")
    tenant.brand_color = "red;}</style><script>alert(1)</script>"
    await site.runtime.tenants.save(tenant)
    acme = await as_user(ACME_STAFF)
    html = (await acme.get("/calls")).text
    assert "<script>alert(1)" not in html and "--brand: #2563eb;" in html


async def test_admin_adds_users(as_user: AsUser, site: Site) -> None:
    admin = await as_user(ADMIN)
    csrf = csrf_of((await admin.get("/users")).text)
    made = await admin.post(
        "/users",
        data={
            "csrf_token": csrf,
            "email": "new@acme.test",
            "password": "pw-new",
            "role": "staff",
            "tenant": "acme",
        },
    )
    assert made.status_code == 303
    assert "new@acme.test" in (await admin.get("/users")).text
    again = await admin.post(
        "/users",
        data={
            "csrf_token": csrf,
            "email": "new@acme.test",
            "password": "pw",
            "role": "staff",
            "tenant": "acme",
        },
    )
    assert again.status_code == 400 and "exists already" in again.text
    staffless = await admin.post(
        "/users",
        data={
            "csrf_token": csrf,
            "email": "b@acme.test",
            "password": "pw",
            "role": "staff",
            "tenant": "",
        },
    )
    assert staffless.status_code == 400 and "tenant" in staffless.text


async def test_admin_adds_a_tenant_and_staff_cannot(as_user: AsUser, site: Site) -> None:
    admin = await as_user(ADMIN)
    csrf = csrf_of((await admin.get("/tenants")).text)
    form = {
        "csrf_token": csrf,
        "slug": "initech",
        "name": "Initech",
        "agent": "receptionist",
        "outbound_agent": "lead_qualifier",
        "timezone": "America/Chicago",
    }
    made = await admin.post("/tenants", data=form)
    assert made.status_code == 303 and made.headers["location"] == "/tenants/initech"
    stored = await site.runtime.tenants.get("initech")
    assert (stored.name, stored.timezone) == ("Initech", "America/Chicago")

    again = await admin.post("/tenants", data=form | {"name": "Other"})
    assert again.status_code == 400 and "exists already" in again.text
    assert (await site.runtime.tenants.get("initech")).name == "Initech"  # not overwritten
    for field, value in (("slug", "Bad Slug"), ("agent", "nobody"), ("timezone", "Mars/Base")):
        bad = await admin.post("/tenants", data=form | {"slug": "newco", field: value})
        assert bad.status_code == 400 and f"<b>{field}</b>" in bad.text

    staff = await as_user(ACME_STAFF)
    staff_csrf = csrf_of((await staff.get("/calls")).text)
    refused = await staff.post("/tenants", data=form | {"slug": "x", "csrf_token": staff_csrf})
    assert refused.status_code == 404
    assert [t.slug for t in await site.runtime.tenants.all()] == [
        "acme",
        "default",
        "globex",
        "initech",
    ]
