"""Leads, and the outcome facts the telephony flows store on calls, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.leads import Lead, LeadRepository
from voice_agent.storage.records import CallEnded, CallStarted
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _lead(**fields: object) -> Lead:
    values: dict[str, object] = {
        "tenant": "acme",
        "first_name": "Maria",
        "phone": "+12125550134",
        "email": "maria@example.com",
        "created_at": NOW,
    }
    values.update(fields)
    return Lead(**values)  # type: ignore[arg-type]


async def test_leads_round_trip_and_stay_in_their_tenant(db: Database) -> None:
    repo = LeadRepository(db)
    lead_id = await repo.add(_lead(fields={"budget": "10k"}, source="website"))

    stored = await repo.get(lead_id, tenant="acme")
    assert stored is not None and stored.fields == {"budget": "10k"} and stored.status == "new"
    assert stored.variables()["first_name"] == "Maria"
    assert stored.variables()["budget"] == "10k"
    assert await repo.get(lead_id, tenant="other") is None
    await repo.set_status(lead_id, "contacted", NOW)
    updated = await repo.get(lead_id)
    assert updated is not None and updated.status == "contacted"
    with pytest.raises(ValueError):
        await repo.set_status(lead_id, "married")


async def test_duplicates_match_phone_or_email_inside_the_window(db: Database) -> None:
    repo = LeadRepository(db)
    first = await repo.add(_lead())
    await repo.add(_lead(tenant="other"))
    since = NOW - timedelta(minutes=10)

    by_phone = await repo.recent_duplicate("acme", "+12125550134", None, since)
    by_email = await repo.recent_duplicate("acme", "+14155550100", "maria@example.com", since)
    assert by_phone is not None and by_phone.id == first
    assert by_email is not None and by_email.id == first
    assert await repo.recent_duplicate("acme", "+14155550100", "x@example.com", since) is None
    assert await repo.recent_duplicate("acme", "+12125550134", None, NOW + timedelta(1)) is None


async def test_status_callbacks_create_update_and_never_reopen(db: Database) -> None:
    calls = CallRepository(db)
    common = {
        "tenant": "acme",
        "direction": "outbound",
        "from_number": "+13125550100",
        "to_number": "+12125550134",
        "agent": "lead_qualifier",
    }
    await calls.record_progress("CA1", status="queued", at=NOW, lead_id=7, **common)
    await calls.record_progress("CA1", status="ringing", at=NOW, **common)
    later = NOW + timedelta(seconds=50)
    await calls.record_progress(
        "CA1", status="no-answer", at=later, duration_s=0, price=0.0, price_unit="USD", **common
    )
    await calls.record_progress("CA1", status="ringing", at=later, **common)

    facts = await calls.call_facts("CA1", tenant="acme")
    assert facts is not None
    assert facts["status"] == "no-answer" and facts["ended_at"] == later
    assert facts["lead_id"] == 7 and facts["duration_s"] == 0 and facts["price_unit"] == "USD"
    assert await calls.call_facts("CA1", tenant="other") is None


async def test_a_streamed_call_keeps_its_start_and_gains_its_price(db: Database) -> None:
    calls = CallRepository(db)
    await calls.record_progress(
        "CA2",
        status="in-progress",
        at=NOW,
        tenant="acme",
        direction="outbound",
        from_number="+1",
        to_number="+2",
        agent="lead_qualifier",
    )
    started = NOW + timedelta(seconds=1)
    await calls.write(
        [
            CallStarted(
                "CA2", "acme", "outbound", "+1", "+2", "lead_qualifier", "cascade", started
            ),
            CallEnded("CA2", started + timedelta(seconds=30), "completed", "caller-hangup"),
        ]
    )
    await calls.record_progress(
        "CA2",
        status="completed",
        at=NOW + timedelta(seconds=40),
        tenant="acme",
        direction="outbound",
        from_number="+1",
        to_number="+2",
        agent="lead_qualifier",
        duration_s=31,
        price=0.0085,
        price_unit="USD",
    )
    assert await calls.set_call_facts("CA2", answered_by="human", outcome="contacted")
    assert not await calls.set_call_facts("CA-none", outcome="x")
    with pytest.raises(ValueError):
        await calls.set_call_facts("CA2", status="hacked")

    facts = await calls.call_facts("CA2")
    assert facts is not None
    assert facts["started_at"] == started  # the stream's start: the recording's t=0
    assert facts["ended_at"] == started + timedelta(seconds=30)
    assert (facts["duration_s"], facts["price"], facts["answered_by"]) == (31, 0.0085, "human")


async def test_recordings_before_a_date_per_tenant(db: Database) -> None:
    calls = CallRepository(db)
    for sid, tenant, days in (("CAo", "acme", 40), ("CAn", "acme", 1), ("CAx", "other", 40)):
        at = NOW - timedelta(days=days)
        await calls.write([CallStarted(sid, tenant, "inbound", "+1", "+2", "r", "x", at)])
        await calls.set_call_facts(sid, recording_path=f"/rec/{sid}.flac")
    assert await calls.recordings_before("acme", NOW - timedelta(days=30)) == [
        ("CAo", "/rec/CAo.flac")
    ]


async def test_reschedule_and_calls_for_a_lead(db: Database) -> None:
    repo = ScheduledCallRepository(db)
    first = await repo.add(ScheduledCall("acme", "+12125550134", NOW, "lead", lead_id=3))
    await repo.add(ScheduledCall("acme", "+12125550134", NOW, "retry", attempt=1, lead_id=3))
    (claimed, _) = await repo.claim_due(NOW)
    assert claimed.id == first
    await repo.reschedule(first, NOW + timedelta(hours=12), NOW)
    call = await repo.get(first)
    assert call is not None and call.status == "pending"
    assert call.due_at == NOW + timedelta(hours=12)
    assert [c.attempt for c in await repo.for_lead(3)] == [0, 1]
