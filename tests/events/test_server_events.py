"""Events from a running server, through its real entry points: a lead posted to the lead
webhook, its call placed (Twilio stand-in), answered over the media websocket and ended,
its analysis; a tenant's suspension; a tenant's own webhook set on the admin page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from loadtest.standins.event_receiver import EventReceiver
from tests.app.twilio_side import open_stream, stream_from_twiml, until
from tests.outbound.conftest import (
    LEAD_PHONE,
    Outbound,
    clock,
    lead_body,
    outbound_settings,
    serve,
    twilio,
)
from voice_agent.events.secret import new_secret
from voice_agent.storage.tenants import Tenant

__all__ = ["clock", "outbound_settings", "serve", "twilio"]


@pytest.fixture
async def server(serve: Callable[..., Any], receiver: EventReceiver) -> AsyncIterator[Outbound]:
    async with serve(
        events_webhook_url=receiver.url(), events_webhook_secret=receiver.secret
    ) as running:
        yield running


def of_type(receiver: EventReceiver, kind: str) -> list[dict[str, Any]]:
    return [e for e in receiver.accepted_events() if e["type"] == kind]


async def test_a_lead_and_its_call_announce_themselves_in_order(
    server: Outbound, receiver: EventReceiver
) -> None:
    response = await server.post_lead(lead_body())
    assert response.status_code == 202, response.text
    lead_id, call_sid = response.json()["lead_id"], response.json()["call_sid"]
    await until(lambda: of_type(receiver, "lead.created"), what="lead.created")
    [lead] = of_type(receiver, "lead.created")
    assert lead["tenant"] == "default"
    assert lead["data"]["lead_id"] == lead_id and lead["data"]["phone"] == LEAD_PHONE
    assert lead["data"]["first_name"] == "Maria" and lead["data"]["email"] == "maria@example.com"

    # The same lead posted again: a duplicate, no second event.
    again = await server.post_lead(lead_body())
    assert again.json()["duplicate"] is True

    _, document = await server.twilio.answer(call_sid)
    stream = await open_stream(server.settings, call_sid)
    await stream.start(stream_from_twiml(document)[1]["token"])
    registry = server.runtime.metrics.registry
    await until(
        lambda: registry.get_sample_value("voice_agent_turns_total", {"role": "agent"}) == 1,
        what="the greeting",
    )
    await stream.stop()
    await until(stream.closed.is_set, what="the call to end")
    await until(lambda: of_type(receiver, "call.ended"), what="call.ended")

    call_events = [e for e in receiver.accepted_events() if e["type"].startswith("call.")]
    kinds = [e["type"] for e in call_events]
    assert kinds[:2] == ["call.started", "call.ended"]
    started, ended = call_events[0]["data"], call_events[1]["data"]
    assert started["direction"] == "outbound" and started["to"] == LEAD_PHONE
    assert ended["end_reason"] and ended["turns"] >= 1 and ended["duration_s"] >= 0
    assert isinstance(ended["usage"], dict) and ended["cost_usd"] >= 0  # greeting made earlier
    assert len(of_type(receiver, "lead.created")) == 1
    # The analysis follows the end (the cascade's structured-output request).
    await until(lambda: of_type(receiver, "call.analyzed"), what="call.analyzed", within_s=30)
    [analyzed] = of_type(receiver, "call.analyzed")
    assert analyzed["data"]["call_sid"] == call_sid
    assert analyzed["data"]["lead_id"] == lead_id
    assert analyzed["data"]["outcome"] in {
        "qualified",
        "not-interested",
        "callback",
        "voicemail",
        "transferred",
        "no-answer",
        "other",
    }
    call_events = [e for e in receiver.accepted_events() if e["type"].startswith("call.")]
    assert {e["data"]["call_sid"] for e in call_events} == {call_sid}
    assert [e["type"] for e in call_events] == ["call.started", "call.ended", "call.analyzed"]
    assert receiver.forged == 0


async def test_suspension_and_restoration_are_events(
    server: Outbound, receiver: EventReceiver
) -> None:
    billing = server.runtime.billing
    assert billing is not None
    await billing.suspend("default", "payment-failed")
    await billing.suspend("default", "payment-failed")  # already suspended: nothing new
    await billing.restore("default", "paid")
    await until(lambda: of_type(receiver, "tenant.restored"), what="tenant.restored")
    kinds = [e["type"] for e in receiver.accepted_events()]
    assert kinds == ["tenant.suspended", "tenant.restored"]
    assert receiver.accepted_events()[0]["data"]["reason"] == "payment-failed"


async def test_a_lead_for_another_tenant_goes_to_that_tenants_webhook_only(
    server: Outbound, receiver: EventReceiver
) -> None:
    tenants = server.runtime.tenants
    await tenants.save(Tenant("beta", "Beta Roofing", "receptionist", "lead_qualifier"))
    beta_secret = new_secret()
    receiver.secrets["/beta"] = beta_secret
    events = server.runtime.events
    assert events is not None
    await events.targets.set_override("beta", receiver.url("/beta"), beta_secret)

    response = await server.post_lead(lead_body(tenant="beta", phone="(212) 555-0177"))
    assert response.status_code == 202, response.text
    await server.post_lead(lead_body())  # the default tenant's own lead
    await until(lambda: len(of_type(receiver, "lead.created")) == 2, what="both leads")
    by_path = {a.path: a.event for a in receiver.accepted if a.event["type"] == "lead.created"}
    assert by_path["/beta"]["tenant"] == "beta"
    assert by_path["/beta"]["data"]["phone"] == "+12125550177"
    assert by_path["/"]["tenant"] == "default"
    # Nothing of the default tenant reached beta's webhook, nor the other way round.
    assert all(a.event["tenant"] == "beta" for a in receiver.accepted if a.path == "/beta")
    assert all(a.event["tenant"] != "beta" for a in receiver.accepted if a.path == "/")
    assert "+12125550134" not in str([a.event for a in receiver.accepted if a.path == "/beta"])
    assert receiver.forged == 0
