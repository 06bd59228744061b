from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError

from voice_agent.storage.calls import PLACEHOLDER_TENANT, CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.records import CallEnded, CallStarted, TurnRecord
from voice_agent.storage.tables import calls, turns

T0 = datetime(2025, 3, 1, 14, 0, 0, tzinfo=UTC)


def started(sid: str = "CA1", tenant: str = "acme", **overrides: object) -> CallStarted:
    fields: dict[str, object] = {
        "call_sid": sid,
        "tenant": tenant,
        "direction": "inbound",
        "from_number": "+15550001111",
        "to_number": "+15550002222",
        "agent": "receptionist",
        "pipeline": "offline",
        "started_at": T0,
        "metadata": {"campaign": "spring", "lead_id": 7},
    }
    fields.update(overrides)
    return CallStarted(**fields)  # type: ignore[arg-type]


def turn(seq: int, sid: str = "CA1", **overrides: object) -> TurnRecord:
    fields: dict[str, object] = {
        "call_sid": sid,
        "seq": seq,
        "role": "caller" if seq % 2 == 0 else "agent",
        "text": f"turn {seq}",
        "started_at": T0 + timedelta(seconds=2 * seq + 1),
        "ended_at": T0 + timedelta(seconds=2 * seq + 2),
    }
    if seq % 2:
        fields |= {"stt_ms": 180.0, "llm_ms": 420.5, "tts_first_byte_ms": 90.0, "total_ms": 830.0}
    fields.update(overrides)
    return TurnRecord(**fields)  # type: ignore[arg-type]


def ended(sid: str = "CA1", **overrides: object) -> CallEnded:
    fields: dict[str, object] = {
        "call_sid": sid,
        "ended_at": T0 + timedelta(minutes=1),
        "status": "completed",
        "end_reason": "hangup",
    }
    fields.update(overrides)
    return CallEnded(**fields)  # type: ignore[arg-type]


@pytest.fixture
def repo(db: Database) -> CallRepository:
    return CallRepository(db)


async def test_a_whole_call_reads_back(repo: CallRepository) -> None:
    await repo.write([started(), turn(0), turn(1), ended()])
    call = await repo.get_call("CA1")
    assert call is not None
    assert (call.call_sid, call.tenant, call.direction, call.agent, call.pipeline) == (
        "CA1",
        "acme",
        "inbound",
        "receptionist",
        "offline",
    )
    assert (call.from_number, call.to_number) == ("+15550001111", "+15550002222")
    assert (call.status, call.end_reason) == ("completed", "hangup")
    assert call.started_at == T0 and call.started_at.tzinfo is not None
    assert call.ended_at == T0 + timedelta(minutes=1)
    assert call.duration_s == 60.0
    assert call.metadata == {"campaign": "spring", "lead_id": 7}
    assert [t.seq for t in call.turns] == [0, 1]
    agent = call.turns[1]
    assert (agent.role, agent.text, agent.interrupted) == ("agent", "turn 1", False)
    assert (agent.stt_ms, agent.llm_ms, agent.tts_first_byte_ms, agent.total_ms) == (
        180.0,
        420.5,
        90.0,
        830.0,
    )
    assert agent.endpointing_ms is None and agent.server_ms is None


async def test_writing_everything_twice_changes_nothing(repo: CallRepository, db: Database) -> None:
    batch = [started(), turn(0), turn(1), ended()]
    await repo.write(batch)
    first = await repo.get_call("CA1")
    await repo.write(batch)
    await repo.write(batch[1:3])
    assert await repo.get_call("CA1") == first
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(calls))).scalar() == 1
        assert (await conn.execute(select(func.count()).select_from(turns))).scalar() == 2


async def test_turns_come_back_in_seq_order_whatever_the_write_order(
    repo: CallRepository,
) -> None:
    await repo.write([started(), turn(3), turn(0), turn(2)])
    await repo.write([turn(1)])
    call = await repo.get_call("CA1")
    assert call is not None
    assert [t.seq for t in call.turns] == [0, 1, 2, 3]


async def test_a_rewritten_turn_replaces_the_earlier_version(repo: CallRepository) -> None:
    # Barge-in: the agent turn is rewritten to what the caller heard before interrupting.
    await repo.write([started(), turn(1, text="Our hours are nine to five, Monday to Friday.")])
    await repo.write([turn(1, text="Our hours are nine", interrupted=True)])
    call = await repo.get_call("CA1")
    assert call is not None
    assert [(t.text, t.interrupted) for t in call.turns] == [("Our hours are nine", True)]


async def test_duplicates_inside_one_batch_last_one_wins(repo: CallRepository) -> None:
    await repo.write(
        [
            started(agent="old"),
            started(agent="new"),
            turn(0, text="first"),
            turn(0, text="second"),
            ended(status="failed"),
            ended(status="completed"),
        ]
    )
    call = await repo.get_call("CA1")
    assert call is not None
    assert (call.agent, call.status, [t.text for t in call.turns]) == (
        "new",
        "completed",
        ["second"],
    )


async def test_turn_before_its_call_creates_a_placeholder_then_call_fills_it(
    repo: CallRepository,
) -> None:
    await repo.write([turn(0, sid="CA9"), turn(1, sid="CA9")])
    placeholder = await repo.get_call("CA9")
    assert placeholder is not None
    assert placeholder.tenant == PLACEHOLDER_TENANT
    assert [t.seq for t in placeholder.turns] == [0, 1]
    # Hidden from every tenant's staff until the real tenant is known.
    assert await repo.get_call("CA9", tenant="default") is None
    assert await repo.list_calls(tenant="default") == []

    await repo.write([started(sid="CA9", tenant="acme")])
    call = await repo.get_call("CA9", tenant="acme")
    assert call is not None
    assert (call.direction, call.agent, call.started_at) == ("inbound", "receptionist", T0)
    assert [t.seq for t in call.turns] == [0, 1]


async def test_end_before_start_keeps_the_end(repo: CallRepository) -> None:
    await repo.write([ended(sid="CA8", status="failed", end_reason="error")])
    await repo.write([started(sid="CA8")])
    call = await repo.get_call("CA8")
    assert call is not None
    assert (call.status, call.end_reason, call.tenant) == ("failed", "error", "acme")


async def test_a_late_retry_of_call_started_does_not_reopen_the_call(
    repo: CallRepository,
) -> None:
    await repo.write([started(), ended()])
    await repo.write([started()])
    call = await repo.get_call("CA1")
    assert call is not None
    assert (call.status, call.end_reason, call.ended_at) == (
        "completed",
        "hangup",
        T0 + timedelta(minutes=1),
    )


async def test_new_call_is_in_progress(repo: CallRepository) -> None:
    await repo.write([started(metadata=None)])
    call = await repo.get_call("CA1")
    assert call is not None
    assert (call.status, call.end_reason, call.ended_at, call.metadata) == (
        "in-progress",
        None,
        None,
        None,
    )
    assert call.duration_s is None


async def test_times_in_any_zone_come_back_as_the_same_instant_in_utc(
    repo: CallRepository,
) -> None:
    eastern = timezone(timedelta(hours=-5))
    local = datetime(2025, 3, 1, 9, 0, 0, 123456, tzinfo=eastern)
    await repo.write([started(started_at=local), turn(0, started_at=local)])
    call = await repo.get_call("CA1")
    assert call is not None
    assert call.started_at == local
    assert call.started_at.utcoffset() == timedelta(0)
    assert call.started_at.hour == 14 and call.started_at.microsecond == 123456
    assert call.turns[0].started_at == local


async def test_naive_datetime_is_refused_and_the_batch_rolls_back(
    repo: CallRepository,
) -> None:
    naive = datetime(2025, 3, 1, 14, 0, 0)
    with pytest.raises(StatementError, match="naive datetime"):
        await repo.write([started(), turn(0), turn(1, started_at=naive)])
    # One transaction: the good records in that batch are not half-written.
    assert await repo.get_call("CA1") is None


async def test_tenant_filter(repo: CallRepository) -> None:
    await repo.write([started("CA1", tenant="acme"), started("CA2", tenant="globex")])
    assert await repo.get_call("CA1", tenant="globex") is None
    call = await repo.get_call("CA1", tenant="acme")
    assert call is not None and call.call_sid == "CA1"
    assert await repo.get_call("CA-missing") is None


async def test_list_calls_newest_first_with_tenant_and_limit(repo: CallRepository) -> None:
    await repo.write(
        [
            started(f"CA{i}", tenant="acme" if i % 2 else "globex", started_at=T0 + timedelta(i))
            for i in range(6)
        ]
    )
    assert [c.call_sid for c in await repo.list_calls()] == [f"CA{i}" for i in range(5, -1, -1)]
    assert [c.call_sid for c in await repo.list_calls(tenant="acme")] == ["CA5", "CA3", "CA1"]
    assert [c.call_sid for c in await repo.list_calls(limit=2)] == ["CA5", "CA4"]
    assert [c.call_sid for c in await repo.list_calls(limit=2, offset=2)] == ["CA3", "CA2"]
    assert all(c.turns == [] for c in await repo.list_calls())


async def test_deleting_a_call_cascades_to_its_turns(repo: CallRepository, db: Database) -> None:
    await repo.write([started(), turn(0), turn(1)])
    assert await repo.delete_call("CA1", tenant="globex") is False
    assert await repo.delete_call("CA1") is True
    assert await repo.delete_call("CA1") is False
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(turns))).scalar() == 0


async def test_empty_write_is_a_no_op(repo: CallRepository) -> None:
    await repo.write([])
    assert await repo.list_calls() == []


async def test_unknown_record_type_is_refused(repo: CallRepository) -> None:
    with pytest.raises(TypeError, match="not a storage record: dict"):
        await repo.write([{"call_sid": "CA1"}])  # type: ignore[list-item]


async def test_a_large_batch_is_one_write(repo: CallRepository) -> None:
    await repo.write([started(), *(turn(i) for i in range(500)), ended()])
    call = await repo.get_call("CA1")
    assert call is not None
    assert [t.seq for t in call.turns] == list(range(500))
