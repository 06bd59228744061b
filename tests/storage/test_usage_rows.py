"""Usage rows add up: random calls and texts, written the way the server writes them
(batches through the call repository, some written twice as a retried batch would be;
Twilio's call seconds; SMS segments in and out), and every total — per call, per tenant
and month, per day, in money — is exactly the sum of the rows. SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voice_agent.billing.costs import Costs
from voice_agent.billing.prices import CALL_SECONDS, PriceTable
from voice_agent.settings import Settings
from voice_agent.storage.billing import BillingRepository
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.metering import MILLI, UsageRepository, to_milli
from voice_agent.storage.records import CallStarted, UsageRecord
from voice_agent.storage.sms import SmsRepository

NOW = datetime.now(UTC)

# One metered event on a call: STT audio in whole samples at 8 kHz, tokens, characters.
events = st.one_of(
    st.tuples(st.just("stt_seconds"), st.integers(1, 160_000).map(lambda n: n / 8000)),
    st.tuples(st.just("llm_input_tokens"), st.integers(1, 8000)),
    st.tuples(st.just("llm_output_tokens"), st.integers(1, 800)),
    st.tuples(st.just("tts_characters"), st.integers(1, 400)),
)
calls = st.lists(
    st.tuples(
        st.lists(events, max_size=25),
        st.integers(0, 3600),  # Twilio's CallDuration
        st.sampled_from(["inbound", "outbound"]),
        st.sampled_from(["gpt-4o", "offline:piper"]),
    ),
    max_size=6,
)
texts = st.lists(
    st.tuples(st.sampled_from(["inbound", "outbound"]), st.integers(1, 10)), max_size=8
)


def _priced() -> PriceTable:
    return PriceTable.from_settings(Settings())


@pytest.mark.filterwarnings("ignore::hypothesis.errors.NonInteractiveExampleWarning")
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=calls, texts=texts, batch=st.integers(1, 7), retry_every=st.integers(1, 4))
async def test_totals_are_the_sum_of_the_rows(
    db: Database,
    calls: list[tuple[list[tuple[str, float]], int, str, str]],
    texts: list[tuple[str, int]],
    batch: int,
    retry_every: int,
) -> None:
    tenant = f"t{secrets.token_hex(4)}"  # examples share the database
    repo, usage, sms = CallRepository(db), UsageRepository(db), SmsRepository(db)
    costs = Costs(usage, BillingRepository(db), _priced())
    expected_month: Counter[str] = Counter()
    expected_calls: dict[str, Counter[str]] = {}

    for n, (call_events, seconds, direction, model) in enumerate(calls):
        sid = f"CA{tenant}{n}"
        records: list[CallStarted | UsageRecord] = [
            CallStarted(sid, tenant, direction, "+15550001", "+15550002", "a", "cascade", NOW)
        ]
        expected = expected_calls[sid] = Counter()
        for i, (meter, quantity) in enumerate(call_events):
            records.append(UsageRecord(f"{sid}:{i}", tenant, sid, meter, quantity, model, NOW))
            expected[meter] += to_milli(quantity)
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            await repo.write(chunk)
            if (start // batch) % retry_every == 0:
                await repo.write(chunk)  # a batch retried after a lost commit reply
        if seconds:
            row = UsageRecord(
                f"{sid}:call_seconds",
                tenant,
                sid,
                CALL_SECONDS,
                seconds,
                f"twilio:{direction}",
                NOW,
            )
            await usage.add(row)
            await usage.add(row)  # Twilio retries its status callback
            expected[CALL_SECONDS] += to_milli(seconds)
        expected_month.update(expected)

    thread = await sms.open_thread(tenant, "+14155550134", "+15550100", "receptionist")
    for direction, segments in texts:
        message = await sms.add_message(
            thread.id, direction=direction, body="x" * segments, status="queued", segments=segments
        )
        if direction == "outbound":
            await sms.sent(message.id, status="sent", message_sid=f"SM{secrets.token_hex(8)}")
            await sms.meter_outbound(message)  # counted once whichever way it went out
        expected_month[f"sms_segments_{'in' if direction == 'inbound' else 'out'}"] += (
            segments * MILLI
        )
    failed = await sms.add_message(
        thread.id, direction="outbound", body="never sent", status="queued", segments=3
    )
    await sms.sent(failed.id, status="failed")  # Twilio never took it: not billed

    for sid, expected in expected_calls.items():
        rows = await usage.rows_for_call(sid)
        got: Counter[str] = Counter()
        for r in rows:
            got[r.meter] += to_milli(r.quantity)
        assert +got == +expected
        record = await costs.call_record(sid, tenant)
        assert record["usage"]["stt_seconds"] == pytest.approx(expected["stt_seconds"] / MILLI)
        assert record["usage"]["llm_input_tokens"] == expected["llm_input_tokens"] // MILLI
        assert record["usage"]["call_seconds"] == expected[CALL_SECONDS] / MILLI

    totals = await usage.totals(tenant, NOW.replace(day=1, hour=0, minute=0, second=0))
    month: Counter[str] = Counter()
    for (meter, _model), quantity in totals.items():
        month[meter] += to_milli(quantity)
    assert +month == +expected_month

    # Money: the month's cost is the calls' costs plus the texts', and the days add up to it.
    report = await costs.month(tenant, NOW.date(), daily=True)
    call_total = 0.0
    for sid in expected_calls:
        call_total += (await costs.call_record(sid, tenant))["cost_usd"]["total"]
    sms_segments = sum(s for _, s in texts)
    sms_cost = sms_segments * Settings().price_sms_segment_usd
    assert report.cost.total == pytest.approx(call_total + sms_cost, abs=1e-5)
    assert sum(d.cost.total for d in report.days) == pytest.approx(report.cost.total, abs=1e-9)
    assert report.usage["sms_segments"] == sms_segments
