"""Suspension and restoration end to end, driven by signed Stripe webhooks: a call during
suspension hears the notice in the agent's voice and ends; a scheduled call is held (kept)
and placed once the tenant is restored; a text gets one polite reply; the dashboard's
tenant staff see a banner; forged, stale, replayed and malformed webhooks are refused or
change nothing. Nothing is deleted."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import orjson
import pytest

from loadtest.caller import place_call
from loadtest.standins.openai_server import StandinOpenAI
from loadtest.standins.stripe_server import event_body, sign_payload
from tests.app.twilio_side import sign
from tests.conftest import TWILIO_ACCOUNT, TWILIO_TOKEN
from tests.outbound.conftest import LEAD_PHONE, Outbound
from voice_agent.billing.notice import END_REASON, SUSPENDED_MESSAGE
from voice_agent.sms.service import SUSPENDED_REPLY
from voice_agent.storage.billing import BillingRepository
from voice_agent.storage.metering import UsageRepository
from voice_agent.storage.records import UsageRecord
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository
from voice_agent.storage.users import UserRepository

SECRET = "whsec_" + "c3VzcGVuc2lvbi10ZXN0"
CUSTOMER = "cus_suspend01"


async def post_event(
    server: Outbound,
    kind: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    secret: str = SECRET,
    at: int | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    payload = body if body is not None else event_body(kind, obj, event_id)
    header = sign_payload(payload, secret, at)
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(
            server.settings.public_base_url + "/webhooks/stripe",
            content=payload,
            headers={"stripe-signature": header, "content-type": "application/json"},
        )


@pytest.fixture
def serve_billed(serve: Callable[..., Any]) -> Callable[..., Any]:
    def run(**overrides: object) -> Any:
        return serve(stripe_webhook_secret=SECRET, **overrides)

    return run


async def _customer(server: Outbound, **values: Any) -> BillingRepository:
    accounts = BillingRepository(server.runtime.database)
    await accounts.update("default", stripe_customer_id=CUSTOMER, **values)
    return accounts


async def _wait_for(check: Callable[[], Any], what: str, within_s: float = 10.0) -> Any:
    for _ in range(int(within_s / 0.02)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_suspended_tenant_end_to_end(
    serve_billed: Callable[..., Any], standin: StandinOpenAI
) -> None:
    async with serve_billed() as server:
        accounts = await _customer(server)
        scheduled = ScheduledCallRepository(server.runtime.database)

        response = await post_event(
            server, "customer.subscription.deleted", {"customer": CUSTOMER, "status": "canceled"}
        )
        assert response.status_code == 200 and response.json()["outcome"] == "suspended"
        assert (await accounts.get("default")).suspended

        # An inbound call: the notice, in the agent's voice (the OpenAI TTS), then the end.
        result = await place_call(
            server.settings.public_base_url,
            [],  # the caller only listens
            auth_token=TWILIO_TOKEN,
            hangup_wait_s=10.0,
        )
        assert result.error is None, result.error
        assert result.ended_by_server

        async def ended() -> Any:
            await server.runtime.writes.flush(5.0)
            call = await server.runtime.calls.get_call(result.call_sid)
            return call if call is not None and call.end_reason else None

        stored = await _wait_for(ended, "the call's end to be stored")
        assert stored.end_reason == END_REASON
        assert [t.text for t in stored.turns] == [SUSPENDED_MESSAGE]
        assert sum(len(r) for r in result.replies) > 0  # audio reached the caller
        (notice,) = [
            r.body for r in standin.recorded("speech") if r.body["input"] == SUSPENDED_MESSAGE
        ]
        agent = server.runtime.agents["receptionist"]
        assert notice["voice"] == (agent.voice or server.settings.tts_voice)

        # A scheduled call is held, not dropped, and nothing reaches Twilio.
        call_id = await scheduled.add(
            ScheduledCall(
                "default", LEAD_PHONE, server.clock.now - timedelta(minutes=1), "callback"
            )
        )

        async def held() -> bool:
            call = await scheduled.get(call_id)
            return call is not None and (call.last_error or "").startswith("held: ")

        await _wait_for(held, "the dialer to hold the call")
        held_call = await scheduled.get(call_id)
        assert held_call is not None and held_call.status == "pending"
        assert held_call.due_at > server.clock.now
        assert server.creates() == []

        # A text gets one polite reply; the next one is stored and not answered.
        first = await _sms(server, "hello?")
        assert first == SUSPENDED_REPLY.format(name="Default")
        assert await _sms(server, "anyone there?") is None

        # The tenant's staff see the banner.
        assert "billing-banner" in await _dashboard_page(server)

        # Paid: restored, and the held call is placed at once (not 5 minutes later).
        response = await post_event(server, "invoice.paid", {"customer": CUSTOMER})
        assert response.json()["outcome"] == "restored"
        assert not (await accounts.get("default")).suspended

        async def placed() -> bool:
            call = await scheduled.get(call_id)
            return call is not None and call.status == "placed"

        await _wait_for(placed, "the held call to be placed")
        assert len(server.creates()) == 1
        assert server.creates()[0].form["To"] == LEAD_PHONE
        assert "billing-banner" not in await _dashboard_page(server)


async def _sms(server: Outbound, body: str) -> str | None:
    url = server.settings.public_base_url + "/twilio/sms"
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": TWILIO_ACCOUNT,
        "From": "+14155550134",
        "To": "+15557654321",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.post(
            url, data=params, headers={"X-Twilio-Signature": sign(url, params)}
        )
    assert response.status_code == 200, response.text
    message = ET.fromstring(response.text).find("Message")
    return message.text if message is not None else None


async def _dashboard_page(server: Outbound) -> str:
    users = UserRepository(server.runtime.database)
    email = f"staff{secrets.token_hex(3)}@example.com"
    await users.add(email, "correct horse battery", "staff", "default")
    async with httpx.AsyncClient(base_url=server.settings.public_base_url) as http:
        login = await http.get("/login")
        token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
        await http.post(
            "/login",
            data={"email": email, "password": "correct horse battery", "csrf_token": token},
        )
        page = await http.get("/calls")
        assert page.status_code == 200, page.text
        return page.text


async def test_forged_stale_replayed_and_malformed_webhooks(
    serve_billed: Callable[..., Any],
) -> None:
    async with serve_billed() as server:
        accounts = await _customer(server)
        deleted = {"customer": CUSTOMER, "status": "canceled"}
        changes: list[str] = []  # the tenant.suspended / tenant.restored seam
        server.runtime.billing.on_change(lambda tenant, kind, data: changes.append(kind))  # type: ignore[union-attr]

        forged = await post_event(
            server, "customer.subscription.deleted", deleted, secret="whsec_wrong"
        )
        assert forged.status_code == 400
        stale_at = int(datetime.now().timestamp()) - 360  # older than the 5-minute tolerance
        stale = await post_event(server, "customer.subscription.deleted", deleted, at=stale_at)
        assert stale.status_code == 400
        unsigned = await _post_raw(server, event_body("invoice.paid", {"customer": CUSTOMER}), {})
        assert unsigned.status_code == 400
        not_json = await post_event(server, "x", {}, body=b"not json at all")
        assert not_json.status_code == 400
        assert not (await accounts.get("default")).suspended  # none of them did anything

        # The same event twice: handled once. Restoring in between shows the replay is not
        # applied again (it would suspend once more).
        event_id = f"evt_{secrets.token_hex(8)}"
        first = await post_event(
            server, "customer.subscription.deleted", deleted, event_id=event_id
        )
        assert first.json() == {"received": True, "outcome": "suspended"}
        await post_event(server, "invoice.paid", {"customer": CUSTOMER})
        again = await post_event(
            server, "customer.subscription.deleted", deleted, event_id=event_id
        )
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert not (await accounts.get("default")).suspended
        assert changes == ["tenant.suspended", "tenant.restored"]  # the replay emitted nothing

        # Events for a customer no tenant has are acknowledged and change nothing.
        other = await post_event(server, "invoice.paid", {"customer": "cus_nobody"})
        assert other.json()["outcome"] == "unknown-customer"


async def _post_raw(server: Outbound, body: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(
            server.settings.public_base_url + "/webhooks/stripe", content=body, headers=headers
        )


async def test_unpaid_invoice_suspends_only_after_the_grace_period(
    serve_billed: Callable[..., Any],
) -> None:
    async with serve_billed() as server:
        accounts = await _customer(server, grace_days=3)
        failed = await post_event(server, "invoice.payment_failed", {"customer": CUSTOMER})
        assert failed.json()["outcome"] == "grace"
        account = await accounts.get("default")
        assert not account.suspended and account.payment_failed_at is not None

        # Four days on, with no word from Stripe: the next look at the tenant suspends it.
        server.clock.advance(days=4)
        standing = await server.runtime.billing.standing("default")  # type: ignore[union-attr]
        assert standing.suspended
        assert (await accounts.get("default")).suspended_reason == "payment-failed"

        active = orjson.loads(
            event_body("customer.subscription.updated", {"customer": CUSTOMER, "status": "active"})
        )
        restored = await post_event(
            server, "customer.subscription.updated", active["data"]["object"]
        )
        assert restored.json()["outcome"] == "restored"
        account = await accounts.get("default")
        assert not account.suspended and account.payment_failed_at is None


async def test_spend_cap_warns_at_80_percent_then_holds_outbound_not_inbound(
    serve_billed: Callable[..., Any],
) -> None:
    async with serve_billed() as server:
        await _customer(server, monthly_cap_usd=1.0, markup=2.0)
        usage = UsageRepository(server.runtime.database)
        now = datetime.now(UTC)

        def tokens(key: str, n: int) -> UsageRecord:
            return UsageRecord(key, "default", None, "llm_output_tokens", n, "gpt-4o", now)

        # 42,500 output tokens at $0.01/1k, times the markup of 2: $0.85 of a $1.00 cap.
        await usage.add(tokens("cap-1", 42_500))
        standing = await server.runtime.billing.standing("default")  # type: ignore[union-attr]
        assert standing.warn and not standing.over_cap
        assert standing.cap_share == pytest.approx(0.85)
        page = await _dashboard_page(server)
        assert "billing-banner" in page and "85 %" in page

        await usage.add(tokens("cap-2", 10_000))  # $1.05: over the cap
        scheduled = ScheduledCallRepository(server.runtime.database)
        call_id = await scheduled.add(
            ScheduledCall("default", LEAD_PHONE, server.clock.now - timedelta(minutes=1), "manual")
        )

        async def held() -> bool:
            call = await scheduled.get(call_id)
            return call is not None and call.last_error == "held: monthly spend cap reached"

        await _wait_for(held, "the dialer to hold the call at the cap")
        assert server.creates() == []
        # Inbound calls are still answered by the agent: a media stream, no notice.
        params = {
            "CallSid": "CA" + secrets.token_hex(16),
            "AccountSid": TWILIO_ACCOUNT,
            "From": "+14155550134",
            "To": "+15557654321",
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        url = server.settings.public_base_url + "/twilio/voice"
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = await http.post(
                url, data=params, headers={"X-Twilio-Signature": sign(url, params)}
            )
        assert answer.status_code == 200 and "<Connect>" in answer.text
        parameter = ET.fromstring(answer.text).find(".//Parameter")
        assert parameter is not None
        data = await server.runtime.tokens.redeem(parameter.get("value", ""))
        assert data is not None and data["tenant"] == "default" and "suspended" not in data
