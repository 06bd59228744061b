"""The portal's testers (#13) without a browser: the text chat answers on the dialogue
engine; the voice tester's websocket is the Twilio Media Streams protocol, runs the draft
in the same call session, is stored as a test call, and refuses a socket with no session
or from another origin."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.app.twilio_side import MediaStream, until
from tests.dashboard.conftest import ACME_STAFF, AsUser, Site, csrf_of, login
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings
from voice_agent.storage.tables import calls

AGENT = "/portal/acme/agents/receptionist"


async def test_text_chat(site: Site, as_user: AsUser) -> None:
    staff = await as_user(ACME_STAFF)
    token = csrf_of((await staff.get(AGENT)).text)
    answer = await staff.post(
        AGENT + "/chat",
        json={"history": [{"role": "user", "text": "Hi there, what are your hours?"}]},
        headers={"x-csrf-token": token},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["reply"]
    assert (await staff.post(AGENT + "/chat", json={"history": []})).status_code == 403
    bad = await staff.post(AGENT + "/chat", content=b"nope", headers={"x-csrf-token": token})
    assert bad.status_code == 422
    other = await staff.post(
        "/portal/globex/agents/receptionist/chat",
        json={"history": [{"role": "user", "text": "hi"}]},
        headers={"x-csrf-token": token},
    )
    assert other.status_code == 404


async def test_voice_tester_socket_runs_the_draft_as_a_test_call(
    served: tuple[Settings, Runtime],
) -> None:
    settings, runtime = served
    base = settings.public_base_url
    ws_url = base.replace("http://", "ws://") + "/portal/talk"
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await login(client, ACME_STAFF)).status_code == 303
        page = await client.get(AGENT)
        token = csrf_of(page.text)
        await client.post(
            AGENT + "/draft",
            data={"csrf_token": token, "greeting": "Draft hello from {business_name}."},
        )
        made = await client.post(AGENT + "/talk", headers={"x-csrf-token": token})
        assert made.status_code == 200
        ticket = made.json()
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())

    # No session, or another origin: the upgrade itself is refused.
    for headers in ({"Origin": base}, {"Cookie": cookie, "Origin": "http://evil.example"}):
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws_url, additional_headers=headers)
        assert refused.value.response.status_code == 403

    ws = await connect(ws_url, additional_headers={"Cookie": cookie, "Origin": base})
    stream = MediaStream(ws, ticket["call_sid"])
    stream.listen()
    try:
        await stream.start(ticket["token"])
        await until(lambda: len(stream.agent_audio) > 800, 10.0, "greeting audio")
        await stream.stop()
    finally:
        await stream.aclose()
    assert await runtime.writes.flush(5.0)
    stored = await runtime.calls.get_call(ticket["call_sid"])
    assert stored is not None and stored.turns[0].text == "Draft hello from Acme Home Services."
    async with runtime.database.engine.connect() as conn:
        row = (
            await conn.execute(
                select(calls.c.is_test, calls.c.tenant, calls.c.agent_version).where(
                    calls.c.call_sid == ticket["call_sid"]
                )
            )
        ).one()
    assert (row.is_test, row.tenant, row.agent_version) == (True, "acme", None)
    # The token was single-use: a second start with it is refused.
    again = await connect(ws_url, additional_headers={"Cookie": cookie, "Origin": base})
    replay = MediaStream(again, ticket["call_sid"])
    replay.listen()
    await replay.start(ticket["token"])
    await asyncio.wait_for(replay.closed.wait(), 5)
    assert replay.close_code == 1008 and not replay.agent_audio
