"""Cost and billing in the dashboard: the call page's cost and /api/calls/{sid}'s usage and
cost_usd (the post-call record), the tenants pages' month cost with its daily chart, the
billing form (checked fields, a customer taken by another tenant, suspend and restore),
and staff kept out of it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.dashboard.conftest import ACME_CALL, ACME_STAFF, ADMIN, AsUser, Site, csrf_of
from voice_agent.storage.billing import BillingRepository
from voice_agent.storage.metering import UsageRepository
from voice_agent.storage.records import UsageRecord


def _row(
    key: str, meter: str, quantity: float, model: str, sid: str | None = ACME_CALL
) -> UsageRecord:
    return UsageRecord(key, "acme", sid, meter, quantity, model, datetime.now(UTC))


async def test_call_cost_on_the_page_and_in_the_api(as_user: AsUser, site: Site) -> None:
    await BillingRepository(site.db).update("acme", markup=2.0)
    await UsageRepository(site.db).add(
        _row("u1", "stt_seconds", 30.0, "whisper-1"),
        _row("u2", "llm_input_tokens", 2000, "gpt-4o"),
        _row("u3", "llm_output_tokens", 100, "gpt-4o"),
        _row("u4", "tts_characters", 200, "tts-1"),
        _row("u5", "call_seconds", 60, "twilio:inbound"),
    )
    acme = await as_user(ACME_STAFF)
    record = (await acme.get(f"/api/calls/{ACME_CALL}")).json()
    assert record["usage"] == {
        "call_seconds": 60.0,
        "stt_seconds": 30.0,
        "llm_input_tokens": 2000,
        "llm_output_tokens": 100,
        "tts_characters": 200,
        "sms_segments": 0,
    }
    cost = record["cost_usd"]
    assert cost["stt"] == pytest.approx(0.003)  # half a minute at $0.006
    assert cost["llm"] == pytest.approx(0.005 + 0.001)
    assert cost["tts"] == pytest.approx(0.003)
    assert cost["telephony"] == pytest.approx(0.0085 + 0.004)  # a minute, call + stream
    assert cost["total"] == pytest.approx(sum(cost[k] for k in ("telephony", "stt", "llm", "tts")))
    assert record["price_usd"] == pytest.approx(2 * cost["total"])
    page = (await acme.get(f"/calls/{ACME_CALL}")).text
    assert 'id="call-cost"' in page and f"{cost['total']:.4f}" in page


async def test_tenant_month_chart_and_billing_form(as_user: AsUser, site: Site) -> None:
    await UsageRepository(site.db).add(_row("m1", "llm_output_tokens", 100_000, "gpt-4o"))
    admin = await as_user(ADMIN)
    listing = (await admin.get("/tenants")).text
    assert "$1.00" in listing  # 100k output tokens at $0.01 per 1k
    page = await admin.get("/tenants/acme")
    assert 'id="cost-chart"' in page.text and "<rect" in page.text
    assert 'id="month-cost">$1.0000' in page.text
    csrf = csrf_of(page.text)

    saved = await admin.post(
        "/tenants/acme/billing",
        data={
            "csrf_token": csrf,
            "stripe_customer": "cus_acme01",
            "markup": "1.25",
            "monthly_cap": "50",
            "grace_days": "5",
        },
    )
    assert saved.status_code == 303
    account = await BillingRepository(site.db).get("acme")
    assert (account.stripe_customer_id, account.markup, account.monthly_cap_usd) == (
        "cus_acme01",
        1.25,
        50.0,
    )
    assert account.grace_days == 5
    assert 'id="month-price">$1.2500' in (await admin.get("/tenants/acme")).text

    bad = await admin.post(
        "/tenants/acme/billing",
        data={"csrf_token": csrf, "stripe_customer": "acme", "markup": "-1"},
    )
    assert bad.status_code == 400 and "<b>stripe_customer</b>" in bad.text
    taken = await admin.post(
        "/tenants/globex/billing", data={"csrf_token": csrf, "stripe_customer": "cus_acme01"}
    )
    assert taken.status_code == 400 and "belongs to another tenant" in taken.text

    await admin.post("/tenants/acme/billing", data={"csrf_token": csrf, "action": "suspend"})
    assert (await BillingRepository(site.db).get("acme")).suspended
    acme = await as_user(ACME_STAFF)
    assert 'id="billing-banner"' in (await acme.get("/calls")).text
    await admin.post("/tenants/acme/billing", data={"csrf_token": csrf, "action": "restore"})
    assert not (await BillingRepository(site.db).get("acme")).suspended

    # Staff cannot reach the billing form.
    refused = await acme.post(
        "/tenants/acme/billing", data={"csrf_token": csrf_of((await acme.get("/calls")).text)}
    )
    assert refused.status_code == 404
