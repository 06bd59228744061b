"""sms.received and sms.sent from a running server: a text signed like Twilio's posted to
/twilio/sms, the agent's reply answered as TwiML (cascade on the OpenAI stand-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from loadtest.standins.event_receiver import EventReceiver
from tests.app.twilio_side import until
from tests.sms.conftest import (
    BUSINESS,
    CUSTOMER,
    SmsServer,
    SmsServerFactory,
    reply_of,
    sms_server_factory,
    twilio,
)

__all__ = ["sms_server_factory", "twilio"]


@pytest.fixture
async def texting(
    sms_server_factory: SmsServerFactory, receiver: EventReceiver
) -> AsyncIterator[SmsServer]:
    async with sms_server_factory(
        events_webhook_url=receiver.url(), events_webhook_secret=receiver.secret
    ) as server:
        yield server


async def test_a_text_and_its_reply_are_events_in_order(
    texting: SmsServer, receiver: EventReceiver
) -> None:
    reply = reply_of(await texting.text("Hi, I need a new roof"))
    assert reply
    await until(lambda: len(receiver.accepted_events()) == 2, what="both sms events")
    received, sent = receiver.accepted_events()
    assert (received["type"], sent["type"]) == ("sms.received", "sms.sent")
    assert received["data"]["from"] == CUSTOMER and received["data"]["to"] == BUSINESS
    assert received["data"]["body"] == "Hi, I need a new roof"
    assert sent["data"]["from"] == BUSINESS and sent["data"]["to"] == CUSTOMER
    assert sent["data"]["body"] == reply
    assert received["data"]["thread_id"] == sent["data"]["thread_id"]
    assert {received["tenant"], sent["tenant"]} == {"default"}
    assert receiver.forged == 0
