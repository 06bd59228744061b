"""The one small protocol every CRM implements."""

from __future__ import annotations

from typing import Protocol

from crm_client.records import Activity, ActivityInput, Note, NoteInput, Person, PersonInput


class Crm(Protocol):
    async def find_person(
        self, *, phone: str | None = None, email: str | None = None
    ) -> Person | None:
        """The person with this email, else with this phone number; None for a stranger."""
        ...

    async def upsert_person(self, person: PersonInput) -> Person:
        """The person matching ``person`` (by email, else phone) brought up to date with
        what it says, or a new one. Done twice, it is still one person."""
        ...

    async def attach_note(self, person_id: str, note: NoteInput) -> Note:
        """The note on the person; the same ``note.key`` twice is one note."""
        ...

    async def record_activity(self, person_id: str, activity: ActivityInput) -> Activity:
        """Record that something happened with the person; the same (kind, ref) is once."""
        ...
