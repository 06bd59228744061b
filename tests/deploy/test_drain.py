"""SIGTERM drains: a real `voice-agent serve` process with a call in progress on the
Twilio-side simulator. /readyz turns 503 at once, a new call is refused, the running call
goes on, then hears the agent's goodbye at DRAIN_TIMEOUT_S; every turn and the recording
are stored before the process exits."""

from __future__ import annotations

import asyncio
import signal
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from loadtest.fixtures import Utterance
from tests.app.twilio_side import new_call_sid, voice_params
from tests.deploy.processes import PhoneLine, ServerProcess, post_form, wait_for
from voice_agent.conversation.session import ENDING_NOW
from voice_agent.drain import DRAIN_REASON
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database

pytestmark = pytest.mark.postgres

DRAIN_S = 8.0


async def start_call(server: ServerProcess, public: str) -> PhoneLine:
    call_sid = new_call_sid()
    response = await post_form(server.base_url, public, "/twilio/voice", voice_params(call_sid))
    assert response.status_code == 200, response.text
    stream = ET.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None
    token = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}["token"]
    ws_url = server.base_url.replace("http://", "ws://") + "/twilio/media"
    return await PhoneLine.open(ws_url, public + "/twilio/media", call_sid, token)


async def stored_call(database_url: str, call_sid: str):  # type: ignore[no-untyped-def]
    database = await Database.connect(database_url)
    try:
        return await CallRepository(database).get_call(call_sid)
    finally:
        await database.dispose()


async def readyz(server: ServerProcess) -> int:
    async with httpx.AsyncClient(timeout=2.0) as http:
        return (await http.get(server.base_url + "/readyz")).status_code


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_drains_the_call_then_says_goodbye_and_stores_it(
    servers: Callable[..., ServerProcess],
    utterances: dict[str, Utterance],
    workers: int,
    tmp_path: Path,
) -> None:
    extra = {"redis_url": "redis://127.0.0.1:6379/0"} if workers > 1 else {}
    server = servers(workers=workers, drain_timeout_s=str(DRAIN_S), **extra)
    await server.ready()
    public = server.env["PUBLIC_BASE_URL"]
    line = await start_call(server, public)
    await wait_for(lambda: len(line.agent_audio) > 4000, 10, "the greeting")
    await line.turn(utterances["need"].audio)

    sent_at = time.monotonic()
    server.signal(signal.SIGTERM)
    # Not ready at once (the balancer stops sending calls here) ...
    await wait_for_status(server, 503, within_s=1.0)
    readiness_s = time.monotonic() - sent_at
    # ... and a new call is refused, for Twilio's retry or the balancer to take elsewhere.
    refused = await post_form(
        server.base_url, public, "/twilio/voice", voice_params(new_call_sid())
    )
    assert refused.status_code == 503

    # The call in progress goes on: the caller speaks and is answered.
    await line.turn(utterances["budget"].audio)
    assert not line.closed.is_set()

    # At the timeout the agent says goodbye in its own voice and hangs up.
    await asyncio.wait_for(line.closed.wait(), DRAIN_S + 20)
    hung_up_s = time.monotonic() - sent_at
    assert hung_up_s >= DRAIN_S
    await line.aclose()
    code = await server.exited(within_s=30)
    exited_s = time.monotonic() - sent_at
    assert code in (0, -signal.SIGTERM), server.log()

    call = await stored_call(server.env["DATABASE_URL"], line.call_sid)
    assert call is not None and call.end_reason == DRAIN_REASON, server.log()
    agent_turns = [t.text for t in call.turns if t.role == "agent"]
    caller_turns = [t.text for t in call.turns if t.role == "caller"]
    assert len(caller_turns) == 2, [(t.role, t.text, t.interrupted) for t in call.turns]
    assert agent_turns[-1].startswith(ENDING_NOW), agent_turns
    assert len(agent_turns) == 4  # greeting, two replies, goodbye
    recordings = list((Path(server.env["DATA_DIR"]) / "recordings").rglob("CA*.*"))
    assert len(recordings) == 1 and recordings[0].stat().st_size > 8000 * 2 * DRAIN_S
    print(
        f"\nworkers={workers}: readyz 503 after {readiness_s * 1000:.0f} ms; goodbye ended the"
        f" call {hung_up_s:.2f} s after SIGTERM (DRAIN_TIMEOUT_S={DRAIN_S:g});"
        f" process exited after {exited_s:.2f} s"
    )


async def test_sigterm_with_no_call_exits_at_once(servers: Callable[..., ServerProcess]) -> None:
    server = servers(drain_timeout_s="30")
    await server.ready()
    sent_at = time.monotonic()
    server.signal(signal.SIGTERM)
    await server.exited(within_s=10)
    assert time.monotonic() - sent_at < 5


async def wait_for_status(server: ServerProcess, status: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while (got := await readyz(server)) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz answered {got}, not {status}")
        await asyncio.sleep(0.02)
