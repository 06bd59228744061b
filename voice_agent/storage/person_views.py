"""A person as the dashboard shows them: everything the tenant has with them (leads,
calls, texts, notes), newest first. Leads are theirs by email or phone; calls and texts
by phone (an inbound call's caller, an outbound call's callee, the SMS thread's number).
Every read is scoped to a tenant (None: an admin, any tenant)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, desc, or_, select

from crm_client import Note, Person
from voice_agent.storage.database import Database
from voice_agent.storage.people import PeopleRepository
from voice_agent.storage.tables import calls, leads, people, sms_messages, sms_threads

_LIMIT = 200


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    kind: str  # lead | call | sms | note
    at: datetime
    title: str
    detail: str = ""
    link: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PersonPage:
    person: Person
    tenant: str
    twenty_id: str | None
    entries: list[TimelineEntry]

    def count(self, kind: str) -> int:
        return sum(1 for e in self.entries if e.kind == kind)


def _note_entry(note: Note) -> TimelineEntry:
    assert note.created_at is not None
    return TimelineEntry("note", note.created_at, note.title, note.body, fields=note.fields)


class PersonViews:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._people = PeopleRepository(db)

    async def page(self, person_id: int, tenant: str | None) -> PersonPage | None:
        """The person's page, or None when there is no such person in ``tenant``."""
        query = select(people).where(people.c.id == person_id)
        if tenant is not None:
            query = query.where(people.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                return None
            entries = await self._entries(conn, row)
        person = await self._people.get(person_id)
        assert person is not None
        notes = [_note_entry(n) for n in await self._people.notes(person_id)]
        entries.extend(notes)
        entries.sort(key=lambda e: e.at, reverse=True)
        return PersonPage(person, row.tenant, row.twenty_id, entries)

    async def _entries(self, conn: Any, person: Any) -> list[TimelineEntry]:
        tenant, phone, email = person.tenant, person.phone, person.email
        entries: list[TimelineEntry] = []
        same = []
        if phone:
            same.append(leads.c.phone == phone)
        if email:
            same.append(leads.c.email == email)
        for lead in await conn.execute(
            select(leads)
            .where(leads.c.tenant == tenant, or_(*same))
            .order_by(desc(leads.c.created_at))
            .limit(_LIMIT)
        ):
            name = f"{lead.first_name} {lead.last_name}".strip()
            source = f" from {lead.source}" if lead.source else ""
            entries.append(
                TimelineEntry(
                    "lead",
                    lead.created_at,
                    f"Lead{source}: {name}",
                    f"status {lead.status}",
                    None,
                    dict(lead.fields or {}),
                )
            )
        if not phone:
            return entries
        for call in await conn.execute(
            select(calls)
            .where(
                calls.c.tenant == tenant,
                or_(
                    and_(calls.c.direction == "inbound", calls.c.from_number == phone),
                    and_(calls.c.direction == "outbound", calls.c.to_number == phone),
                ),
            )
            .order_by(desc(calls.c.started_at))
            .limit(_LIMIT)
        ):
            outcome = f": {call.outcome}" if call.outcome else ""
            entries.append(
                TimelineEntry(
                    "call",
                    call.started_at,
                    f"{call.direction.capitalize()} call{outcome}",
                    call.summary or call.status,
                    f"/calls/{call.call_sid}",
                )
            )
        for text in await conn.execute(
            select(sms_messages, sms_threads.c.id.label("thread"))
            .select_from(sms_threads.join(sms_messages))
            .where(sms_threads.c.tenant == tenant, sms_threads.c.number == phone)
            .order_by(desc(sms_messages.c.created_at))
            .limit(_LIMIT)
        ):
            who = "They texted" if text.direction == "inbound" else "We texted"
            entries.append(
                TimelineEntry("sms", text.created_at, who, text.body, f"/sms/{text.thread}")
            )
        return entries

    async def for_lead(self, lead_id: int, tenant: str | None) -> int | None:
        """The person a lead belongs to (by email, else phone), within ``tenant``."""
        query = select(leads.c.tenant, leads.c.email, leads.c.phone).where(leads.c.id == lead_id)
        if tenant is not None:
            query = query.where(leads.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            lead = (await conn.execute(query)).first()
        if lead is None:
            return None
        person = await self._people.find(lead.tenant, phone=lead.phone, email=lead.email)
        return int(person.id) if person is not None else None

    async def for_call(self, call_sid: str, tenant: str | None) -> int | None:
        """The person on the other end of a call, by number, within ``tenant``."""
        query = select(calls.c.tenant, calls.c.direction, calls.c.from_number, calls.c.to_number)
        query = query.where(calls.c.call_sid == call_sid)
        if tenant is not None:
            query = query.where(calls.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            call = (await conn.execute(query)).first()
        if call is None:
            return None
        number = call.to_number if call.direction == "outbound" else call.from_number
        person = await self._people.find(call.tenant, phone=number)
        return int(person.id) if person is not None else None
