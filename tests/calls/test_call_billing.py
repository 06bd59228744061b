"""A whole cascade call billed through Stripe: its usage rows, Twilio's call seconds and a
text reach the stand-in Stripe (the real stripe SDK at STRIPE_API_BASE_URL) as meter events
once each, with the tenant's price as value, after an outage and the outbox's retries;
duplicate deliveries (a lost answer) are still counted once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from loadtest.caller import place_call
from loadtest.standins.openai_server import StandinOpenAI
from loadtest.standins.stripe_server import StripeStandin
from tests.app.twilio_side import sign, status_params, until
from tests.calls.cascade_support import short_responder
from tests.conftest import TWILIO_TOKEN
from voice_agent.billing.meter_events import micro_usd
from voice_agent.demo import demo_turns, running_server
from voice_agent.outbox import OutboxWorker
from voice_agent.settings import Settings
from voice_agent.storage.billing import BillingRepository
from voice_agent.storage.database import Database
from voice_agent.storage.metering import UsageRepository, to_milli
from voice_agent.storage.migrate import upgrade

MARKUP = 1.5
# The stripe SDK's httpx client posts bytes as data=, which httpx deprecates (theirs).
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=:DeprecationWarning")


@pytest.fixture
async def stripe_standin() -> AsyncIterator[StripeStandin]:
    async with StripeStandin() as server:
        yield server


async def _post_status(settings: Settings, params: dict[str, str]) -> httpx.Response:
    url = settings.public_base_url + "/twilio/status"
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)})


async def _pending(outbox: OutboxWorker) -> int:
    return sum(s.pending for s in await outbox.stats() if s.topic == "stripe")


async def test_a_calls_usage_reaches_stripe_once_after_an_outage(
    standin: StandinOpenAI,
    stripe_standin: StripeStandin,
    cascade_settings: Callable[..., Settings],
) -> None:
    standin.responder = short_responder
    settings = cascade_settings(
        stripe_api_key=stripe_standin.api_key, stripe_api_base_url=stripe_standin.base_url
    )
    customer = "cus_" + "standin01"
    stripe_standin.customers[customer] = {"id": customer, "object": "customer"}
    await upgrade(settings.database_url)
    db = await Database.connect(settings.database_url)
    await BillingRepository(db).update("default", stripe_customer_id=customer, markup=MARKUP)

    stripe_standin.fail(503)  # Stripe is down for the whole call
    async with running_server(settings) as runtime:
        result = await place_call(
            settings.public_base_url, demo_turns(), auth_token=TWILIO_TOKEN, hangup_wait_s=3.0
        )
        assert result.error is None, result.error
        sid = result.call_sid
        status = await _post_status(settings, status_params(sid))
        assert status.status_code == 204
        assert await runtime.writes.flush(5.0)
        assert runtime.outbox is not None
        await until(lambda: len(stripe_standin.requests) >= 3, 10.0, "meter events tried")
        assert stripe_standin.meter_events == []  # nothing got through the outage
        stripe_standin.heal()
        stripe_standin.lose_answers(3)  # stored, but the worker is told 500: sent again
        ended_at = time.monotonic()

        rows = await UsageRepository(db).rows_for_call(sid)
        priced = {
            r: micro_usd(runtime.billing.prices, MARKUP, r.meter, r.model, to_milli(r.quantity))  # type: ignore[union-attr]
            for r in rows
        }
        expected = sorted(v for v in priced.values() if v > 0)
        assert len(expected) >= 10 and any(r.meter == "call_seconds" for r in rows)
        await until(
            lambda: len(stripe_standin.meter_events) >= len(expected), 30.0, "every row reported"
        )
        delay_s = max(e.received_at for e in stripe_standin.meter_events) - ended_at
        await until(
            lambda: (
                stripe_standin.requests.count(("POST", "/v1/billing/meter_events"))
                > len(expected) + 3
            ),
            30.0,
            "the lost answers' events sent again",
        )
        for _ in range(400):  # the retried items settle as delivered, none left pending
            if not await _pending(runtime.outbox):
                break
            await asyncio.sleep(0.05)
        assert await _pending(runtime.outbox) == 0
    await db.dispose()

    events = stripe_standin.events_for(customer)
    assert sorted(int(e.value) for e in events) == expected
    assert len({e.identifier for e in events}) == len(events)  # once each
    assert {e.event_name for e in events} == {settings.stripe_meter_event_name}
    print(f"meter events: {len(events)} delivered {delay_s:.2f} s after Stripe came back")


async def test_meter_events_leave_as_the_turns_are_written(
    standin: StandinOpenAI,
    stripe_standin: StripeStandin,
    cascade_settings: Callable[..., Settings],
) -> None:
    """Without an outage, each row's meter event follows its write within moments: the
    write wakes the outbox rather than waiting for its poll. Prints the delays."""
    standin.responder = short_responder
    settings = cascade_settings(
        stripe_api_key=stripe_standin.api_key, stripe_api_base_url=stripe_standin.base_url
    )
    customer = "cus_standin02"
    stripe_standin.customers[customer] = {"id": customer, "object": "customer"}
    await upgrade(settings.database_url)
    db = await Database.connect(settings.database_url)
    await BillingRepository(db).update("default", stripe_customer_id=customer)
    async with running_server(settings):
        result = await place_call(
            settings.public_base_url, demo_turns(), auth_token=TWILIO_TOKEN, hangup_wait_s=3.0
        )
        hung_up = time.monotonic()
        rows = await UsageRepository(db).rows_for_call(result.call_sid)
        await until(lambda: len(stripe_standin.meter_events) >= len(rows), 10.0, "every row")
    await db.dispose()
    # Each row's own time (measured on the call path) against its event's arrival.
    arrived = {e.identifier: e.received_wall for e in stripe_standin.meter_events}
    assert set(arrived) == {r.key for r in rows}
    delays = sorted(arrived[r.key] - r.at.timestamp() for r in rows)
    last = max(e.received_at for e in stripe_standin.meter_events)
    print(
        f"meter events: {len(rows)} rows; delay p50 {delays[len(delays) // 2] * 1000:.0f} ms,"
        f" max {delays[-1] * 1000:.0f} ms; the last {last - hung_up:+.3f} s after the hang-up"
    )
    assert delays[-1] < 5.0
