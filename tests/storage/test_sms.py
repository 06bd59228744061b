"""SmsRepository on SQLite and PostgreSQL: threads per tenant and number, messages in
order, duplicate sids, status updates that never go backwards, the rate-limit count."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from voice_agent.storage.database import Database
from voice_agent.storage.sms import DuplicateMessage, SmsRepository
from voice_agent.storage.tenants import Tenant, TenantRepository

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


async def test_one_thread_per_tenant_and_number(db: Database) -> None:
    repo = SmsRepository(db)
    threads = await asyncio.gather(
        *(repo.open_thread("acme", "+14155550134", "+15550100", "receptionist") for _ in range(5))
    )
    assert len({t.id for t in threads}) == 1
    other_tenant = await repo.open_thread("bolt", "+14155550134", "+15550200", "receptionist")
    assert other_tenant.id != threads[0].id
    assert await repo.thread("acme", "+14155550999") is None
    assert (await repo.thread_by_id(other_tenant.id)).tenant == "bolt"  # type: ignore[union-attr]

    await repo.set_state(threads[0].id, "handoff")
    assert (await repo.thread("acme", "+14155550134")).state == "handoff"  # type: ignore[union-attr]
    assert (await repo.thread("bolt", "+14155550134")).state == "agent"  # type: ignore[union-attr]


async def test_messages_in_order_with_media_and_duplicates_refused(db: Database) -> None:
    repo = SmsRepository(db)
    thread = await repo.open_thread("acme", "+14155550134", "+15550100", "receptionist")
    await repo.add_message(
        thread.id,
        direction="inbound",
        body="look",
        status="received",
        media_urls=["https://api.twilio.com/ME1"],
        message_sid="SM1",
        at=NOW,
    )
    reply = await repo.add_message(
        thread.id, direction="outbound", body="nice", status="queued", segments=2, at=NOW
    )
    with pytest.raises(DuplicateMessage):
        await repo.add_message(
            thread.id, direction="inbound", body="look", status="received", message_sid="SM1"
        )
    messages = await repo.messages(thread.id)
    assert [(m.direction, m.body, m.media_urls, m.segments) for m in messages] == [
        ("inbound", "look", ["https://api.twilio.com/ME1"], 1),
        ("outbound", "nice", [], 2),
    ]
    assert (await repo.thread_by_id(thread.id)).last_message_at == NOW  # type: ignore[union-attr]
    assert [m.body for m in await repo.messages(thread.id, limit=1)] == ["nice"]
    assert (await repo.get(reply.id)).body == "nice"  # type: ignore[union-attr]


async def test_status_updates_never_go_backwards(db: Database) -> None:
    repo = SmsRepository(db)
    thread = await repo.open_thread("acme", "+14155550134", "+15550100", "receptionist")
    message = await repo.add_message(thread.id, direction="outbound", body="hi", status="queued")
    await repo.attach_sid(message.id, "SM2")
    await repo.attach_sid(message.id, "SM3")  # a sid once given is kept
    assert await repo.update_status("SM2", "delivered")
    assert await repo.update_status("SM2", "sent")  # late, ignored, but the message is ours
    stored = await repo.by_sid("SM2")
    assert stored is not None and stored.status == "delivered"
    assert not await repo.update_status("SM404", "delivered")

    failed = await repo.add_message(thread.id, direction="outbound", body="x", status="queued")
    await repo.sent(failed.id, status="failed", error_code="21610")
    stored = await repo.get(failed.id)
    assert stored is not None and (stored.status, stored.error_code) == ("failed", "21610")


async def test_outbound_count_for_the_rate_limit(db: Database) -> None:
    repo = SmsRepository(db)
    thread = await repo.open_thread("acme", "+14155550134", "+15550100", "receptionist")
    for minutes in (-5, -0.5, -0.2):
        await repo.add_message(
            thread.id,
            direction="outbound",
            body="r",
            status="sent",
            at=NOW + timedelta(minutes=minutes),
        )
    await repo.add_message(thread.id, direction="inbound", body="q", status="received", at=NOW)
    assert await repo.outbound_since(thread.id, NOW - timedelta(minutes=1)) == 2


async def test_has_numbers(db: Database) -> None:
    tenants = TenantRepository(db)
    await tenants.save(Tenant("acme", "Acme", "receptionist", "lead_qualifier"))
    assert not await tenants.has_numbers()
    await tenants.add_number("acme", "+15550100200")
    assert await tenants.has_numbers()
