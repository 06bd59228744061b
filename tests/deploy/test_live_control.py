"""Live control across workers: two real server processes on different ports share
PostgreSQL and Redis; a call streams through A while staff (signed in on B) end it, or
Twilio's status callback reaches B. The command reaches A's session, A acknowledges, and
the agent says goodbye in its own voice. Without Redis the same routes act in-process."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest

from tests.app.twilio_side import ACCOUNT_SID
from tests.deploy.processes import ROOT, PhoneLine, ServerProcess, post_form, wait_for
from tests.deploy.test_drain import start_call, stored_call
from voice_agent.conversation.session import ENDING_NOW

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
