"""Security headers on every response (CSP, no framing, HSTS only behind TLS), and HTML in
SMS, lead, agent and tenant text shown as text wherever it appears."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from tests.dashboard.conftest import (
    ACME_STAFF,
    ADMIN,
    XSS,
    AsUser,
    Site,
    client_for,
    seed,
    serve_in_process,
)
from tests.dashboard.seed import SeedTurn, add_call, add_lead, add_tenant, add_thread
from voice_agent.settings import Settings

ESCAPED = "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;"
XSS_CALL = "CA" + "c" * 32


async def test_every_page_and_api_carries_the_security_headers(site: Site) -> None:
    async with client_for(site.app) as client:
        for path in ("/login", "/calls", "/api/calls", "/healthz", "/openapi.json", "/nope"):
            response = await client.get(path)
            csp = response.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
            assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "same-origin"
            # Plain http (local use): no HSTS, which would lock the browser out of it.
            assert "strict-transport-security" not in response.headers


async def test_hsts_behind_tls(cascade_settings: Callable[..., Settings], recording: Path) -> None:
    settings = cascade_settings(public_base_url="https://agent.example.com")
    async with serve_in_process(settings) as (app, runtime):
        await seed(runtime, recording)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="https://agent.example.com"
        ) as c:
            response = await c.get("/login")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


async def test_html_in_sms_lead_agent_and_tenant_text_is_inert(site: Site, as_user: AsUser) -> None:
    db = site.db
    await add_lead(db, "acme", "+15550003333", XSS, last_name=XSS)
    thread = await add_thread(db, "acme", "+15550004444", [("inbound", XSS), ("outbound", XSS)])
    await add_call(db, XSS_CALL, "acme", [SeedTurn("agent", XSS, 0.2, 1.0)], summary=XSS)
    await add_tenant(db, "evil", name=XSS)
    acme = await as_user(ACME_STAFF)
    admin = await as_user(ADMIN)
    pages = [
        (acme, "/leads"),
        (acme, "/sms"),  # the thread list: numbers only, no bodies
        (acme, f"/sms/{thread}"),
        (acme, f"/calls/{XSS_CALL}"),
        (acme, "/calls"),  # the call list: no summaries
        (admin, "/tenants"),
        (admin, "/tenants/evil"),
    ]
    for client, path in pages:
        html = (await client.get(path)).text
        assert XSS not in html, path
        assert "<img src=x" not in html, path
        if path not in ("/sms", "/calls"):
            assert ESCAPED in html, f"{path} does not show the text at all"
