from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.records import StoredCall, StoredTurn, TurnRecord
from voice_agent.storage.transcript import transcript_dict, transcript_text

from .test_calls import T0, ended, started, turn

TOP_LEVEL_ALLOWED = {
    "call_sid",
    "turns",
    "tenant",
    "direction",
    "from",
    "to",
    "started_at",
    "ended_at",
    "status",
    "agent",
}
TURN_ALLOWED = {"role", "text", "started_at", "latency_ms", "interrupted", "latency"}


async def _stored(db: Database) -> StoredCall:
    repo = CallRepository(db)
    await repo.write(
        [
            started(),
            turn(0, text="Hi, what are your hours?"),
            turn(1, text="We open at nine", interrupted=True, server_ms=41.5, endpointing_ms=300.0),
            TurnRecord("CA1", 2, "event", "transferred to +15550003333", T0 + timedelta(seconds=6)),
            turn(3, text="Thanks", role="caller"),
            ended(),
        ]
    )
    call = await repo.get_call("CA1")
    assert call is not None
    return call


async def test_transcript_dict_shape(db: Database) -> None:
    data = transcript_dict(await _stored(db))
    assert json.loads(json.dumps(data)) == data  # JSON-ready as it is
    assert {"call_sid", "turns"} <= set(data) <= TOP_LEVEL_ALLOWED
    assert data["call_sid"] == "CA1"
    assert (data["tenant"], data["direction"], data["from"], data["to"]) == (
        "acme",
        "inbound",
        "+15550001111",
        "+15550002222",
    )
    assert (data["status"], data["agent"]) == ("completed", "receptionist")
    assert datetime.fromisoformat(data["started_at"]) == T0
    assert datetime.fromisoformat(data["ended_at"]) == T0 + timedelta(minutes=1)

    # Caller and agent turns only, in order; the transfer event is not speech.
    assert [(t["role"], t["text"]) for t in data["turns"]] == [
        ("caller", "Hi, what are your hours?"),
        ("agent", "We open at nine"),
        ("caller", "Thanks"),
    ]
    for t in data["turns"]:
        assert {"role", "text", "started_at", "latency_ms"} <= set(t) <= TURN_ALLOWED
        assert datetime.fromisoformat(t["started_at"]).tzinfo is not None
    caller, agent, _ = data["turns"]
    assert caller["latency_ms"] is None
    assert agent["latency_ms"] == 830.0
    assert agent["interrupted"] is True
    assert agent["latency"] == {
        "endpointing_ms": 300.0,
        "stt_ms": 180.0,
        "llm_first_token_ms": None,
        "llm_ms": 420.5,
        "tts_first_byte_ms": 90.0,
        "total_ms": 830.0,
        "server_ms": 41.5,
    }
    assert datetime.fromisoformat(agent["started_at"]) == T0 + timedelta(seconds=3)


async def test_transcript_text(db: Database) -> None:
    text = transcript_text(await _stored(db))
    header, body = text.split("\n\n")
    assert "Call CA1" in header and "+15550001111 -> +15550002222" in header
    assert "Agent: receptionist" in header
    assert "Status: completed (hangup)" in header
    assert "Duration: 00:01:00" in header
    assert body.splitlines() == [
        "[00:00:01] Caller: Hi, what are your hours?",
        "[00:00:03] Agent: We open at nine  (830 ms)  [interrupted]",
        "[00:00:06] (transferred to +15550003333)",
        "[00:00:07] Caller: Thanks",
    ]


@pytest.mark.parametrize("ended_at", [None, T0 + timedelta(hours=2, seconds=5)])
def test_transcript_of_a_call_without_turns(ended_at: datetime | None) -> None:
    call = StoredCall(
        id=1,
        call_sid="CA2",
        tenant="default",
        direction="outbound",
        from_number="+1",
        to_number="+2",
        agent="sales",
        pipeline="cascade",
        status="in-progress" if ended_at is None else "completed",
        end_reason=None,
        started_at=T0,
        ended_at=ended_at,
        metadata=None,
    )
    data = transcript_dict(call)
    assert data["turns"] == []
    assert data["ended_at"] == (None if ended_at is None else ended_at.isoformat())
    text = transcript_text(call)
    assert text.startswith("Call CA2  outbound  +1 -> +2\n")
    assert ("Duration: 02:00:05" in text) is (ended_at is not None)


def test_stored_turn_without_latency_renders_plainly() -> None:
    call = StoredCall(
        1, "CA3", "default", "inbound", "+1", "+2", "a", "offline", "completed", None, T0, None,
        None,
        [StoredTurn(0, "agent", "Hello!", T0.astimezone(UTC), None, False)],
    )  # fmt: skip
    assert transcript_text(call).endswith("[00:00:00] Agent: Hello!\n")
    assert transcript_dict(call)["turns"][0]["latency_ms"] is None
