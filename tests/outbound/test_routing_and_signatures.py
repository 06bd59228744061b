"""Inbound calls routed by the called number; every new webhook refuses a request without a
valid Twilio signature."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import httpx
import pytest

from tests.app.twilio_side import (
    new_call_sid,
    open_stream,
    post_voice,
    sign,
    stream_from_twiml,
    until,
    voice_params,
)
from tests.outbound.conftest import Outbound
from voice_agent.storage.tenants import Tenant

ACME_NUMBER = "+13125550111"


async def _answered_by(server: Outbound, to_number: str) -> tuple[str, str]:
    """(tenant, agent) of the session an inbound call to ``to_number`` gets."""
    call_sid = new_call_sid()
    response = await post_voice(server.settings, voice_params(call_sid, To=to_number))
    assert response.status_code == 200, response.text
    stream = await open_stream(server.settings, call_sid)
    await stream.start(stream_from_twiml(response.text)[1]["token"])
    await until(lambda: stream.marks_echoed > 0, what="the greeting")
    await stream.stop()
    await until(stream.closed.is_set)
    assert await server.runtime.writes.flush(5.0)
    stored = await server.runtime.calls.get_call(call_sid)
    assert stored is not None
    return stored.tenant, stored.agent


async def test_with_no_numbers_every_call_goes_to_the_default_tenant(server: Outbound) -> None:
    assert await _answered_by(server, "+15557654321") == ("default", "receptionist")


async def test_the_called_number_picks_tenant_and_agent(
    server: Outbound, caplog: pytest.LogCaptureFixture
) -> None:
    tenants = server.runtime.tenants
    await tenants.save(Tenant("acme", "Acme", "receptionist", "lead_qualifier"))
    await tenants.add_number("acme", ACME_NUMBER)
    await tenants.add_number("default", "+13125550112", agent="lead_qualifier")

    assert await _answered_by(server, ACME_NUMBER) == ("acme", "receptionist")
    assert await _answered_by(server, "+13125550112") == ("default", "lead_qualifier")

    call_sid = new_call_sid()
    with caplog.at_level(logging.WARNING, logger="webhooks.twilio_voice"):
        response = await post_voice(server.settings, voice_params(call_sid, To="+13125550199"))
    assert response.status_code == 200
    root = ET.fromstring(response.text)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert "not in service" in (root.find("Say").text or "")  # type: ignore[union-attr]
    assert "Stream" not in response.text
    assert "no tenant owns this number" in caplog.text and call_sid in caplog.text


@pytest.mark.parametrize(
    "path", ["/twilio/status", "/twilio/amd", "/twilio/whisper", "/twilio/transfer"]
)
async def test_webhooks_refuse_requests_not_from_twilio(server: Outbound, path: str) -> None:
    url = server.settings.public_base_url + path
    params = voice_params(
        new_call_sid(),
        CallStatus="completed",
        AnsweredBy="machine_end_beep",
        DialCallStatus="no-answer",
    )
    forged = sign(url, params, token="not-the-auth-token")
    elsewhere = sign("https://attacker.example.com" + path, params)
    async with httpx.AsyncClient() as http:
        missing = await http.post(url, data=params)
        wrong = await http.post(url, data=params, headers={"X-Twilio-Signature": forged})
        moved = await http.post(url, data=params, headers={"X-Twilio-Signature": elsewhere})
        good = await http.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)})
    assert [missing.status_code, wrong.status_code, moved.status_code] == [403, 403, 403]
    assert good.status_code in (200, 204)


async def test_a_signed_url_cannot_be_pointed_at_another_scheduled_call(server: Outbound) -> None:
    """The scheduled id is in the signed URL; a signature for one id does not pass for another."""
    url = server.settings.public_base_url + "/twilio/status?scheduled=1"
    params = voice_params(new_call_sid(), CallStatus="no-answer")
    signature = sign(url, params)
    async with httpx.AsyncClient() as http:
        swapped = await http.post(
            server.settings.public_base_url + "/twilio/status?scheduled=2",
            data=params,
            headers={"X-Twilio-Signature": signature},
        )
    assert swapped.status_code == 403


async def test_status_callbacks_need_a_known_status(server: Outbound) -> None:
    url = server.settings.public_base_url + "/twilio/status"
    params = voice_params(new_call_sid(), CallStatus="exploded")
    async with httpx.AsyncClient() as http:
        response = await http.post(
            url, data=params, headers={"X-Twilio-Signature": sign(url, params)}
        )
    assert response.status_code == 400


async def test_inbound_status_callbacks_land_on_the_tenant_of_the_number(server: Outbound) -> None:
    url = server.settings.public_base_url + "/twilio/status"
    embedded = voice_params(new_call_sid(), CallStatus="completed", CallDuration="12")
    async with httpx.AsyncClient() as http:
        await http.post(url, data=embedded, headers={"X-Twilio-Signature": sign(url, embedded)})
        tenants = server.runtime.tenants
        await tenants.save(Tenant("acme", "Acme", "receptionist", "lead_qualifier"))
        await tenants.add_number("acme", ACME_NUMBER)
        routed = voice_params(new_call_sid(), To=ACME_NUMBER, CallStatus="busy")
        await http.post(url, data=routed, headers={"X-Twilio-Signature": sign(url, routed)})

    first = await server.runtime.calls.call_facts(embedded["CallSid"], tenant="default")
    assert first is not None and first["duration_s"] == 12 and first["direction"] == "inbound"
    second = await server.runtime.calls.call_facts(routed["CallSid"], tenant="acme")
    assert second is not None and second["status"] == "busy"
