"""The built-in CRM: people (found by email or phone), their notes and activities, on our
own tables. ``BuiltinCrm`` is this repository bound to one tenant, implementing the
``crm_client.Crm`` protocol; Twenty mirrors what it holds (voice_agent.crm)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Row, desc, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from crm_client import Activity, ActivityInput, Note, NoteInput, Person, PersonInput
from voice_agent.clock import utc_now
from voice_agent.storage.database import Database
from voice_agent.storage.tables import activities, people, person_notes


def _person(row: Row[Any]) -> Person:
    return Person(
        id=str(row.id),
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        phone=row.phone,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _note(row: Row[Any]) -> Note:
    return Note(
        id=str(row.id),
        person_id=str(row.person_id),
        key=row.key,
        title=row.title,
        body=row.body,
        fields=dict(row.fields or {}),
        created_at=row.created_at,
    )


def _activity(row: Row[Any]) -> Activity:
    return Activity(str(row.id), str(row.person_id), row.kind, row.ref, row.summary, row.at)


def _insert_ignoring(conn: AsyncConnection, table: Any, conflict: list[str]) -> Insert:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=conflict)


class PeopleRepository:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = db
        self._clock = clock

    # --- people ------------------------------------------------------------------------

    async def get(self, person_id: int, tenant: str | None = None) -> Person | None:
        """The person, or None (also when it belongs to another tenant)."""
        query = select(people).where(people.c.id == person_id)
        if tenant is not None:
            query = query.where(people.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _person(row)

    async def tenant_of(self, person_id: int) -> str | None:
        async with self._db.engine.connect() as conn:
            return (
                await conn.execute(select(people.c.tenant).where(people.c.id == person_id))
            ).scalar_one_or_none()

    async def find(
        self, tenant: str, *, phone: str | None = None, email: str | None = None
    ) -> Person | None:
        """By email first (the stronger key), else by phone."""
        async with self._db.engine.connect() as conn:
            row = await self._find(conn, tenant, phone, email)
        return None if row is None else _person(row)

    async def _find(
        self, conn: AsyncConnection, tenant: str, phone: str | None, email: str | None
    ) -> Row[Any] | None:
        if email:
            row = (
                await conn.execute(
                    select(people).where(people.c.tenant == tenant, people.c.email == email.lower())
                )
            ).first()
            if row is not None:
                return row
        if phone:
            return (
                await conn.execute(
                    select(people).where(people.c.tenant == tenant, people.c.phone == phone)
                )
            ).first()
        return None

    async def upsert(self, tenant: str, person: PersonInput) -> tuple[Person, bool]:
        """(the person, whether it is new). Matched by email, else phone; non-empty names
        replace the stored ones, a missing email or phone is filled in when no other person
        of the tenant has it. Two racing upserts of one person make one row."""
        for attempt in range(3):
            try:
                return await self._upsert(tenant, person)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _upsert(self, tenant: str, person: PersonInput) -> tuple[Person, bool]:
        now = self._clock()
        email = person.email.lower() if person.email else None
        async with self._db.engine.begin() as conn:
            row = await self._find(conn, tenant, person.phone, email)
            if row is None:
                values = {
                    "tenant": tenant,
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "email": email,
                    "phone": person.phone,
                    "created_at": now,
                    "updated_at": now,
                }
                new_id = (
                    await conn.execute(people.insert().values(values).returning(people.c.id))
                ).scalar_one()
                created = (await conn.execute(select(people).where(people.c.id == new_id))).one()
                return _person(created), True
            changes: dict[str, Any] = {}
            if person.first_name and person.first_name != row.first_name:
                changes["first_name"] = person.first_name
            if person.last_name and person.last_name != row.last_name:
                changes["last_name"] = person.last_name
            if email and not row.email and await self._free(conn, tenant, "email", email):
                changes["email"] = email
            if (
                person.phone
                and not row.phone
                and await self._free(conn, tenant, "phone", person.phone)
            ):
                changes["phone"] = person.phone
            if changes:
                changes["updated_at"] = now
                await conn.execute(update(people).where(people.c.id == row.id).values(changes))
                row = (await conn.execute(select(people).where(people.c.id == row.id))).one()
            return _person(row), False

    async def _free(self, conn: AsyncConnection, tenant: str, column: str, value: str) -> bool:
        taken = (
            await conn.execute(
                select(people.c.id).where(people.c.tenant == tenant, people.c[column] == value)
            )
        ).first()
        return taken is None

    async def twenty_id(self, person_id: int) -> str | None:
        async with self._db.engine.connect() as conn:
            return (
                await conn.execute(select(people.c.twenty_id).where(people.c.id == person_id))
            ).scalar_one_or_none()

    async def set_twenty_id(self, person_id: int, twenty_id: str) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(
                update(people).where(people.c.id == person_id).values(twenty_id=twenty_id)
            )

    async def recent(self, tenant: str | None, limit: int = 100) -> list[Person]:
        query = select(people).order_by(desc(people.c.updated_at), desc(people.c.id)).limit(limit)
        if tenant is not None:
            query = query.where(people.c.tenant == tenant)
        async with self._db.engine.connect() as conn:
            return [_person(row) for row in await conn.execute(query)]

    # --- notes and activities ----------------------------------------------------------

    async def add_note(self, tenant: str, person_id: int, note: NoteInput) -> Note:
        """The note (the one stored before under its key, if any)."""
        async with self._db.engine.begin() as conn:
            await conn.execute(
                _insert_ignoring(conn, person_notes, ["tenant", "key"]).values(
                    tenant=tenant,
                    person_id=person_id,
                    key=note.key,
                    title=note.title[:300],
                    body=note.body,
                    fields=note.fields or None,
                    created_at=self._clock(),
                )
            )
            row = (
                await conn.execute(
                    select(person_notes).where(
                        person_notes.c.tenant == tenant, person_notes.c.key == note.key
                    )
                )
            ).one()
        return _note(row)

    async def notes(self, person_id: int) -> list[Note]:
        query = (
            select(person_notes)
            .where(person_notes.c.person_id == person_id)
            .order_by(desc(person_notes.c.created_at), desc(person_notes.c.id))
        )
        async with self._db.engine.connect() as conn:
            return [_note(row) for row in await conn.execute(query)]

    async def add_activity(self, tenant: str, person_id: int, activity: ActivityInput) -> Activity:
        async with self._db.engine.begin() as conn:
            await conn.execute(
                _insert_ignoring(conn, activities, ["tenant", "kind", "ref"]).values(
                    tenant=tenant,
                    person_id=person_id,
                    kind=activity.kind,
                    ref=activity.ref,
                    summary=activity.summary,
                    at=activity.at,
                )
            )
            row = (
                await conn.execute(
                    select(activities).where(
                        activities.c.tenant == tenant,
                        activities.c.kind == activity.kind,
                        activities.c.ref == activity.ref,
                    )
                )
            ).one()
        return _activity(row)

    async def activities(self, person_id: int) -> list[Activity]:
        query = (
            select(activities)
            .where(activities.c.person_id == person_id)
            .order_by(desc(activities.c.at), desc(activities.c.id))
        )
        async with self._db.engine.connect() as conn:
            return [_activity(row) for row in await conn.execute(query)]


class BuiltinCrm:
    """The built-in CRM as ``crm_client.Crm``: the people repository seen by one tenant."""

    def __init__(self, repository: PeopleRepository, tenant: str) -> None:
        self._repo = repository
        self.tenant = tenant

    async def find_person(
        self, *, phone: str | None = None, email: str | None = None
    ) -> Person | None:
        return await self._repo.find(self.tenant, phone=phone, email=email)

    async def upsert_person(self, person: PersonInput) -> Person:
        found, _ = await self._repo.upsert(self.tenant, person)
        return found

    async def attach_note(self, person_id: str, note: NoteInput) -> Note:
        return await self._repo.add_note(self.tenant, await self._own(person_id), note)

    async def record_activity(self, person_id: str, activity: ActivityInput) -> Activity:
        return await self._repo.add_activity(self.tenant, await self._own(person_id), activity)

    async def _own(self, person_id: str) -> int:
        """The person's id, checked to be this tenant's (a note never lands elsewhere)."""
        if await self._repo.get(int(person_id), self.tenant) is None:
            raise LookupError(f"no person {person_id} in tenant {self.tenant}")
        return int(person_id)
