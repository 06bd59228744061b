"""Caller memory on SQLite and PostgreSQL: who a number is (a lead, else the name an
analysed call recorded) and our last contact with them (the newer of the last analysed
call and the last text), kept apart per tenant; and the cache in front of it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from voice_agent.caller_memory.cache import CallerMemory
from voice_agent.caller_memory.lookup import KnownCaller, database_finder
from voice_agent.storage.analyses import AnalysisRepository
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.leads import Lead, LeadRepository
from voice_agent.storage.records import CallEnded, CallStarted
from voice_agent.storage.sms import SmsRepository

NUMBER = "+15551230001"


async def analysed_call(
    db: Database, sid: str, tenant: str, ended: datetime, summary: str, name: str | None
) -> None:
    await CallRepository(db).write(
        [
            CallStarted(
                sid,
                tenant,
                "inbound",
                NUMBER,
                "+15557654321",
                "receptionist",
                "offline",
                ended - timedelta(minutes=2),
            ),
            CallEnded(sid, ended, "completed", "agent-hangup"),
        ]
    )
    document = {"summary": summary, "outcome": "qualified", "fields": {"name": name}}
    await AnalysisRepository(db).store(sid, document, ended)


async def test_a_stranger_is_not_known(db: Database) -> None:
    find = database_finder(db)
    assert await find("acme", NUMBER) is None
    assert await find("acme", "") is None


async def test_known_by_an_earlier_call_and_then_by_a_text(db: Database) -> None:
    find = database_finder(db)
    ended = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)
    await analysed_call(
        db, "CA-1", "acme", ended, "Sarah asked about a roof leak.", "Sarah Johnson"
    )
    known = await find("acme", NUMBER)
    assert known == KnownCaller("Sarah Johnson", "On Dec 5, a call: Sarah asked about a roof leak.")
    assert await find("other-tenant", NUMBER) is None  # never another tenant's caller

    sms = SmsRepository(db)
    thread = await sms.open_thread("acme", NUMBER, "+15557654321", "receptionist")
    # Our own follow-up text says less than the call it followed: not the last contact.
    await sms.add_message(
        thread.id,
        direction="outbound",
        body="Thanks for calling!",
        status="sent",
        at=ended + timedelta(minutes=1),
    )
    known = await find("acme", NUMBER)
    assert known is not None and known.last_interaction.startswith("On Dec 5, a call:")
    await sms.add_message(
        thread.id,
        direction="inbound",
        body="Can you come Tuesday instead?",
        status="received",
        at=ended + timedelta(days=1),
    )
    known = await find("acme", NUMBER)
    assert known is not None
    assert known.last_interaction == "On Dec 6 they texted us: Can you come Tuesday instead?"


async def test_a_lead_names_the_caller(db: Database) -> None:
    await LeadRepository(db).add(Lead("acme", "Maria", NUMBER, "Lopez"))
    known = await database_finder(db)("acme", NUMBER)
    assert known == KnownCaller("Maria Lopez", "")
    assert known.variables() == {"caller_name": "Maria Lopez", "last_interaction": ""}


async def test_the_cache_answers_without_the_database_and_forgets_on_request() -> None:
    asked: list[tuple[str, str]] = []

    async def find(tenant: str, number: str) -> KnownCaller | None:
        asked.append((tenant, number))
        return KnownCaller("Sam") if number == NUMBER else None

    clock = [0.0]
    memory = CallerMemory(find, ttl_s=60.0, clock=lambda: clock[0])
    assert await memory.lookup("acme", NUMBER) == KnownCaller("Sam")
    assert await memory.lookup("acme", NUMBER) == KnownCaller("Sam")
    assert await memory.lookup("acme", "+15550000000") is None
    assert await memory.lookup("acme", "+15550000000") is None  # strangers are cached too
    assert asked == [("acme", NUMBER), ("acme", "+15550000000")]
    assert memory.cached("acme", NUMBER) == (True, KnownCaller("Sam"))
    memory.forget("acme", NUMBER)
    assert memory.cached("acme", NUMBER) == (False, None)
    clock[0] = 61.0  # past the TTL: asked again
    await memory.lookup("acme", "+15550000000")
    assert asked[-1] == ("acme", "+15550000000") and len(asked) == 3


async def test_a_slow_or_failing_lookup_is_a_stranger_within_the_budget() -> None:
    release = asyncio.Event()

    async def slow(tenant: str, number: str) -> KnownCaller | None:
        await release.wait()
        return KnownCaller("Late")

    memory = CallerMemory(slow)
    started = asyncio.get_running_loop().time()
    assert await memory.lookup("acme", NUMBER, budget_s=0.05) is None
    assert asyncio.get_running_loop().time() - started < 0.5
    release.set()
    await asyncio.sleep(0.01)
    # The overrunning lookup still filled the cache for the next call.
    assert memory.cached("acme", NUMBER) == (True, KnownCaller("Late"))

    async def broken(tenant: str, number: str) -> KnownCaller | None:
        raise ConnectionRefusedError("database down")

    assert await CallerMemory(broken).lookup("acme", NUMBER) is None
