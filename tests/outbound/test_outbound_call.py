"""The lead's call end to end: placed, answered over the real media websocket and greeted by
name with audio made while it rang; a machine gets the voicemail; status callbacks land on
the call; unanswered calls retry on the tenant's schedule."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from loadtest.standins.openai_server import StandinOpenAI
from loadtest.standins.twilio_rest import RecordedRequest
from tests.app.twilio_side import (
    MediaStream,
    open_stream,
    stream_from_twiml,
    until,
)
from tests.outbound.conftest import LEAD_PHONE, Outbound, lead_body
from voice_agent.storage.scheduled_calls import ScheduledCallRepository
from voice_agent.storage.tenants import Tenant

GREETING = (
    "Hi Maria, this is Joe from Acme Home Services, calling about the form you filled out."
    " Is now a good time?"
)


async def _greeting_heard(server: Outbound) -> None:
    registry = server.runtime.metrics.registry
    await until(
        lambda: registry.get_sample_value("voice_agent_turns_total", {"role": "agent"}) == 1,
        what="the greeting, played and heard whole",
    )


async def _place(server: Outbound) -> tuple[int, str]:
    response = await server.post_lead(lead_body())
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["call_sid"], body
    return body["lead_id"], body["call_sid"]


async def _answer(server: Outbound, call_sid: str) -> MediaStream:
    """The callee picks up: Twilio fetches the TwiML and opens the media stream it names."""
    _, document = await server.twilio.answer(call_sid)
    stream = await open_stream(server.settings, call_sid)
    await stream.start(stream_from_twiml(document)[1]["token"])
    return stream


async def test_answered_lead_is_greeted_by_name(server: Outbound, standin: StandinOpenAI) -> None:
    lead_id, call_sid = await _place(server)
    # Synthesis starts when the call is placed: while the phone rings.
    await until(
        lambda: any(r.body["input"] == GREETING for r in standin.recorded("speech")),
        what="the personal greeting synthesised before the answer",
    )
    spoken_before_answer = len(standin.recorded("speech"))

    status, document = await server.twilio.answer(call_sid)
    assert status == 200, document
    url, parameters = stream_from_twiml(document)
    assert url.endswith("/twilio/media") and set(parameters) == {"token"}
    stream = await open_stream(server.settings, call_sid)
    await stream.start(parameters["token"])
    await _greeting_heard(server)
    await stream.stop()
    await until(stream.closed.is_set, what="the call to end")

    # Nothing was synthesised after the answer: the greeting was ready.
    assert len(standin.recorded("speech")) == spoken_before_answer
    assert await server.runtime.writes.flush(5.0)
    stored = await server.runtime.calls.get_call(call_sid)
    assert stored is not None
    assert stored.direction == "outbound" and stored.agent == "lead_qualifier"
    assert stored.to_number == LEAD_PHONE and stored.tenant == "default"
    assert stored.turns[0].role == "agent" and stored.turns[0].text == GREETING
    # The lead's fields reached the model's prompt too.
    facts = await server.runtime.calls.call_facts(call_sid)
    assert facts is not None and facts["lead_id"] == lead_id


async def test_the_model_sees_the_lead_in_its_prompt(
    server: Outbound, standin: StandinOpenAI
) -> None:
    from loadtest.fixtures import load_script
    from tests.app.twilio_side import SILENCE_FRAME

    _, call_sid = await _place(server)
    stream = await _answer(server, call_sid)
    await until(lambda: stream.marks_echoed > 3, what="the greeting")
    await stream.send_audio(load_script()[1].audio + SILENCE_FRAME * 40)
    await until(lambda: bool(standin.recorded("chat")), what="the model's turn")
    await stream.stop()
    await until(stream.closed.is_set)

    system = standin.recorded("chat")[0].body["messages"][0]["content"]
    assert "calling to Maria Lopez" in system or "call to Maria Lopez" in system


async def test_a_machine_gets_the_voicemail_after_the_beep(server: Outbound) -> None:
    lead_id, call_sid = await _place(server)
    await server.twilio.answer(call_sid)

    assert await server.twilio.send_amd(call_sid, "machine_end_beep") == 204

    update = server.twilio.calls[call_sid].history[-1]
    assert update["Twiml"].startswith(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-US">'
    )
    assert "Hi Maria, this is Joe from Acme Home Services, following up" in update["Twiml"]
    assert update["Twiml"].endswith("<Hangup /></Response>")
    facts = await server.runtime.calls.call_facts(call_sid)
    assert facts is not None
    assert facts["answered_by"] == "machine_end_beep" and facts["outcome"] == "voicemail"
    assert await server.twilio.send_status(call_sid, "completed", CallDuration="31") == 204
    lead = await server.leads.get(lead_id)
    assert lead is not None and lead.status == "voicemail"
    # A voicemail left is an attempt made: no retry.
    assert await ScheduledCallRepository(server.runtime.database).pending() == []


async def test_a_person_is_left_to_the_agent(server: Outbound) -> None:
    lead_id, call_sid = await _place(server)
    assert await server.twilio.send_amd(call_sid, "human") == 204
    assert server.twilio.calls[call_sid].history == []
    assert await server.twilio.send_status(call_sid, "completed", CallDuration="95") == 204
    lead = await server.leads.get(lead_id)
    assert lead is not None and lead.status == "contacted"


async def test_status_callbacks_store_progress_duration_and_price(server: Outbound) -> None:
    _, call_sid = await _place(server)
    for status in ("initiated", "ringing", "in-progress"):
        assert await server.twilio.send_status(call_sid, status) == 204
        facts = await server.runtime.calls.call_facts(call_sid)
        assert facts is not None and facts["status"] == status
    await server.twilio.send_status(
        call_sid, "completed", CallDuration="42", Price="-0.01300", PriceUnit="USD"
    )
    # Callbacks may arrive out of order: a late "ringing" does not reopen the call.
    await server.twilio.send_status(call_sid, "ringing")

    facts = await server.runtime.calls.call_facts(call_sid)
    assert facts is not None
    assert facts["status"] == "completed" and facts["duration_s"] == 42
    assert facts["price"] == 0.013 and facts["price_unit"] == "USD"
    assert facts["ended_at"] == server.clock.now


async def test_no_answer_retries_on_the_tenants_schedule(server: Outbound) -> None:
    lead_id, first_sid = await _place(server)
    scheduled = ScheduledCallRepository(server.runtime.database)

    assert await server.twilio.send_status(first_sid, "no-answer") == 204
    (retry,) = await scheduled.pending()
    assert (retry.reason, retry.attempt, retry.lead_id) == ("retry", 1, lead_id)
    assert retry.due_at == datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # 30 minutes later
    assert retry.context is not None and retry.context["first_name"] == "Maria"
    lead = await server.leads.get(lead_id)
    assert lead is not None and lead.status == "no-answer"
    # Twilio repeating the callback does not queue a second retry.
    await server.twilio.send_status(first_sid, "no-answer")
    assert len(await scheduled.pending()) == 1

    server.clock.advance(minutes=29)
    await asyncio.sleep(0.3)  # several polls: not due yet
    assert len(server.creates()) == 1
    server.clock.advance(minutes=1)
    await until(lambda: len(server.creates()) == 2, what="the first retry placed")
    second_sid = server.creates()[-1]
    assert second_sid.form["To"] == LEAD_PHONE
    sid = next(s for s in server.twilio.calls if s != first_sid)

    # Busy on the second attempt, near closing time: the retry waits for the morning.
    server.clock.now = datetime(2026, 11, 26, 0, 50, tzinfo=UTC)  # 19:50 in New York
    await server.twilio.send_status(sid, "busy")
    (retry2,) = await scheduled.pending()
    assert retry2.attempt == 2
    assert retry2.due_at == datetime(2026, 11, 26, 14, 0, tzinfo=UTC)  # 09:00 New York

    server.clock.now = retry2.due_at
    await until(lambda: len(server.creates()) == 3, what="the second retry placed")
    third_sid = next(s for s in server.twilio.calls if s not in (first_sid, sid))
    await server.twilio.send_status(third_sid, "no-answer")
    # Two retries used (the tenant's default): no more.
    assert await scheduled.pending() == []
    assert [c.attempt for c in await scheduled.for_lead(lead_id)] == [0, 1, 2]


async def test_no_retry_to_a_number_that_opted_out_meanwhile(server: Outbound) -> None:
    _, call_sid = await _place(server)
    await server.runtime.opt_outs.record("default", LEAD_PHONE, opted_out=True, keyword="STOP")
    await server.twilio.send_status(call_sid, "no-answer")
    assert await ScheduledCallRepository(server.runtime.database).pending() == []


async def test_retries_follow_the_tenant_settings(server: Outbound) -> None:
    tenant = await server.runtime.tenants.get("default")
    tenant.retry_attempts, tenant.retry_interval_min = 1, 90
    await server.runtime.tenants.save(tenant)
    _, call_sid = await _place(server)
    await server.twilio.send_status(call_sid, "busy")
    (retry,) = await ScheduledCallRepository(server.runtime.database).pending()
    assert retry.due_at == datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
    server.clock.advance(minutes=90)
    await until(lambda: len(server.creates()) == 2, what="the retry placed")
    sid = list(server.twilio.calls)[-1]
    await server.twilio.send_status(sid, "no-answer")
    assert await ScheduledCallRepository(server.runtime.database).pending() == []


async def test_the_tenants_own_outbound_agent_and_zone(server: Outbound) -> None:
    await server.runtime.tenants.save(
        Tenant("west", "West", "receptionist", "lead_qualifier", timezone="America/Los_Angeles")
    )
    response = await server.post_lead(lead_body(tenant="west"))
    call_sid = response.json()["call_sid"]
    stream = await _answer(server, call_sid)
    await _greeting_heard(server)
    await stream.stop()
    await until(stream.closed.is_set)
    assert await server.runtime.writes.flush(5.0)
    stored = await server.runtime.calls.get_call(call_sid, tenant="west")
    assert stored is not None and stored.turns[0].text == GREETING
    assert await server.runtime.calls.get_call(call_sid, tenant="default") is None


async def test_a_machine_without_a_beep_or_a_fax_is_hung_up_on(server: Outbound) -> None:
    lead_id, call_sid = await _place(server)
    assert await server.twilio.send_amd(call_sid, "fax") == 204
    assert server.twilio.calls[call_sid].history[-1] == {"Status": "completed"}
    facts = await server.runtime.calls.call_facts(call_sid)
    assert facts is not None and facts["outcome"] == "machine"
    lead = await server.leads.get(lead_id)
    assert lead is not None and lead.status == "calling"


async def test_twilio_refusing_the_voicemail_update_is_logged_not_raised(
    server: Outbound, caplog: pytest.LogCaptureFixture
) -> None:
    _, call_sid = await _place(server)
    server.twilio.inject_error(500, 20500, "Internal error")
    with caplog.at_level(logging.ERROR, logger="voice_agent.outbound.service"):
        assert await server.twilio.send_amd(call_sid, "machine_end_silence") == 204
    assert "cannot act on AMD verdict machine_end_silence" in caplog.text
    facts = await server.runtime.calls.call_facts(call_sid)
    assert facts is not None
    assert facts["answered_by"] == "machine_end_silence" and facts["outcome"] is None


async def test_a_greeting_that_failed_while_ringing_is_made_at_the_answer(
    server: Outbound, standin: StandinOpenAI
) -> None:
    standin.fail("speech", status=500, times=1)
    _, call_sid = await _place(server)
    await until(lambda: standin.served["speech"] >= 3, what="the failed synthesis while ringing")
    stream = await _answer(server, call_sid)
    await _greeting_heard(server)
    await stream.stop()
    await until(stream.closed.is_set)
    assert await server.runtime.writes.flush(5.0)
    stored = await server.runtime.calls.get_call(call_sid)
    assert stored is not None and stored.turns[0].text == GREETING


async def test_form_fields_cannot_rewrite_the_agents_own_variables(
    server: Outbound, standin: StandinOpenAI
) -> None:
    """A public form's extra field named like an agent variable is ignored; new ones pass."""
    body = lead_body(business_name="Evil Corp", project="a new deck")
    call_sid = (await server.post_lead(body)).json()["call_sid"]
    stream = await _answer(server, call_sid)
    await _greeting_heard(server)
    await stream.stop()
    await until(stream.closed.is_set)
    assert await server.runtime.writes.flush(5.0)
    stored = await server.runtime.calls.get_call(call_sid)
    assert stored is not None and stored.turns[0].text == GREETING
    assert "Evil Corp" not in " ".join(r.body["input"] for r in standin.recorded("speech"))


async def test_the_price_is_fetched_once_twilio_has_it(serve: Any) -> None:
    async with serve(price_fetch_delay_s=0.05) as server:
        _, call_sid = await _place(server)

        def price_after_first_fetch(request: RecordedRequest) -> None:
            # The first fetch is answered unpriced; Twilio prices the call right after.
            if request.method == "GET" and request.call_sid == call_sid:
                server.twilio.calls[call_sid].price = "-0.02600"

        server.twilio.on_request(price_after_first_fetch)
        await server.twilio.send_status(call_sid, "completed", CallDuration="61")

        async def priced() -> bool:
            facts = await server.runtime.calls.call_facts(call_sid)
            return facts is not None and facts["price"] is not None

        for _ in range(100):
            if await priced():
                break
            await asyncio.sleep(0.02)
        facts = await server.runtime.calls.call_facts(call_sid)
        fetches = [r for r in server.twilio.requests_for(call_sid) if r.method == "GET"]
    assert facts is not None and facts["price"] == 0.026 and facts["price_unit"] == "USD"
    assert facts["duration_s"] == 61 and len(fetches) == 2


async def test_on_a_live_stream_the_voicemail_is_in_the_agents_own_voice(
    server: Outbound, standin: StandinOpenAI
) -> None:
    from tests.calls.cascade_support import line_bytes

    lead_id, call_sid = await _place(server)
    stream = await _answer(server, call_sid)
    await _greeting_heard(server)
    greeting_bytes = len(stream.agent_audio)

    assert await server.twilio.send_amd(call_sid, "machine_end_beep") == 204
    await until(stream.closed.is_set, what="the server to hang up after the message")

    # Made while it rang, by our TTS; not Twilio's <Say>: no REST update of the call.
    voicemail = next(
        r.body["input"] for r in standin.recorded("speech") if "following up" in r.body["input"]
    )
    assert voicemail.startswith("Hi Maria, this is Joe from Acme Home Services, following up")
    assert server.twilio.calls[call_sid].history == []
    assert stream.clears >= 1
    message = len(stream.agent_audio) - greeting_bytes
    assert abs(message - line_bytes(voicemail)) <= 40
    assert await server.runtime.writes.flush(5.0)
    facts = await server.runtime.calls.call_facts(call_sid)
    assert facts is not None and facts["outcome"] == "voicemail"
    lead = await server.leads.get(lead_id)
    assert lead is not None and lead.status == "voicemail"
