"""The built-in CRM's tables on SQLite and PostgreSQL: one person per email or phone, notes
and activities idempotent by key, and a tenant never sees another's people."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from crm_client import ActivityInput, NoteInput, PersonInput
from voice_agent.storage.database import Database
from voice_agent.storage.people import BuiltinCrm, PeopleRepository


async def test_a_person_is_found_by_email_or_phone_and_upserted_once(db: Database) -> None:
    repo = PeopleRepository(db)
    maria, created = await repo.upsert("acme", PersonInput("Maria", "", phone="+12125550134"))
    assert created
    # The same person, now with an email and a last name: filled in, not a second row.
    again, created = await repo.upsert(
        "acme", PersonInput("Maria", "Lopez", "Maria@Example.com", "+12125550134")
    )
    assert not created and again.id == maria.id
    assert again.email == "maria@example.com" and again.last_name == "Lopez"
    by_email = await repo.find("acme", email="maria@example.com")
    by_phone = await repo.find("acme", phone="+12125550134")
    assert by_email == by_phone and by_email is not None and by_email.name == "Maria Lopez"
    # Another tenant has its own Maria.
    assert await repo.find("other", phone="+12125550134") is None
    theirs, created = await repo.upsert("other", PersonInput("M", phone="+12125550134"))
    assert created and theirs.id != maria.id


async def test_racing_upserts_make_one_person(db: Database) -> None:
    repo = PeopleRepository(db)
    results = await asyncio.gather(
        *(repo.upsert("acme", PersonInput("Sam", email="sam@example.com")) for _ in range(5))
    )
    assert len({p.id for p, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_notes_and_activities_are_idempotent_and_newest_first(db: Database) -> None:
    ticks = iter(datetime(2026, 12, 1, 9, minute, tzinfo=UTC) for minute in range(60))
    repo = PeopleRepository(db, clock=lambda: next(ticks))
    crm = BuiltinCrm(repo, "acme")
    person = await crm.upsert_person(PersonInput("Sam", email="sam@example.com"))
    first = await crm.attach_note(person.id, NoteInput("call:CA1", "Call", "one", {"a": 1}))
    again = await crm.attach_note(person.id, NoteInput("call:CA1", "Call", "changed"))
    assert again.id == first.id and again.body == "one" and again.fields == {"a": 1}
    await crm.attach_note(person.id, NoteInput("call:CA2", "Call 2", "two"))
    assert [n.key for n in await repo.notes(int(person.id))] == ["call:CA2", "call:CA1"]
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    later = datetime(2026, 12, 2, 10, tzinfo=UTC)
    await crm.record_activity(person.id, ActivityInput("lead", "1", "Lead from website", at))
    await crm.record_activity(person.id, ActivityInput("lead", "1", "Lead from website", at))
    await crm.record_activity(person.id, ActivityInput("call", "CA1", "Call: qualified", later))
    assert [a.ref for a in await repo.activities(int(person.id))] == ["CA1", "1"]


async def test_a_tenant_cannot_write_on_another_tenants_person(db: Database) -> None:
    repo = PeopleRepository(db)
    theirs = await BuiltinCrm(repo, "other").upsert_person(PersonInput("X", phone="+14155550100"))
    with pytest.raises(LookupError):
        await BuiltinCrm(repo, "acme").attach_note(theirs.id, NoteInput("k", "t", "b"))
    assert await repo.get(int(theirs.id), "acme") is None
    await repo.set_twenty_id(int(theirs.id), "uuid-1")
    assert await repo.twenty_id(int(theirs.id)) == "uuid-1"
