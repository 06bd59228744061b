from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from voice_agent.storage.database import Database
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _call(minutes: int, number: str = "+14155550134", **fields: object) -> ScheduledCall:
    return ScheduledCall(
        tenant="acme",
        to_number=number,
        due_at=NOW + timedelta(minutes=minutes),
        reason="lead",
        **fields,  # type: ignore[arg-type]
    )


async def test_claims_only_due_calls_oldest_first_and_once(db: Database) -> None:
    repo = ScheduledCallRepository(db)
    later = await repo.add(_call(30))
    first = await repo.add(_call(-5, context={"first_name": "Ada"}))
    second = await repo.add(_call(0, "+14155550135"))

    claimed = await repo.claim_due(NOW)
    assert [c.id for c in claimed] == [first, second]
    assert claimed[0].status == "placing"
    assert claimed[0].context == {"first_name": "Ada"}
    assert await repo.claim_due(NOW) == []  # claimed once only
    assert [c.id for c in await repo.pending()] == [later]

    await repo.finish(first, "placed", call_sid="CA123")
    stored = await repo.get(first)
    assert stored is not None and (stored.status, stored.call_sid) == ("placed", "CA123")


async def test_concurrent_dialers_never_claim_the_same_call(db: Database) -> None:
    repo = ScheduledCallRepository(db)
    ids = {await repo.add(_call(-1, f"+1415555{i:04d}")) for i in range(20)}
    batches = await asyncio.gather(*(repo.claim_due(NOW, limit=3) for _ in range(10)))
    claimed = [c.id for batch in batches for c in batch]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) <= ids


async def test_cancel_pending_for_an_opted_out_number(db: Database) -> None:
    repo = ScheduledCallRepository(db)
    await repo.add(_call(10))
    await repo.add(_call(20, "+14155550999"))
    assert await repo.cancel_pending("acme", "+14155550134") == 1
    assert [c.to_number for c in await repo.pending("acme")] == ["+14155550999"]


async def test_stale_claims_return_to_the_queue(db: Database) -> None:
    repo = ScheduledCallRepository(db)
    id_ = await repo.add(_call(-1))
    await repo.claim_due(NOW)
    assert await repo.release_stale(NOW + timedelta(minutes=1), timedelta(minutes=5)) == 0
    assert await repo.release_stale(NOW + timedelta(minutes=10), timedelta(minutes=5)) == 1
    assert [c.id for c in await repo.claim_due(NOW + timedelta(minutes=10))] == [id_]
