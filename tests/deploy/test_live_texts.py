"""An SMS that names a live call reaches that call, whichever worker holds it. Two real
server processes share PostgreSQL and Redis; the call streams through A; the caller texts
the business number and Twilio's SMS webhook lands on B. B hands the text to A's session
through the live call control, A acknowledges, the agent answers it by voice in the call
(no SMS reply), and the text is in the call's transcript. Without Redis the same path acts
in-process. A text naming no live call, or a call whose worker died, is answered by SMS."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest

from loadtest.fixtures import Utterance
from loadtest.standins.fixture_transcriber import FixtureTranscriber
from loadtest.standins.openai_server import StandinOpenAI
from loadtest.standins.realtime_server import RealtimeLatency, StandinRealtime
from tests.app.twilio_side import ACCOUNT_SID, voice_params
from tests.deploy.processes import ServerProcess, post_form, wait_for
from tests.deploy.test_drain import stored_call
from tests.deploy.test_live_control import greeted_call, wait_for_end
from voice_agent.conversation.session import TEXT_PREFIX

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS = "redis://127.0.0.1:6379/0"
TEXT = "my email is jo at example dot com"


def sms_params(body: str, **extra: str) -> dict[str, str]:
    call = voice_params("unused")
    return {
        "MessageSid": "SM" + os.urandom(16).hex(),
        "AccountSid": ACCOUNT_SID,
        "From": call["From"],
        "To": call["To"],
        "Body": body,
        "NumMedia": "0",
    } | extra


def messages_in(twiml: str) -> list[str]:
    return [m.text or "" for m in ET.fromstring(twiml).iter("Message")]


async def text_reaches_the_call(
    holder: ServerProcess, receiver: ServerProcess, standin: StandinOpenAI
) -> None:
    line = await greeted_call(holder)
    chats = len(standin.recorded("chat"))
    heard = len(line.agent_audio)
    started = time.monotonic()
    public = receiver.env["PUBLIC_BASE_URL"]
    response = await post_form(receiver.base_url, public, "/twilio/sms", sms_params(TEXT))
    took_s = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert messages_in(response.text) == []  # answered in the call, not by SMS
    # The agent answers the text by voice, on the holder's stream.
    await wait_for(lambda: len(line.agent_audio) - heard > 4000, 10, "the spoken answer")
    asked = [
        m.get("content")
        for m in standin.recorded("chat")[chats].body["messages"]  # type: ignore[union-attr]
        if m.get("role") == "user"
    ]
    assert asked[-1] == f"{TEXT_PREFIX} {TEXT}", asked
    await wait_for(lambda: line.agent_quiet, 15, "the answer's end")
    await line.hang_up()
    await wait_for_end(holder, line.call_sid)
    call = await stored_call(holder.env["DATABASE_URL"], line.call_sid)
    events = [t.text for t in call.turns if t.role == "event"]
    assert events == [f"{TEXT_PREFIX} {TEXT}"], [(t.role, t.text) for t in call.turns]
    assert [t.role for t in call.turns][-2:] == ["event", "agent"]
    print(f"\nSMS to the live call answered by its webhook in {took_s * 1000:.0f} ms")


async def test_an_sms_on_b_reaches_the_call_streaming_on_a(
    servers: Callable[..., ServerProcess], standin: StandinOpenAI
) -> None:
    a = servers(redis_url=REDIS)
    b = servers(redis_url=REDIS, public_base_url=a.env["PUBLIC_BASE_URL"])
    await asyncio.gather(a.ready(), b.ready())
    await text_reaches_the_call(a, b, standin)
    # The call is over: the next text from the same number is answered by SMS.
    after = await post_form(b.base_url, b.env["PUBLIC_BASE_URL"], "/twilio/sms", sms_params("hi"))
    assert after.status_code == 200 and len(messages_in(after.text)) == 1, after.text


async def test_without_redis_the_text_reaches_the_call_in_process(
    servers: Callable[..., ServerProcess], standin: StandinOpenAI
) -> None:
    server = servers()
    await server.ready()
    await text_reaches_the_call(server, server, standin)


async def test_a_text_from_another_number_is_answered_by_sms(
    servers: Callable[..., ServerProcess],
) -> None:
    a = servers(redis_url=REDIS)
    b = servers(redis_url=REDIS, public_base_url=a.env["PUBLIC_BASE_URL"])
    await asyncio.gather(a.ready(), b.ready())
    line = await greeted_call(a)
    heard = len(line.agent_audio)
    params = sms_params(TEXT, From="+15550009999")
    response = await post_form(b.base_url, b.env["PUBLIC_BASE_URL"], "/twilio/sms", params)
    assert response.status_code == 200 and len(messages_in(response.text)) == 1, response.text
    await asyncio.sleep(0.5)
    assert len(line.agent_audio) == heard  # the call heard nothing of it
    await line.hang_up()


async def test_a_text_naming_a_call_whose_worker_died_is_answered_by_sms(
    servers: Callable[..., ServerProcess],
) -> None:
    a = servers(redis_url=REDIS)
    b = servers(redis_url=REDIS, public_base_url=a.env["PUBLIC_BASE_URL"])
    await asyncio.gather(a.ready(), b.ready())
    line = await greeted_call(a)
    await asyncio.sleep(1.0)  # the call's row is stored (in progress)
    os.killpg(a.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
    await asyncio.wait_for(line.closed.wait(), 5)
    await line.aclose()
    call = await stored_call(b.env["DATABASE_URL"], line.call_sid)
    assert call is not None and call.ended_at is None  # nobody ended it: it names a call
    started = time.monotonic()
    response = await post_form(
        b.base_url, b.env["PUBLIC_BASE_URL"], "/twilio/sms", sms_params(TEXT)
    )
    took_s = time.monotonic() - started
    # No worker acknowledged: after the bounded wait, the agent answers by SMS instead.
    assert response.status_code == 200 and len(messages_in(response.text)) == 1, response.text
    assert took_s < 6.0, took_s


async def test_on_the_realtime_pipeline_the_text_reaches_the_model(
    servers: Callable[..., ServerProcess],
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
) -> None:
    transcriber = FixtureTranscriber(utterances.values())
    async with StandinRealtime(
        RealtimeLatency.none(), transcriber=transcriber.samples, api_key=standin.api_key
    ) as realtime:
        server = servers(agent_pipeline="realtime", openai_realtime_url=realtime.url)
        await server.ready()
        line = await greeted_call(server)
        public = server.env["PUBLIC_BASE_URL"]
        response = await post_form(server.base_url, public, "/twilio/sms", sms_params(TEXT))
        assert response.status_code == 200 and messages_in(response.text) == [], response.text

        def text_items() -> list[str]:
            return [
                part.get("text", "")
                for session in realtime.sessions
                for item in session.items_created
                for part in item.get("content", [])
            ]

        await wait_for(lambda: f"{TEXT_PREFIX} {TEXT}" in text_items(), 10, "the text item")
        await line.hang_up()
        await wait_for_end(server, line.call_sid)
        call = await stored_call(server.env["DATABASE_URL"], line.call_sid)
        assert f"{TEXT_PREFIX} {TEXT}" in [t.text for t in call.turns if t.role == "event"]
