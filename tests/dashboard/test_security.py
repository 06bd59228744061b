"""The dashboard's guard rails over real HTTP (in-process ASGI): sign-in, tenant scope
(404, never 403, for another tenant's things), CSRF, escaping, cookie flags, rate limit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.dashboard.conftest import (
    ACME_CALL,
    ACME_STAFF,
    ADMIN,
    GLOBEX_CALL,
    GLOBEX_STAFF,
    XSS,
    AsUser,
    Site,
    client_for,
    csrf_of,
    login,
    seed,
    serve_in_process,
)
from voice_agent.dashboard.sessions import COOKIE_NAME
from voice_agent.settings import Settings

CALL_URLS = [
    "/calls/{sid}",
    "/calls/{sid}/recording",
    "/calls/{sid}/transcript.json",
    "/calls/{sid}/transcript.txt",
    "/api/calls/{sid}",
]


@pytest.mark.parametrize("template", CALL_URLS)
async def test_staff_get_404_for_another_tenants_call(as_user: AsUser, template: str) -> None:
    acme = await as_user(ACME_STAFF)
    theirs = await acme.get(template.format(sid=GLOBEX_CALL))
    assert theirs.status_code == 404
    assert "Globex" not in theirs.text and "merger" not in theirs.text
    # The same URL for a call that does not exist answers the same: nothing leaks.
    missing = await acme.get(template.format(sid="CA" + "9" * 32))
    assert missing.status_code == 404
    assert (await acme.get(template.format(sid=ACME_CALL))).status_code == 200


async def test_call_list_and_api_show_only_the_viewers_tenant(as_user: AsUser) -> None:
    acme = await as_user(ACME_STAFF)
    page = await acme.get("/calls")
    assert ACME_CALL in page.text and GLOBEX_CALL not in page.text
    # A staff member cannot widen the scope with ?tenant=.
    forced = await acme.get("/api/calls", params={"tenant": "globex"})
    assert [c["call_sid"] for c in forced.json()["calls"]] == [ACME_CALL]
    searched = await acme.get("/api/calls", params={"q": "merger"})
    assert searched.json()["calls"] == []

    admin = await as_user(ADMIN)
    both = {c["call_sid"] for c in (await admin.get("/api/calls")).json()["calls"]}
    assert both == {ACME_CALL, GLOBEX_CALL}
    only = (await admin.get("/api/calls", params={"tenant": "globex"})).json()["calls"]
    assert [c["call_sid"] for c in only] == [GLOBEX_CALL]


async def test_admin_pages_are_404_for_staff(as_user: AsUser) -> None:
    acme = await as_user(ACME_STAFF)
    for path in ("/tenants", "/tenants/acme", "/tenants/globex", "/users"):
        assert (await acme.get(path)).status_code == 404, path
    csrf = csrf_of((await acme.get("/calls")).text)
    forged = await acme.post(
        "/tenants/globex/numbers", data={"csrf_token": csrf, "number": "+14155550134"}
    )
    assert forged.status_code == 404


async def test_signed_out_requests_go_to_login_or_401(site: Site) -> None:
    async with client_for(site.app) as anonymous:
        page = await anonymous.get(f"/calls/{ACME_CALL}")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=%2Fcalls%2F")
        assert (await anonymous.get("/api/calls")).status_code == 401
        assert (await anonymous.get(f"/calls/{ACME_CALL}/recording")).status_code == 303
        # A forged cookie is no session.
        anonymous.cookies.set(COOKIE_NAME, "eyJ1IjoxfQ.forged")
        assert (await anonymous.get("/api/calls")).status_code == 401


async def test_posts_without_the_csrf_token_are_refused(as_user: AsUser, site: Site) -> None:
    admin = await as_user(ADMIN)
    for path, data in [
        ("/tenants/acme/numbers", {"number": "+14155550134"}),
        ("/tenants/acme/branding", {"name": "X", "brand_color": "#000000"}),
        ("/users", {"email": "x@example.com", "password": "pw", "role": "admin"}),
        ("/tenants", {"slug": "newco", "name": "N", "agent": "receptionist"}),
        ("/logout", {}),
    ]:
        missing = await admin.post(path, data=data)
        assert missing.status_code == 403, path
        wrong = await admin.post(path, data=data | {"csrf_token": "not-the-token"})
        assert wrong.status_code == 403, path
    assert await site.runtime.tenants.numbers("acme") == []
    assert "newco" not in {t.slug for t in await site.runtime.tenants.all()}
    # Sign-in itself needs the token of the page that showed the form.
    async with client_for(site.app) as fresh:
        response = await fresh.post("/login", data={"email": ADMIN, "password": "x"})
        assert response.status_code == 403
    # With the token, the same form works.
    csrf = csrf_of((await admin.get("/tenants/acme")).text)
    ok = await admin.post(
        "/tenants/acme/numbers", data={"number": "+14155550134", "csrf_token": csrf}
    )
    assert ok.status_code == 303
    assert await site.runtime.tenants.numbers("acme") == [("+14155550134", None)]


async def test_transcript_html_is_shown_as_text(as_user: AsUser) -> None:
    acme = await as_user(ACME_STAFF)
    html = (await acme.get(f"/calls/{ACME_CALL}")).text
    assert XSS not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    # JSON carries the text as it was said; the text export is plain text, not HTML.
    data = (await acme.get(f"/api/calls/{ACME_CALL}")).json()
    assert XSS in [t["text"] for t in data["turns"]]
    export = await acme.get(f"/calls/{ACME_CALL}/transcript.txt")
    assert export.headers["content-type"].startswith("text/plain")


def _session_cookie(response: httpx.Response) -> str:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE_NAME)]
    return header.lower()


async def test_cookie_is_httponly_and_samesite_not_secure_on_http(site: Site) -> None:
    async with client_for(site.app) as client:
        response = await login(client, ACME_STAFF)
        cookie = _session_cookie(response)
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert "secure" not in cookie


async def test_cookie_is_secure_behind_https(
    cascade_settings: Callable[..., Settings], recording: Path
) -> None:
    settings = cascade_settings(public_base_url="https://agent.example.com")
    async with serve_in_process(settings) as (app, runtime):
        await seed(runtime, recording)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="https://agent.example.com"
        ) as c:
            first = await c.get("/login")
            assert "secure" in _session_cookie(first)
            response = await login(c, ACME_STAFF)
            assert response.status_code == 303
            cookie = _session_cookie(response)
            assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


async def test_wrong_password_and_unknown_email_look_alike(site: Site) -> None:
    async with client_for(site.app) as client:
        wrong = await login(client, ACME_STAFF, "not the password")
        unknown = await login(client, "nobody@acme.test", "whatever")
        assert wrong.status_code == unknown.status_code == 401
        assert (
            "Wrong email or password." in wrong.text and "Wrong email or password." in unknown.text
        )
        assert (await client.get("/api/calls")).status_code == 401


async def test_login_rate_limit_per_address_and_email(site: Site) -> None:
    async with client_for(site.app) as client:
        for _ in range(5):
            assert (await login(client, ACME_STAFF, "guess")).status_code == 401
        blocked = await login(client, ACME_STAFF)  # even the right password, now
        assert blocked.status_code == 429
        assert "Too many failed attempts" in blocked.text
        # Another account from the same address is not locked out by it.
        assert (await login(client, GLOBEX_STAFF)).status_code == 303


async def test_sessions_are_rotated_at_sign_in_and_cleared_at_sign_out(site: Site) -> None:
    async with client_for(site.app) as client:
        before = csrf_of((await client.get("/login")).text)
        assert (await login(client, ACME_STAFF)).status_code == 303
        after = csrf_of((await client.get("/calls")).text)
        assert after != before
        out = await client.post("/logout", data={"csrf_token": after})
        assert out.status_code == 303
        assert (await client.get("/api/calls")).status_code == 401


async def test_next_parameter_cannot_leave_the_site(site: Site) -> None:
    async with client_for(site.app) as client:
        page = await client.get("/login", params={"next": "//evil.example/x"})
        response = await client.post(
            "/login",
            data={
                "email": ACME_STAFF,
                "password": "correct horse battery staple",
                "csrf_token": csrf_of(page.text),
                "next": "https://evil.example/",
            },
        )
        assert response.headers["location"] == "/calls"
