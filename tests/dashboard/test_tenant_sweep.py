"""Every route of the app, requested by one tenant's staff with the other tenant's ids:
404 every time. The routes are read from the app itself, so a new route is swept too; a
route with a path parameter this file does not know fails the test until it is taught.
Also: every form the pages render carries a CSRF token, and a POST to every form route
without one is refused."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Mount, Route, WebSocketRoute

from crm_client.records import PersonInput
from tests.dashboard.conftest import (
    ACME_CALL,
    ACME_STAFF,
    GLOBEX_CALL,
    GLOBEX_STAFF,
    AsUser,
    Site,
)
from tests.dashboard.seed import add_lead, add_thread
from voice_agent.storage.people import PeopleRepository

_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")
_FORM = re.compile(r"<form\b[^>]*>(.*?)</form>", re.S | re.I)
_METHOD_POST = re.compile(r'method="post"', re.I)
#: Routes that are not the dashboard's: outside callers with their own credentials.
_NOT_STAFF = ("/twilio/", "/webhooks/", "/healthz", "/readyz", "/metrics", "/openapi.json")
SECRET = "Globex secret merger plans"


def _routes(site: Site) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for route in site.app.routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((method, route.path))
        elif not isinstance(route, Mount | WebSocketRoute):
            raise AssertionError(f"unknown kind of route {route!r}")
    return [(m, p) for m, p in found if not p.startswith(_NOT_STAFF)]


async def _globex_ids(site: Site) -> dict[str, str]:
    """An id of each kind that only globex owns."""
    db = site.db
    lead = await add_lead(db, "globex", "+15550001111", "Hans")
    thread = await add_thread(db, "globex", "+15550002222", [("inbound", SECRET)])
    person, _ = await PeopleRepository(db).upsert(
        "globex", PersonInput("Hans", phone="+15550001111")
    )
    return {
        "call_sid": GLOBEX_CALL,
        "lead_id": str(lead),
        "thread_id": str(thread),
        "person_id": str(person.id),
        "slug": "globex",
        "tenant": "globex",
        # Not seeded (an approval needs a draft); an id nobody has must be 404 too.
        "approval_id": "424242",
    }


async def test_staff_get_404_for_every_route_with_the_other_tenants_ids(
    site: Site, as_user: AsUser
) -> None:
    ids = await _globex_ids(site)
    acme = await as_user(ACME_STAFF)
    page = await acme.get("/calls")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    swept = 0
    for method, path in _routes(site):
        names = _PARAM.findall(path)
        if not names:
            continue
        unknown = [n for n in names if n not in ids]
        assert not unknown, f"{method} {path}: teach this sweep an id for {unknown}"
        url = _PARAM.sub(lambda m: ids[m.group(1)], path)
        if method == "GET":
            response = await acme.get(url)
        else:
            response = await acme.post(
                url, data={"csrf_token": token.group(1), "number": "+15550009999"}
            )
        assert response.status_code == 404, f"{method} {url}: {response.status_code}"
        assert SECRET not in response.text and "Hans" not in response.text
        swept += 1
    assert swept >= 10
    # The same ids work for their own tenant's staff (the sweep is not 404 for everyone).
    globex = await as_user(GLOBEX_STAFF)
    assert (await globex.get(f"/calls/{GLOBEX_CALL}")).status_code == 200
    assert (await globex.get(f"/api/sms/{ids['thread_id']}")).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        f"call_sid={GLOBEX_CALL}",
        "tenant=globex",
        "q=merger",
        "q=%27%20OR%201%3D1%20--",  # SQL injection in search: just words
        "q=%22%29%3B%20DROP%20TABLE%20calls%3B%20--",
    ],
)
async def test_list_routes_never_show_the_other_tenant(
    site: Site, as_user: AsUser, query: str
) -> None:
    acme = await as_user(ACME_STAFF)
    for method, path in _routes(site):
        if method != "GET" or "{" in path or path in ("/api/live/events", "/logout"):
            continue
        response = await acme.get(f"{path}?{query}")
        assert response.status_code < 500, f"{path}?{query}: {response.status_code}"
        assert SECRET not in response.text, f"{path}?{query} shows globex's call"
        assert GLOBEX_CALL not in response.text, f"{path}?{query} names globex's call"
    # The search still works, and still finds only acme's own call.
    found = await acme.get("/api/calls?q=sink")
    assert [c["call_sid"] for c in found.json()["calls"]] == [ACME_CALL]
    # The table is still there after the injection attempts.
    assert await site.runtime.calls.get_call(ACME_CALL) is not None


async def test_every_rendered_form_carries_a_csrf_token_and_posts_need_it(
    site: Site, as_user: AsUser
) -> None:
    admin = await as_user("admin@example.com")
    forms = 0
    for method, path in _routes(site):
        if method != "GET" or "{" in path or path == "/api/live/events":
            continue
        page = await admin.get(path)
        for match in _FORM.finditer(page.text):
            if _METHOD_POST.search(match.group(0)):
                forms += 1
                assert 'name="csrf_token"' in match.group(1), f"a form on {path} has no CSRF token"
    assert forms >= 3
    for method, path in _routes(site):
        if method != "POST":
            continue
        url = _PARAM.sub("x", path)
        response = await admin.post(url, data={"number": "+15550009999"})
        assert response.status_code in (403, 404), f"POST {url} without CSRF: {response}"
