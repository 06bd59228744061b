"""Test calls in the dashboard (#13): the call list labels a browser test call "test" and
filters on it (include, exclude, only), in the page and in /api/calls; the call page
and /api/calls/{sid} say it is a test call (a real call's do not); a Twilio status
callback naming a test call meters no telephony, while a real call's is metered."""

from __future__ import annotations

from tests.app.twilio_side import sign, status_params
from tests.dashboard.conftest import ACME_CALL, ACME_STAFF, AsUser, Site, client_for
from tests.dashboard.seed import SeedTurn, add_call
from voice_agent.storage.metering import UsageRepository

TEST_CALL = "CT" + "c" * 32


async def _with_test_call(site: Site) -> None:
    await add_call(
        site.db, TEST_CALL, "acme", [SeedTurn("agent", "Draft hello", 0.1, 1.0)], is_test=True
    )


async def test_list_labels_and_filters_test_calls(site: Site, as_user: AsUser) -> None:
    await _with_test_call(site)
    staff = await as_user(ACME_STAFF)
    page = (await staff.get("/calls")).text
    assert 'id="filter-tests"' in page
    test_row = page.split(f'data-call-sid="{TEST_CALL}"')[1].split("</tr>")[0]
    real_row = page.split(f'data-call-sid="{ACME_CALL}"')[1].split("</tr>")[0]
    assert 'class="pill test"' in test_row and "pill test" not in real_row
    hidden = (await staff.get("/calls?tests=exclude")).text
    assert TEST_CALL not in hidden and ACME_CALL in hidden
    assert '<option value="exclude" selected>' in hidden
    only = (await staff.get("/calls?tests=only")).text
    assert TEST_CALL in only and ACME_CALL not in only
    bad = await staff.get("/calls?tests=maybe")
    assert "must be include, exclude or only" in bad.text

    listed = (await staff.get("/api/calls")).json()["calls"]
    assert {c["call_sid"]: c["is_test"] for c in listed} == {TEST_CALL: True, ACME_CALL: False}
    only_api = (await staff.get("/api/calls?tests=only")).json()["calls"]
    assert [c["call_sid"] for c in only_api] == [TEST_CALL]
    excluded = (await staff.get("/api/calls?tests=exclude")).json()["calls"]
    assert [c["call_sid"] for c in excluded] == [ACME_CALL]
    refused = await staff.get("/api/calls?tests=all")
    assert refused.status_code == 400 and "tests" in refused.json()["errors"]


async def test_the_call_page_says_test_call(site: Site, as_user: AsUser) -> None:
    await _with_test_call(site)
    staff = await as_user(ACME_STAFF)
    page = await staff.get(f"/calls/{TEST_CALL}")
    assert page.status_code == 200
    heading = page.text.split("<h1>")[1].split("</h1>")[0]
    assert '<span class="pill test" id="call-test"' in heading and ">Test call</span>" in heading
    assert 'id="test-call-note"' in page.text
    real = await staff.get(f"/calls/{ACME_CALL}")
    assert real.status_code == 200
    assert 'id="call-test"' not in real.text and 'id="test-call-note"' not in real.text
    assert (await staff.get(f"/api/calls/{TEST_CALL}")).json()["is_test"] is True
    assert (await staff.get(f"/api/calls/{ACME_CALL}")).json()["is_test"] is False


async def test_a_test_call_costs_no_telephony(site: Site) -> None:
    await _with_test_call(site)
    url = site.settings.public_base_url + "/twilio/status"
    async with client_for(site.app, site.settings.public_base_url) as twilio:
        for sid in (TEST_CALL, ACME_CALL):
            params = status_params(sid)
            answer = await twilio.post(
                url, data=params, headers={"X-Twilio-Signature": sign(url, params)}
            )
            assert answer.status_code == 204
    usage = UsageRepository(site.db)
    assert [r.meter for r in await usage.rows_for_call(TEST_CALL)] == []
    assert [r.meter for r in await usage.rows_for_call(ACME_CALL)] == ["call_seconds"]
