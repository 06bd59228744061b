"""Caller memory from the CRM: a known caller's name is their person's in the built-in CRM
(which Twenty mirrors; Twenty itself is never asked on a call's path), with the last
interaction as our own tables tell it (voice_agent.caller_memory.lookup)."""

from __future__ import annotations

from voice_agent.caller_memory.lookup import Finder, KnownCaller, database_finder
from voice_agent.storage.database import Database
from voice_agent.storage.people import PeopleRepository


def crm_finder(database: Database, people: PeopleRepository | None = None) -> Finder:
    people = people or PeopleRepository(database)
    fallback = database_finder(database)

    async def find(tenant: str, phone: str) -> KnownCaller | None:
        if not phone:
            return None
        person = await people.find(tenant, phone=phone)
        known = await fallback(tenant, phone)
        if person is not None and person.name:
            return KnownCaller(person.name, known.last_interaction if known else "")
        return known

    return find
