"""Writes to Twenty through the outbox (topic "twenty") against the stand-in Twenty server,
on SQLite and PostgreSQL: an outage then recovery loses and doubles nothing, a wrong key
is one logged error a minute and no retry storm, Twenty's rate limit is kept, a malformed
answer is retried, and a call's note is linked to its person through a noteTarget."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from crm_client import SlidingWindowLimiter, TwentyClient
from loadtest.standins.twenty_server import TwentyStandin
from voice_agent.analysis.service import AnalysedCall
from voice_agent.crm.service import CrmService
from voice_agent.crm.twenty_sync import TWENTY_TOPIC, TwentyDelivery
from voice_agent.outbox import OutboxRepository, OutboxWorker
from voice_agent.storage.database import Database
from voice_agent.storage.leads import Lead, LeadRepository
from voice_agent.storage.people import PeopleRepository

NOW = datetime(2026, 12, 7, 10, tzinfo=UTC)


class Sync:
    def __init__(self, db: Database, twenty: TwentyStandin, gate: object = None, **kw: float):
        self.people = PeopleRepository(db)
        self.leads = LeadRepository(db)
        self.outbox = OutboxRepository(db)
        self.client = TwentyClient(
            twenty.base_url, twenty.api_key, gate=gate or SlidingWindowLimiter(1000, 1.0)
        )
        self.delivery = TwentyDelivery(self.client, self.people, auth_pause_s=kw.pop("pause", 60))
        self.worker = OutboxWorker(
            self.outbox, poll_s=0.05, base_backoff_s=0.05, max_backoff_s=0.2, lease_s=10.0
        )
        self.worker.register(self.delivery)
        self.crm = CrmService(
            self.people, self.leads, self.outbox, twenty=self.delivery, wake=self.worker.wake
        )

    async def lead(self, i: int, **fields: str | None) -> Lead:
        values: dict[str, str | None] = {
            "first_name": f"Lead{i}",
            "last_name": "Test",
            "email": f"lead{i}@example.com",
            "phone": f"+1212555{i:04d}",
        } | fields
        lead = Lead(tenant="acme", created_at=NOW, **values)  # type: ignore[arg-type]
        await self.leads.add(lead)
        await self.crm.lead_captured(lead)
        return lead

    async def pending(self) -> int:
        return sum(s.pending for s in await self.outbox.stats() if s.topic == TWENTY_TOPIC)

    async def drained(self, within_s: float = 15.0) -> None:
        start = time.monotonic()
        while await self.pending():
            assert time.monotonic() - start < within_s, await self.outbox.stats()
            await asyncio.sleep(0.05)


@pytest.fixture
async def sync_factory(db: Database, twenty: TwentyStandin) -> AsyncIterator[Callable[..., Sync]]:
    made: list[Sync] = []

    def make(**kw: object) -> Sync:
        made.append(Sync(db, twenty, **kw))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for sync in made:
        await sync.worker.aclose()
        await sync.client.aclose()


async def test_an_outage_then_recovery_loses_nothing_and_doubles_nothing(
    sync_factory: Callable[..., Sync], twenty: TwentyStandin
) -> None:
    sync = sync_factory()
    sync.worker.start()
    await twenty.stop()  # refused connections
    for i in range(15):
        await sync.lead(i)
    await asyncio.sleep(0.5)
    assert await sync.pending() == 15
    await twenty.start()
    twenty.fail(503, times=6)  # coming back, it stumbles first
    # Leads arriving while it recovers, and the same person again (after the window).
    for i in range(15, 20):
        await sync.lead(i)
    await sync.lead(3, last_name="Again")
    await sync.drained()
    assert len(twenty.people) == 20
    assert all(len(twenty.people_with_email(f"lead{i}@example.com")) == 1 for i in range(20))
    assert twenty.people_with_email("lead3@example.com")[0]["name"]["lastName"] == "Again"
    stats = {s.topic: s for s in await sync.outbox.stats()}
    assert stats[TWENTY_TOPIC].delivered == 21 and stats[TWENTY_TOPIC].rejected == 0


async def test_a_wrong_key_is_logged_once_a_minute_not_a_retry_storm(
    sync_factory: Callable[..., Sync],
    twenty: TwentyStandin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sync = sync_factory(pause=0.5)
    right = twenty.api_key
    twenty.api_key = "rotated-by-someone"  # Twenty no longer takes the key we were given
    sync.worker.start()
    with caplog.at_level(logging.ERROR, logger="voice_agent.crm.twenty_sync"):
        for i in range(10):
            await sync.lead(i)
        await asyncio.sleep(1.3)
    refused = [r for r in twenty.requests if r.status == 401]
    assert 1 <= len(refused) <= 5  # about one per pause, not ten leads times the backoff
    logged = [r for r in caplog.records if "TWENTY_API_KEY" in r.getMessage()]
    assert 1 <= len(logged) <= 4
    assert sync.delivery.status.auth_error is not None
    assert "401" in sync.delivery.status.auth_error
    [stats] = [s for s in await sync.outbox.stats() if s.topic == TWENTY_TOPIC]
    assert stats.pending == 10 and "401" in (stats.last_error or "")
    twenty.api_key = right  # the operator fixes the key: everything goes out
    await sync.drained()
    assert len(twenty.people) == 10
    assert sync.delivery.status.auth_error is None


async def test_twentys_rate_limit_is_kept(
    sync_factory: Callable[..., Sync], twenty: TwentyStandin
) -> None:
    twenty.limit(8, 1.0)
    sync = sync_factory(gate=SlidingWindowLimiter(8, 1.1))
    sync.worker.start()
    start = time.monotonic()
    for i in range(20):
        await sync.lead(i)
    await sync.drained()
    elapsed = time.monotonic() - start
    assert len(twenty.people) == 20
    assert not [r for r in twenty.requests if r.status == 429]
    assert elapsed > 2.0  # 20 requests at 8 a second-ish window


async def test_a_429_is_waited_out_and_nothing_doubles(
    sync_factory: Callable[..., Sync], twenty: TwentyStandin
) -> None:
    twenty.limit(5, 0.5)
    twenty.retry_after_s = 1
    sync = sync_factory()  # a budget far above Twenty's: Twenty answers 429
    sync.worker.start()
    for i in range(12):
        await sync.lead(i)
    await sync.drained(20.0)
    assert [r for r in twenty.requests if r.status == 429]
    assert len(twenty.people) == 12


async def test_a_malformed_answer_is_logged_and_retried(
    sync_factory: Callable[..., Sync],
    twenty: TwentyStandin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    twenty.malformed(times=2)
    sync = sync_factory()
    sync.worker.start()
    with caplog.at_level(logging.WARNING, logger="voice_agent.crm.twenty_sync"):
        await sync.lead(1)
        await sync.drained()
    assert len(twenty.people) == 1
    assert any("malformed" in r.getMessage() for r in caplog.records)


async def test_a_calls_note_is_linked_to_its_person(
    sync_factory: Callable[..., Sync], twenty: TwentyStandin
) -> None:
    sync = sync_factory()
    sync.worker.start()
    lead = await sync.lead(7)
    analysed = AnalysedCall(
        call_sid="CA" + "7" * 32,
        tenant="acme",
        direction="outbound",
        number=lead.phone,
        lead_id=lead.id,
        analysis={
            "summary": "Wants a new roof before winter.",
            "outcome": "qualified",
            "fields": {"name": "Lead7 Test", "need": "roof", "budget": "5k", "timeline": "soon"},
        },
    )
    await sync.crm.call_analyzed(analysed)
    await sync.crm.call_analyzed(analysed)  # a hook run twice: still one note
    await sync.drained()
    [person] = twenty.people_with_email("lead7@example.com")
    [note] = twenty.notes_of(person["id"])
    assert note["title"].endswith(": qualified")
    markdown = note["bodyV2"]["markdown"]
    assert "Wants a new roof" in markdown and "**Budget:** 5k" in markdown
    assert len(twenty.notes) == 1 and len(twenty.note_targets) == 1
    ours = await sync.people.find("acme", email="lead7@example.com")
    assert ours is not None
    [stored] = await sync.people.notes(int(ours.id))
    assert stored.fields["outcome"] == "qualified" and stored.fields["need"] == "roof"


async def test_a_phone_only_caller_gets_a_person_and_a_note(
    sync_factory: Callable[..., Sync], twenty: TwentyStandin
) -> None:
    sync = sync_factory()
    sync.worker.start()
    analysed = AnalysedCall(
        call_sid="CA" + "8" * 32,
        tenant="acme",
        direction="inbound",
        number="+14155550177",
        lead_id=None,
        analysis={
            "summary": "Asked about hours.",
            "outcome": "other",
            "fields": {"name": "Dana Reyes"},
        },
    )
    await sync.crm.call_analyzed(analysed)
    await sync.drained()
    [person] = twenty.people.values()
    assert person["name"] == {"firstName": "Dana", "lastName": "Reyes"}
    assert person["phones"]["primaryPhoneNumber"] == "4155550177"
    assert len(twenty.notes_of(person["id"])) == 1
    ours = await sync.people.find("acme", phone="+14155550177")
    assert ours is not None and ours.name == "Dana Reyes"


async def test_leads_and_calls_the_crm_missed_are_caught_up_once(
    sync_factory: Callable[..., Sync], twenty: TwentyStandin, db: Database
) -> None:
    from sqlalchemy import update

    from tests.dashboard.seed import SeedTurn, add_call
    from voice_agent.storage.tables import calls

    sync = sync_factory()
    sync.worker.start()
    # Stored, but the CRM write after them never happened (a database blink, a crash).
    lead = Lead(tenant="acme", first_name="Ivy", phone="+13125550111")
    await sync.leads.add(lead)
    sid = "CA" + "9" * 32
    await add_call(db, sid, "acme", [SeedTurn("caller", "hi", 0.1, 1.0)], from_number=lead.phone)
    async with db.engine.begin() as conn:
        await conn.execute(
            update(calls)
            .where(calls.c.call_sid == sid)
            .values(
                analysis={"summary": "Said hi.", "outcome": "other", "fields": {}},
                analyzed_at=datetime.now(UTC),
            )
        )
    assert await sync.crm.catch_up(db) == 2
    assert await sync.crm.catch_up(db) == 0  # recorded: not again
    await sync.drained()
    person = await sync.people.find("acme", phone=lead.phone)
    assert person is not None and person.name == "Ivy"
    assert [n.key for n in await sync.people.notes(int(person.id))] == [f"call:{sid}"]
    [theirs] = twenty.people.values()
    assert len(twenty.notes_of(theirs["id"])) == 1


async def test_a_withheld_caller_id_makes_no_person(
    sync_factory: Callable[..., Sync], twenty: TwentyStandin
) -> None:
    sync = sync_factory()
    analysed = AnalysedCall(
        "CA" + "6" * 32, "acme", "inbound", "anonymous", None, {"outcome": "other", "fields": {}}
    )
    assert await sync.crm.call_analyzed(analysed) is None
    assert await sync.people.recent("acme") == []
    assert await sync.pending() == 0
