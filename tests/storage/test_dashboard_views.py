"""Read models behind the dashboard's leads, SMS, live and usage views, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from tests.dashboard.seed import SeedTurn, add_call, add_lead, add_opt_out, add_thread
from voice_agent.storage.call_views import CallViews
from voice_agent.storage.database import Database
from voice_agent.storage.lead_views import LeadViews
from voice_agent.storage.sms_views import SmsViews
from voice_agent.storage.tables import calls
from voice_agent.storage.usage import UsageReport, month_start


async def test_leads_with_opt_out_state_scoped(db: Database) -> None:
    first = await add_lead(
        db,
        "acme",
        "+14155550101",
        "Ana",
        last_name="Diaz",
        status="contacted",
        fields={"budget": "5k"},
    )
    await add_lead(db, "acme", "+14155550102", "Ben")
    await add_lead(db, "globex", "+14155550101", "Gus")
    await add_opt_out(db, "acme", "+14155550101")
    views = LeadViews(db)
    acme = await views.recent("acme")
    assert [(lead.name, lead.opted_out) for lead in acme] == [("Ben", False), ("Ana Diaz", True)]
    # The opt-out is acme's: the same number at globex has not opted out there.
    assert [(lead.name, lead.opted_out) for lead in await views.recent("globex")] == [
        ("Gus", False)
    ]
    assert len(await views.recent(None)) == 3
    assert [lead.name for lead in await views.recent("acme", status="contacted")] == ["Ana Diaz"]
    lead = await views.get(first, "acme")
    assert lead is not None and lead.fields == {"budget": "5k"}
    assert await views.get(first, "globex") is None


async def test_sms_threads_and_messages_scoped(db: Database) -> None:
    thread = await add_thread(
        db,
        "acme",
        "+14155550101",
        [
            ("inbound", "Hi, is Tuesday ok?"),
            ("outbound", "Tuesday at 10 works."),
            ("inbound", "STOP"),
        ],
    )
    await add_thread(db, "globex", "+14155550199", [("inbound", "hello")])
    await add_opt_out(db, "acme", "+14155550101")
    views = SmsViews(db)
    (listed,) = await views.threads("acme")
    assert listed.id == thread and listed.message_count == 3 and listed.opted_out
    assert listed.opt_out_keyword == "STOP"
    full = await views.thread(thread, "acme")
    assert full is not None
    assert [(m.direction, m.body) for m in full.messages] == [
        ("inbound", "Hi, is Tuesday ok?"),
        ("outbound", "Tuesday at 10 works."),
        ("inbound", "STOP"),
    ]
    assert await views.thread(thread, "globex") is None
    assert len(await views.threads(None)) == 2


async def test_usage_this_month(db: Database) -> None:
    now = datetime.now(UTC)
    start = month_start(now)
    turn = [SeedTurn("caller", "hi", 0, 59.5)]  # ended 60 s after the start
    await add_call(db, "CA1", "acme", turn, started_at=start + timedelta(minutes=1))
    await add_call(db, "CA2", "acme", turn, started_at=start + timedelta(minutes=2), duration_s=90)
    await add_call(db, "CA3", "acme", turn, started_at=start - timedelta(days=2))  # last month
    await add_call(db, "CA4", "globex", turn, started_at=start + timedelta(minutes=3))
    await add_call(db, "CA5", "acme", turn, started_at=start + timedelta(minutes=4), ended=False)
    await add_thread(db, "acme", "+14155550101", [("inbound", "a"), ("outbound", "b")])
    usage = await UsageReport(db).this_month("acme")
    assert usage.calls == 3
    assert usage.minutes == 2.5  # 60 s measured + 90 s billed + the one still going
    assert usage.sms == 2 and usage.sms_segments == 2


async def test_call_view_extras_and_live_calls(db: Database) -> None:
    now = datetime.now(UTC)
    await add_call(
        db,
        "CAlive",
        "acme",
        [SeedTurn("caller", "hi", 0, 1)],
        started_at=now - timedelta(seconds=30),
        ended=False,
    )
    await add_call(db, "CAold", "acme", [], started_at=now - timedelta(days=1), ended=False)
    await add_call(
        db,
        "CAdone",
        "acme",
        [SeedTurn("caller", "bye", 0, 1)],
        started_at=now - timedelta(minutes=9),
        recording_path="/tmp/x.wav",
        outcome="booked",
        summary="Booked.",
        lead_id=7,
    )
    await add_call(db, "CAother", "globex", [], started_at=now - timedelta(seconds=5), ended=False)
    async with db.engine.begin() as conn:
        await conn.execute(
            update(calls)
            .where(calls.c.call_sid == "CAdone")
            .values(metadata={"stream_sid": "MZ1", "fields": {"name": "Ana"}})
        )
    views = CallViews(db)
    assert await views.in_progress("acme") == ["CAlive"]
    assert await views.in_progress(None) == ["CAother", "CAlive"]
    view = await views.get("CAdone", "acme")
    assert view is not None
    assert (view.recording_path, view.outcome, view.summary, view.lead_id) == (
        "/tmp/x.wav",
        "booked",
        "Booked.",
        7,
    )
    assert view.fields == {"name": "Ana"}
    assert view.duration_s is not None and view.duration_s > 0
    assert await views.get("CAdone", "globex") is None
