"""Live control across workers: two real server processes on different ports share
PostgreSQL and Redis; a call streams through A while staff (signed in on B) end it, or
Twilio's status callback reaches B. The command reaches A's session, A acknowledges, and
the agent says goodbye in its own voice. Without Redis the same routes act in-process."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from loadtest.standins.openai_server import StandinOpenAI
from loadtest.standins.twilio_rest import TwilioRestStandin
from tests.app.twilio_side import ACCOUNT_SID, new_call_sid, voice_params
from tests.conftest import TWILIO_TOKEN
from tests.deploy.processes import ROOT, PhoneLine, ServerProcess, post_form, wait_for
from tests.deploy.test_drain import start_call, stored_call
from voice_agent.conversation.session import ENDING_NOW
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.scheduled_calls import ScheduledCall, ScheduledCallRepository

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse battery staple"
ADD_USER = (sys.executable, "-m", "voice_agent.cli", "user", "add")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_admin(server: ServerProcess, email: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **server.env}
    subprocess.run(
        [*ADD_USER, email, "--role", "admin", "--password-stdin"],
        input=PASSWORD.encode(),
        env=env,
        check=True,
        capture_output=True,
    )


async def signed_in(server: ServerProcess, email: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=server.base_url, timeout=10.0)
    page = await client.get("/login")
    form = {"email": email, "password": PASSWORD, "next": "/calls"}
    form["csrf_token"] = _CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    response = await client.post("/login", data=form)
    assert response.status_code == 303, response.text
    calls = await client.get("/calls")
    return client, _CSRF.search(calls.text).group(1)  # type: ignore[union-attr]


async def greeted_call(server: ServerProcess) -> PhoneLine:
    line = await start_call(server, server.env["PUBLIC_BASE_URL"])
    await wait_for(lambda: len(line.agent_audio) > 4000, 10, "the greeting")
    await wait_for(lambda: line.agent_quiet, 15, "the greeting's end")
    return line


async def test_staff_on_b_end_the_call_streaming_on_a(
    servers: Callable[..., ServerProcess],
) -> None:
    a = servers(redis_url=REDIS)
    b = servers(redis_url=REDIS, public_base_url=a.env["PUBLIC_BASE_URL"])
    await asyncio.gather(a.ready(), b.ready())
    add_admin(a, "ops@example.com")
    line = await greeted_call(a)
    client, csrf = await signed_in(b, "ops@example.com")
    try:
        response = await client.post(
            f"/api/calls/{line.call_sid}/hangup", headers={"x-csrf-token": csrf}
        )
        assert response.status_code == 200, response.text
        ack = response.json()
        assert ack["ok"] is True
        assert ack["worker"].endswith(f":{a.process.pid}")  # type: ignore[union-attr]
        # The goodbye plays in the agent's voice on A's stream, then A hangs up.
        heard = len(line.agent_audio)
        await asyncio.wait_for(line.closed.wait(), 20)
        assert len(line.agent_audio) - heard > 8000  # over a second of goodbye
        await line.aclose()
        await wait_for_end(a, line.call_sid)
        call = await stored_call(a.env["DATABASE_URL"], line.call_sid)
        assert call.end_reason == "ended-by-staff"
        assert [t.text for t in call.turns if t.role == "agent"][-1].startswith(ENDING_NOW)
        # A call no worker holds any more: nobody acknowledges, and B says so.
        again = await client.post(
            f"/api/calls/{line.call_sid}/hangup", headers={"x-csrf-token": csrf}
        )
        assert again.status_code == 409
        # Without the CSRF token: refused before anything is sent.
        assert (await client.post(f"/api/calls/{line.call_sid}/hangup")).status_code == 403
    finally:
        await client.aclose()


async def test_a_status_callback_on_b_closes_the_stream_on_a(
    servers: Callable[..., ServerProcess],
) -> None:
    a = servers(redis_url=REDIS)
    b = servers(redis_url=REDIS, public_base_url=a.env["PUBLIC_BASE_URL"])
    await asyncio.gather(a.ready(), b.ready())
    line = await greeted_call(a)
    params = {
        "CallSid": line.call_sid,
        "AccountSid": ACCOUNT_SID,
        "CallStatus": "completed",
        "CallDuration": "7",
        "From": "+15551230000",
        "To": "+15557654321",
    }
    response = await post_form(b.base_url, b.env["PUBLIC_BASE_URL"], "/twilio/status", params)
    assert response.status_code == 204
    await asyncio.wait_for(line.closed.wait(), 10)
    await line.aclose()


async def test_without_redis_the_same_route_acts_in_process(
    servers: Callable[..., ServerProcess],
) -> None:
    server = servers()
    await server.ready()
    add_admin(server, "solo@example.com")
    line = await greeted_call(server)
    client, csrf = await signed_in(server, "solo@example.com")
    try:
        response = await client.post(
            f"/api/calls/{line.call_sid}/hangup", headers={"x-csrf-token": csrf}
        )
        assert response.status_code == 200 and response.json()["ok"] is True
        await asyncio.wait_for(line.closed.wait(), 20)
        await line.aclose()
    finally:
        await client.aclose()


async def wait_for_end(server: ServerProcess, call_sid: str) -> None:
    for _ in range(100):
        call = await stored_call(server.env["DATABASE_URL"], call_sid)
        if call is not None and call.end_reason:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_sid} not stored as ended")


async def test_an_amd_verdict_on_b_leaves_the_voicemail_in_the_agents_voice_on_a(
    servers: Callable[..., ServerProcess], standin: StandinOpenAI
) -> None:
    a = servers(redis_url=REDIS)
    public = a.env["PUBLIC_BASE_URL"]
    b = servers(redis_url=REDIS, public_base_url=public)
    await asyncio.gather(a.ready(), b.ready())
    call_sid, callee = new_call_sid(), "+15557650000"
    scheduled = ScheduledCall(
        tenant="default",
        to_number=callee,
        due_at=datetime.now(UTC) + timedelta(days=1),  # never the dialer's: placed already
        reason="manual",
        context={"first_name": "Maria"},
        status="placed",
        call_sid=call_sid,
    )
    database = await Database.connect(a.env["DATABASE_URL"])
    try:
        scheduled_id = await ScheduledCallRepository(database).add(scheduled)
    finally:
        await database.dispose()
    # Answered: Twilio fetches the TwiML on A and streams there.
    params = voice_params(call_sid, Direction="outbound-api", From="+15557654321", To=callee)
    path = f"/twilio/voice?scheduled={scheduled_id}"
    response = await post_form(a.base_url, public, path, params)
    assert response.status_code == 200, response.text
    stream = ET.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None
    token = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}["token"]
    ws_url = a.base_url.replace("http://", "ws://") + "/twilio/media"
    line = await PhoneLine.open(ws_url, public + "/twilio/media", call_sid, token)
    await wait_for(lambda: len(line.agent_audio) > 4000, 10, "the greeting")
    heard = len(line.agent_audio)
    # The AMD verdict lands on B, which holds no stream and has no Twilio REST credentials:
    # only the live call control can leave the message.
    amd = {"CallSid": call_sid, "AccountSid": ACCOUNT_SID, "AnsweredBy": "machine_end_beep"}
    verdict = await post_form(b.base_url, public, f"/twilio/amd?scheduled={scheduled_id}", amd)
    assert verdict.status_code == 204, verdict.text
    await asyncio.wait_for(line.closed.wait(), 30)  # A hangs up once the message has played
    await line.aclose()
    spoken = [r.body["input"] for r in standin.recorded("speech")]
    message = next(text for text in spoken if "Maria" in text and "following up" in text)
    assert len(line.agent_audio) - heard >= 8000 * len(message.split()) * 0.2  # it played
    facts = None
    for _ in range(50):
        database = await Database.connect(a.env["DATABASE_URL"])
        try:
            facts = await CallRepository(database).call_facts(call_sid)
        finally:
            await database.dispose()
        if facts is not None and facts["outcome"]:
            break
        await asyncio.sleep(0.1)
    assert facts is not None and facts["outcome"] == "voicemail", facts


async def test_a_transfer_posted_to_b_is_made_by_a_for_its_call(
    servers: Callable[..., ServerProcess],
) -> None:
    async with TwilioRestStandin(ACCOUNT_SID, TWILIO_TOKEN) as twilio:
        rest = {"twilio_account_sid": ACCOUNT_SID, "twilio_api_base_url": twilio.base_url}
        a = servers(redis_url=REDIS, **rest)
        b = servers(redis_url=REDIS, public_base_url=a.env["PUBLIC_BASE_URL"], **rest)
        await asyncio.gather(a.ready(), b.ready())
        add_admin(b, "ops@example.com")
        line = await greeted_call(a)
        twilio.register_call(line.call_sid)
        client, csrf = await signed_in(b, "ops@example.com")
        try:
            response = await client.post(
                f"/api/calls/{line.call_sid}/transfer",
                data={"number": "+15550100200"},
                headers={"x-csrf-token": csrf},
            )
            assert response.status_code == 200, response.text
            assert response.json()["worker"].endswith(f":{a.process.pid}")  # type: ignore[union-attr]
            # A, holding the call, asks Twilio to dial the number (warm: with a whisper).
            await wait_for(
                lambda: any("Twiml" in r.form for r in twilio.requests_for(line.call_sid)),
                10,
                "the transfer's TwiML update",
            )
            update = next(r for r in twilio.requests_for(line.call_sid) if "Twiml" in r.form)
            assert "+15550100200" in update.form["Twiml"] and "<Dial" in update.form["Twiml"]
            # Without a number: refused on B before anything is sent.
            empty = await client.post(
                f"/api/calls/{line.call_sid}/transfer", headers={"x-csrf-token": csrf}
            )
            assert empty.status_code == 422
        finally:
            await client.aclose()
            await line.aclose()
