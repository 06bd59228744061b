"""The person page in the dashboard: every lead, call, text and note of the person, newest
first, reached from leads and calls; a person of another tenant is a 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from crm_client import NoteInput, PersonInput
from tests.dashboard.conftest import ACME_STAFF, ADMIN, GLOBEX_STAFF, XSS, AsUser, Site
from tests.dashboard.seed import SeedTurn, add_call, add_lead, add_thread
from voice_agent.storage.people import PeopleRepository

PHONE = "+12125550134"
CALL = "CA" + "c" * 32


async def _seed_person(site: Site) -> tuple[int, int]:
    db = site.db
    lead_id = await add_lead(db, "acme", PHONE, "Maria", last_name="Lopez", email="m@example.com")
    people = PeopleRepository(db)
    person, _ = await people.upsert("acme", PersonInput("Maria", "Lopez", "m@example.com", PHONE))
    await add_call(
        db,
        CALL,
        "acme",
        [SeedTurn("agent", "Hi Maria, this is Acme.", 0.1, 1.0)],
        started_at=datetime.now(UTC) - timedelta(hours=1),
        direction="outbound",
        from_number="+15557654321",
        to_number=PHONE,
        outcome="qualified",
        summary="Wants the boiler serviced.",
        lead_id=lead_id,
    )
    await add_thread(db, "acme", PHONE, [("inbound", "Can you come Tuesday?")])
    await people.add_note("acme", int(person.id), NoteInput("call:" + CALL, "Call: qualified", XSS))
    return int(person.id), lead_id


async def test_a_person_page_shows_everything_newest_first(site: Site, as_user: AsUser) -> None:
    person_id, lead_id = await _seed_person(site)
    staff = await as_user(ACME_STAFF)
    page = await staff.get(f"/people/{person_id}")
    assert page.status_code == 200
    html = page.text
    assert "Maria Lopez" in html and PHONE in html
    kinds = re.findall(r'data-kind="(\w+)"', html)
    assert sorted(set(kinds)) == ["call", "lead", "note", "sms"]
    # Newest first: the hour-old call is last; the note's body is escaped.
    assert kinds[-1] == "call"
    assert f'href="/calls/{CALL}"' in html and "Wants the boiler serviced." in html
    assert "Can you come Tuesday?" in html
    assert XSS not in html and "&lt;script&gt;" in html
    # Linked from the leads list and from the call.
    leads = await staff.get("/leads")
    assert f'href="/leads/{lead_id}/person"' in leads.text
    hop = await staff.get(f"/leads/{lead_id}/person")
    assert hop.status_code == 303 and hop.headers["location"] == f"/people/{person_id}"
    call = await staff.get(f"/calls/{CALL}")
    assert f'href="/calls/{CALL}/person"' in call.text
    hop = await staff.get(f"/calls/{CALL}/person")
    assert hop.status_code == 303 and hop.headers["location"] == f"/people/{person_id}"


async def test_another_tenants_person_is_not_found(site: Site, as_user: AsUser) -> None:
    person_id, lead_id = await _seed_person(site)
    other = await as_user(GLOBEX_STAFF)
    for path in (f"/people/{person_id}", f"/leads/{lead_id}/person", f"/calls/{CALL}/person"):
        response = await other.get(path)
        assert response.status_code == 404, path
        assert "Maria" not in response.text
    admin = await as_user(ADMIN)
    assert (await admin.get(f"/people/{person_id}")).status_code == 200
    assert (await admin.get("/people/999999")).status_code == 404


async def test_the_admin_page_shows_what_waits_in_the_outbox(site: Site, as_user: AsUser) -> None:
    from voice_agent.storage.records import OutboxMessage

    assert site.runtime.outbox is not None
    await site.runtime.outbox.repository.enqueue(
        OutboxMessage("twenty", "acme", "acme:person:1", "acme:lead:1", {"person_id": 1})
    )
    admin = await as_user(ADMIN)
    page = await admin.get("/tenants")
    assert page.status_code == 200
    row = re.search(r'<tr data-topic="twenty">(.*?)</tr>', page.text, re.S)
    assert row is not None and "<td>1</td>" in row.group(1)
    staff = await as_user(ACME_STAFF)
    assert (await staff.get("/tenants")).status_code == 404
