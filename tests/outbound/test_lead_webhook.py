"""POST /webhooks/lead: the secret, the field errors, one lead per person per window, rate
limits, and the outbound call placed through the Twilio REST stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.outbound.conftest import (
    FROM_NUMBER,
    LEAD_PHONE,
    Outbound,
    lead_body,
)
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository
from voice_agent.storage.tenants import Tenant


async def test_a_lead_is_stored_and_called_at_once(server: Outbound) -> None:
    response = await server.post_lead(lead_body(budget="about 10k"))

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["call_status"] == "placed" and body["duplicate"] is False
    (create,) = server.creates()
    assert create.authorized and create.status == 201
    form = create.form
    assert form["To"] == LEAD_PHONE and form["From"] == FROM_NUMBER
    assert body["call_sid"] in server.twilio.calls
    base = server.settings.public_base_url
    voice = urlsplit(form["Url"])
    assert f"{voice.scheme}://{voice.netloc}{voice.path}" == base + "/twilio/voice"
    scheduled_id = dict(parse_qsl(voice.query))["scheduled"]
    assert form["StatusCallback"] == f"{base}/twilio/status?scheduled={scheduled_id}"
    assert form["AsyncAmdStatusCallback"] == f"{base}/twilio/amd?scheduled={scheduled_id}"
    assert form["AsyncAmd"] == "true" and form["MachineDetection"] == "DetectMessageEnd"
    events = [v for k, v in create.params if k == "StatusCallbackEvent"]
    assert events == ["initiated", "ringing", "answered", "completed"]

    lead = await server.leads.get(body["lead_id"])
    assert lead is not None
    assert (lead.first_name, lead.last_name, lead.phone) == ("Maria", "Lopez", LEAD_PHONE)
    assert lead.email == "maria@example.com" and lead.fields == {"budget": "about 10k"}
    assert lead.status == "calling" and lead.tenant == "default"
    facts = await server.runtime.calls.call_facts(body["call_sid"])
    assert facts is not None and facts["status"] == "queued" and facts["lead_id"] == lead.id


async def test_without_the_secret_nothing_is_stored(server: Outbound) -> None:
    missing = await server.post_lead(lead_body(), secret=None)
    wrong = await server.post_lead(lead_body(), secret="not-the-secret")
    basic = await server.post_lead(lead_body(), secret=None, headers={"Authorization": "Basic x"})

    assert [r.status_code for r in (missing, wrong, basic)] == [401, 401, 401]
    assert await server.leads.list("default") == []
    assert server.creates() == []


async def test_an_unset_secret_refuses_every_lead(serve: Callable[..., Any]) -> None:
    async with serve(lead_webhook_secret=None) as server:
        response = await server.post_lead(lead_body(), secret="anything")
        assert response.status_code == 401
        assert server.creates() == []


async def test_bad_fields_are_listed(server: Outbound) -> None:
    response = await server.post_lead(
        {"lastName": 7, "email": "not-an-email", "phone": "12", "nested": {"a": 1}}
    )

    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"firstName", "lastName", "email", "phone", "nested"}
    missing = await server.post_lead({"firstName": "Al"})
    assert {e["field"] for e in missing.json()["errors"]} == {"phone"}
    not_json = await server.post_lead(b"{not json")
    assert not_json.status_code == 422
    assert not_json.json()["errors"] == [{"field": "body", "message": "not JSON"}]
    a_list = await server.post_lead([lead_body()])
    assert a_list.status_code == 422
    assert await server.leads.list("default") == []
    assert server.creates() == []


async def test_a_second_submission_in_the_window_is_the_same_lead(server: Outbound) -> None:
    first = (await server.post_lead(lead_body())).json()
    # The same person again, by phone in another format, then by email with a new phone.
    again = (await server.post_lead(lead_body(phone="+1 212 555 0134", email=None))).json()
    by_email = (await server.post_lead(lead_body(phone="(415) 555-0134"))).json()

    assert again["duplicate"] and by_email["duplicate"]
    assert again["lead_id"] == by_email["lead_id"] == first["lead_id"]
    assert again["call_sid"] == first["call_sid"]
    assert len(server.creates()) == 1

    server.clock.advance(minutes=11)  # past LEAD_DUPLICATE_WINDOW_S (600 s)
    later = (await server.post_lead(lead_body())).json()
    assert not later["duplicate"] and later["lead_id"] != first["lead_id"]
    assert len(server.creates()) == 2


async def test_leads_are_rate_limited_per_address(serve: Callable[..., Any]) -> None:
    async with serve(lead_rate_per_ip_per_min=2) as server:
        codes = [
            (
                await server.post_lead(lead_body(phone=f"(212) 555-01{i:02d}", email=None))
            ).status_code
            for i in range(3)
        ]
        assert codes == [202, 202, 429]
        assert len(server.creates()) == 2


async def test_leads_are_rate_limited_per_tenant(serve: Callable[..., Any]) -> None:
    async with serve(lead_rate_per_tenant_per_min=1) as server:
        await server.runtime.tenants.save(Tenant("acme", "Acme", "receptionist", "lead_qualifier"))
        first = await server.post_lead(lead_body())
        second = await server.post_lead(lead_body(phone="(212) 555-0199", email=None))
        other = await server.post_lead(lead_body(phone="(212) 555-0198", email=None, tenant="acme"))
        assert [first.status_code, second.status_code, other.status_code] == [202, 429, 202]


async def test_the_tenant_comes_from_the_body_query_or_header(server: Outbound) -> None:
    await server.runtime.tenants.save(Tenant("acme", "Acme", "receptionist", "lead_qualifier"))
    by_query = await server.post_lead(lead_body(), params={"tenant": "acme"})
    by_header = await server.post_lead(
        lead_body(phone="(212) 555-0190", email=None), headers={"X-Tenant": "acme"}
    )
    unknown = await server.post_lead(lead_body(tenant="nobody"))

    for response in (by_query, by_header):
        lead = await server.leads.get(response.json()["lead_id"], tenant="acme")
        assert lead is not None and lead.tenant == "acme"
    # A tenant cannot see another's lead.
    assert await server.leads.get(by_query.json()["lead_id"], tenant="default") is None
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [{"field": "tenant", "message": "no such tenant"}]


async def test_an_opted_out_number_is_never_called(server: Outbound) -> None:
    """A number opted out (via OptOutRepository) is refused by the lead webhook's outbound
    call and by the dialer."""
    await server.runtime.opt_outs.record("default", LEAD_PHONE, opted_out=True, keyword="STOP")

    response = await server.post_lead(lead_body())

    assert response.status_code == 202
    body = response.json()
    assert body["call_sid"] is None and body["call_status"] == "opted-out"
    lead = await server.leads.get(body["lead_id"])
    assert lead is not None and lead.status == "opted-out"

    # A callback queued for the same number before the STOP arrived: the dialer drops it.
    scheduled = ScheduledCallRepository(server.runtime.database)
    callback_id = await scheduled.add(
        ScheduledCall("default", LEAD_PHONE, server.clock.now - timedelta(minutes=1), "callback")
    )
    for _ in range(200):
        call = await scheduled.get(callback_id)
        assert call is not None
        if call.status not in ("pending", "placing"):
            break
        await asyncio.sleep(0.02)
    assert call.status == "cancelled" and call.last_error == "opted out"
    assert server.creates() == []


async def test_outside_calling_hours_the_call_waits_for_the_morning(server: Outbound) -> None:
    server.clock.advance(hours=11)  # 21:00 in New York, after the 20:00 close
    body = (await server.post_lead(lead_body())).json()

    assert body["call_sid"] is None and body["call_status"] == "rescheduled"
    assert body["scheduled_at"] == "2026-11-26T14:00:00+00:00"  # 09:00 New York
    assert server.creates() == []
    pending = await ScheduledCallRepository(server.runtime.database).pending("default")
    assert [c.reason for c in pending] == ["lead"]


async def test_twilio_down_fails_the_call_and_queues_a_retry(server: Outbound) -> None:
    server.twilio.inject_error(503, 20500, "Service unavailable")
    body = (await server.post_lead(lead_body())).json()

    assert body["call_sid"] is None and body["call_status"] == "failed"
    (retry,) = await ScheduledCallRepository(server.runtime.database).pending("default")
    assert retry.reason == "retry" and retry.attempt == 1
    assert retry.due_at == server.clock.now.replace(minute=30)
