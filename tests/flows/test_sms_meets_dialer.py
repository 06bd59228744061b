"""What a number says by text governs every call to it: STOP by SMS stops the lead's call,
START lets the next one through, and a callback booked by text is placed by the dialer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from loadtest.standins.openai_server import Reply, ScriptedToolCall, StandinOpenAI
from tests.app.twilio_side import sign
from tests.outbound.conftest import LEAD_PHONE, Outbound, lead_body
from tests.sms.conftest import reply_of, sms_params
from tests.sms.test_sms_tools import scripted


async def text(server: Outbound, body: str) -> httpx.Response:
    url = server.settings.public_base_url + "/twilio/sms"
    params = sms_params(body, from_=LEAD_PHONE)
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)})


async def test_stop_by_text_refuses_the_lead_call_and_start_allows_it(
    serve: Callable[..., Any],
) -> None:
    async with serve(lead_duplicate_window_s=0) as server:
        stopped = await text(server, "Stop.")
        assert stopped.status_code == 200 and reply_of(stopped) is None

        refused = await server.post_lead(lead_body())
        assert refused.status_code == 202
        assert refused.json()["call_status"] == "opted-out"
        assert refused.json()["call_sid"] is None
        assert server.creates() == []

        assert (await text(server, "START")).status_code == 200
        server.clock.advance(seconds=1)  # past the (zero) duplicate window
        accepted = await server.post_lead(lead_body(email="maria.2@example.com"))
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["call_sid"], accepted.json()
        (create,) = server.creates()
        assert create.form["To"] == LEAD_PHONE


async def test_a_callback_booked_by_text_is_placed_when_due(
    server: Outbound, standin: StandinOpenAI
) -> None:
    # The clock says Wednesday 10:00 in New York; the texter asks for 14:30 their time.
    standin.responder = scripted(
        Reply("", (ScriptedToolCall("schedule_callback", {"at": "2026-11-25T14:30"}),)),
        Reply("Great, we'll call you at 2:30 PM."),
    )
    reply = reply_of(await text(server, "Can you call me at 2:30 this afternoon?"))
    assert reply == "Great, we'll call you at 2:30 PM."
    (booked,) = await server.runtime.scheduled_calls.pending("default")
    local = booked.due_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, booked.reason) == (14, 30, "callback")

    await _settle(server)
    assert server.creates() == []  # not before its time

    server.clock.advance(hours=4, minutes=31)
    await _settle(server, until=lambda: bool(server.creates()))
    (create,) = server.creates()
    assert create.form["To"] == LEAD_PHONE
    # Twilio has the create before the dialer has stored its answer: wait for the row too.
    for _ in range(60):
        placed = await server.runtime.scheduled_calls.get(booked.id or 0)
        assert placed is not None
        if placed.status != "placing":
            break
        await asyncio.sleep(server.settings.dialer_poll_s)
    assert placed.status == "placed" and placed.call_sid


async def test_stop_by_text_cancels_a_booked_callback(
    server: Outbound, standin: StandinOpenAI
) -> None:
    standin.responder = scripted(
        Reply("", (ScriptedToolCall("schedule_callback", {"at": "2026-11-25T14:30"}),)),
        Reply("Booked."),
    )
    await text(server, "call me at 2:30")
    assert len(await server.runtime.scheduled_calls.pending("default")) == 1
    await text(server, "STOP")
    assert await server.runtime.scheduled_calls.pending("default") == []
    server.clock.advance(hours=6)
    await _settle(server)
    assert server.creates() == []


async def _settle(server: Outbound, until: Callable[[], bool] | None = None) -> None:
    """Let the dialer poll a few times (it polls every 50 ms in these tests)."""
    for _ in range(60):
        await asyncio.sleep(server.settings.dialer_poll_s)
        if until is not None and until():
            return
    assert until is None, "the dialer did not place the call"
