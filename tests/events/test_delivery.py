"""Events through the real outbox to a stand-in receiver that verifies every signature
with ``standardwebhooks``: retries, refusals, outages, per-call order, tenant overrides,
replay. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from sqlalchemy import select
from standardwebhooks import Webhook

from loadtest.standins.event_receiver import EventReceiver
from tests.events.conftest import Rig
from voice_agent.events.emitter import Events
from voice_agent.events.record import EVENT_TYPES, event_id
from voice_agent.events.replay import replay
from voice_agent.events.secret import new_secret
from voice_agent.events.targets import Targets
from voice_agent.settings import Settings
from voice_agent.storage.database import Database
from voice_agent.storage.event_targets import EventTargetRepository
from voice_agent.storage.tables import outbox
from voice_agent.storage.tenants import Tenant, TenantRepository


async def states(rig: Rig) -> dict[str, str]:
    async with rig.db.engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.dedupe, outbox.c.state))).all()
    return {row[0]: row[1] for row in rows}


async def has_state(rig: Rig, dedupe: str, state: str) -> bool:
    return (await states(rig)).get(dedupe) == state


async def settled(rig: Rig, delivered: int, rejected: int) -> bool:
    found = sorted((await states(rig)).values())
    return found == ["delivered"] * delivered + ["rejected"] * rejected


async def failed_once(rig: Rig) -> bool:
    stats = {s.topic: s for s in await rig.repository.stats()}
    return "events" in stats and stats["events"].last_error is not None


async def test_every_event_type_arrives_signed_and_in_the_contract_shape(rig: Rig) -> None:
    ids = [
        rig.events.emit("acme", kind, {"n": n}, key=f"fact-{n}")
        for n, kind in enumerate(EVENT_TYPES)
    ]
    await rig.wait_until(lambda: len(rig.receiver.accepted_events()) == len(EVENT_TYPES))
    assert rig.receiver.forged == 0
    signer = Webhook(rig.secret)
    for arrival in rig.receiver.accepted:
        event = arrival.event
        assert set(event) == {"id", "type", "created_at", "tenant", "data"}
        assert event["id"].startswith("evt_") and event["tenant"] == "acme"
        assert arrival.headers["webhook-id"] == event["id"]
        assert arrival.headers["webhook-signature"].startswith("v1,")
        assert int(arrival.headers["webhook-timestamp"]) > 0
        assert "T" in event["created_at"]
        # Verified again here, outside the receiver, from the bytes as they arrived.
        assert signer.verify(arrival.body, arrival.headers) == event
    assert sorted(e["id"] for e in rig.receiver.accepted_events()) == sorted(ids)
    assert {e["type"] for e in rig.receiver.accepted_events()} == set(EVENT_TYPES)


async def test_the_same_fact_emitted_twice_is_one_event(rig: Rig) -> None:
    first = rig.events.emit("acme", "lead.created", {"lead_id": 1}, key="lead:1")
    second = rig.events.emit("acme", "lead.created", {"lead_id": 1}, key="lead:1")
    assert first == second == event_id("acme", "lead.created", "lead:1")
    await rig.flush()
    await rig.wait_until(lambda: len(rig.receiver.accepted) == 1)
    await asyncio.sleep(0.3)
    assert len(rig.receiver.arrivals) == 1


async def test_a_500_is_retried_with_the_same_id_and_a_400_is_not(rig: Rig) -> None:
    rig.receiver.fail_next(2, 500)
    retried = rig.events.emit("acme", "call.started", {"call_sid": "CA1"}, key="CA1")
    await rig.wait_until(lambda: len(rig.receiver.accepted) == 1)
    attempts = rig.receiver.attempts(retried)
    assert [a.status for a in attempts] == [500, 500, 200]
    assert {a.headers["webhook-id"] for a in attempts} == {retried}
    # Each attempt is signed afresh: every one verified at the receiver.
    assert rig.receiver.forged == 0

    rig.receiver.fail_next(1, 400)
    refused = rig.events.emit("acme", "call.started", {"call_sid": "CA2"}, key="CA2")
    assert refused is not None
    await rig.wait_until(lambda: len(rig.receiver.attempts(refused)) == 1)
    await rig.wait_until(lambda: has_state(rig, refused, "rejected"))
    await asyncio.sleep(0.5)  # several backoff periods: nothing more is sent
    assert len(rig.receiver.attempts(refused)) == 1


async def test_408_and_429_are_retried(rig: Rig) -> None:
    rig.receiver.fail_next(1, 408)
    rig.receiver.fail_next(1, 429)
    sent = rig.events.emit("acme", "sms.sent", {"message_id": 3}, key="sms:3")
    await rig.wait_until(lambda: len(rig.receiver.accepted) == 1)
    assert [a.status for a in rig.receiver.attempts(sent)] == [408, 429, 200]


async def test_receiver_down_then_up_gets_every_event_in_order_per_call(rig: Rig) -> None:
    await rig.receiver.down()
    calls = [f"CA{n}" for n in range(6)]
    for sid in calls:
        rig.events.emit("acme", "call.started", {"call_sid": sid}, key=sid)
    for sid in calls:
        rig.events.emit("acme", "call.ended", {"call_sid": sid}, key=sid)
        rig.events.emit("acme", "call.analyzed", {"call_sid": sid}, key=sid)
    await rig.flush()
    # Refused connections are retried (none arrive, all stay pending with an error).
    await rig.wait_until(lambda: failed_once(rig))
    stats = {s.topic: s for s in await rig.repository.stats()}
    assert stats["events"].pending == 18
    await asyncio.sleep(0.5)
    await rig.receiver.up()
    await rig.wait_until(lambda: len(rig.receiver.accepted_events()) == 18)
    by_call: dict[str, list[str]] = defaultdict(list)
    for event in rig.receiver.accepted_events():
        by_call[event["data"]["call_sid"]].append(event["type"])
    assert all(
        kinds == ["call.started", "call.ended", "call.analyzed"] for kinds in by_call.values()
    )
    assert set(by_call) == set(calls)


async def test_a_tenant_webhook_overrides_the_global_one(rig: Rig) -> None:
    beta_secret = new_secret()
    rig.receiver.secrets["/beta"] = beta_secret
    await rig.targets.set_override("beta", rig.receiver.url("/beta"), beta_secret)
    rig.events.emit("beta", "lead.created", {"lead_id": 7, "first_name": "Bea"}, key="lead:7")
    rig.events.emit("acme", "lead.created", {"lead_id": 8, "first_name": "Al"}, key="lead:8")
    await rig.wait_until(lambda: len(rig.receiver.accepted) == 2)
    assert rig.receiver.forged == 0  # each verified with its own path's secret
    where = {a.event["tenant"]: a.path for a in rig.receiver.accepted}
    assert where == {"beta": "/beta", "acme": "/"}
    # What reached beta's webhook holds beta's data only.
    beta = [a for a in rig.receiver.accepted if a.path == "/beta"]
    assert [a.event["data"]["first_name"] for a in beta] == ["Bea"]
    assert "Al" not in str([a.event for a in beta])


async def test_a_tenant_without_any_webhook_emits_nothing(
    db: Database, receiver: EventReceiver
) -> None:
    await TenantRepository(db).save(Tenant("solo", "Solo", "receptionist", "lead_qualifier"))
    targets = Targets(EventTargetRepository(db), None, None)
    await targets.refresh()

    class Queue:
        def __init__(self) -> None:
            self.put_records: list[object] = []

        def put(self, record: object) -> None:
            self.put_records.append(record)

    queue = Queue()
    events = Events(queue, targets)  # type: ignore[arg-type]
    assert events.emit("solo", "call.started", {}, key="CA9") is None
    assert queue.put_records == []
    await targets.set_override("solo", receiver.url(), receiver.secret)
    assert events.emit("solo", "call.started", {}, key="CA9") is not None
    assert len(queue.put_records) == 1


async def test_replay_resends_with_the_same_ids_and_is_idempotent(
    rig: Rig, database_url: str
) -> None:
    rig.receiver.fail_next(1, 400)  # the first is refused: kept as rejected
    ids = [rig.events.emit("acme", "call.ended", {"n": n}, key=f"CA{n}") for n in range(5)]
    await rig.wait_until(lambda: len(rig.receiver.arrivals) == 5)
    await rig.wait_until(lambda: settled(rig, 4, 1))
    settings = Settings(
        database_url=database_url,
        events_webhook_url=rig.receiver.url(),
        events_webhook_secret=rig.secret,
    )
    before = len(rig.receiver.arrivals)
    first = await replay(settings)
    assert (first.sent, first.delivered, first.failed) == (5, 5, 0)
    second = await replay(settings)
    assert (second.sent, second.delivered) == (5, 5)
    replayed = rig.receiver.arrivals[before:]
    assert [a.headers["webhook-id"] for a in replayed] == ids + ids
    assert sorted(e["id"] for e in rig.receiver.accepted_events()) == sorted(ids)
    assert rig.receiver.forged == 0
    assert set((await states(rig)).values()) == {"delivered"}  # the refused one got through
    only = await replay(settings, event_type="lead.created")
    assert only.sent == 0
