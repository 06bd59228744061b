"""A call survives its worker's death. Two real server processes share PostgreSQL and
Redis; the call streams through A; A is SIGKILLed; the simulated caller does what Twilio
does when a stream ends, follows the TwiML's <Redirect> to the resume webhook (on B, as a
load balancer would send it), connects the new stream, hears "sorry, I lost you", and the
conversation goes on from the stored turns. A call the agent ended on purpose hangs up."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile

from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import StandinOpenAI
from tests.app.twilio_side import new_call_sid, voice_params
from tests.deploy.processes import PhoneLine, ServerProcess, post_form, wait_for
from tests.deploy.test_drain import stored_call
from tests.deploy.test_live_control import wait_for_end
from voice_agent.resume import RESUME_PATH, RESUME_PHRASE
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Twiml:
    token: str | None
    redirect: str | None
    hangup: bool


def parse(document: str) -> Twiml:
    root = ET.fromstring(document)
    stream = root.find("./Connect/Stream")
    token = None
    if stream is not None:
        token = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}["token"]
    redirect = root.find("./Redirect")
    return Twiml(
        token,
        redirect.text if redirect is not None else None,
        root.find("./Hangup") is not None,
    )


async def connect(server: ServerProcess, public: str, call_sid: str, token: str) -> PhoneLine:
    ws_url = server.base_url.replace("http://", "ws://") + "/twilio/media"
    return await PhoneLine.open(ws_url, public + "/twilio/media", call_sid, token)


async def follow_redirect(
    server: ServerProcess, public: str, redirect: str, call_sid: str
) -> Twiml:
    """Twilio's next verb: POST the <Redirect> URL (signed over it) with the call's params."""
    assert redirect == public + RESUME_PATH
    params = voice_params(call_sid, CallStatus="in-progress")
    response = await post_form(server.base_url, public, RESUME_PATH, params)
    assert response.status_code == 200, response.text
    return parse(response.text)


async def killed_and_resumed(
    holder: ServerProcess, other: ServerProcess, public: str, utterances: dict[str, Utterance]
) -> tuple[str, float, PhoneLine]:
    """One call placed on `holder`, one turn, then `holder` SIGKILLed; the call resumed on
    `other`. Returns the CallSid, the silence the caller heard (s), and the new line."""
    call_sid = new_call_sid()
    response = await post_form(holder.base_url, public, "/twilio/voice", voice_params(call_sid))
    first = parse(response.text)
    assert first.token and first.redirect
    line = await connect(holder, public, call_sid, first.token)
    await wait_for(lambda: len(line.agent_audio) > 4000, 10, "the greeting")
    await line.turn(utterances["need"].audio)
    await asyncio.sleep(1.0)  # the turns are durable within a second

    killed_at = time.monotonic()
    os.killpg(holder.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
    await asyncio.wait_for(line.closed.wait(), 5)
    await line.aclose()
    resumed = await follow_redirect(other, public, first.redirect, call_sid)
    assert resumed.token and resumed.redirect == first.redirect and not resumed.hangup
    new_line = await connect(other, public, call_sid, resumed.token)
    await wait_for(lambda: bool(new_line.agent_media), 10, "the resumed stream's first audio")
    silence_s = new_line.agent_media[0][0] - killed_at
    return call_sid, silence_s, new_line


async def test_sigkill_of_the_holder_then_the_call_goes_on_elsewhere(
    servers: Callable[..., ServerProcess],
    utterances: dict[str, Utterance],
    standin: StandinOpenAI,
) -> None:
    a = servers(redis_url=REDIS)
    public = a.env["PUBLIC_BASE_URL"]
    b = servers(redis_url=REDIS, public_base_url=public)
    await asyncio.gather(a.ready(), b.ready())
    call_sid, silence_s, line = await killed_and_resumed(a, b, public, utterances)
    # The apology, not the greeting, then the conversation goes on with its history.
    await wait_for(lambda: line.agent_quiet, 15, "the apology's end")
    before = len(standin.recorded("chat"))
    await line.turn(utterances["budget"].audio)
    chats = standin.recorded("chat")[before:]
    assert chats, "no dialogue request after the resume"
    said = [m.get("content") for m in chats[-1].body["messages"] if m.get("role") == "user"]
    assert said[0] == utterances["need"].text, said  # the turn heard by the dead worker
    await line.hang_up()
    await wait_for_end(b, call_sid)
    call = await stored_call(b.env["DATABASE_URL"], call_sid)
    texts = [(t.seq, t.role, t.text) for t in call.turns]
    assert [t[0] for t in texts] == sorted({t[0] for t in texts}), texts  # no seq reused
    agent = [t for _, role, t in texts if role == "agent"]
    caller = [t for _, role, t in texts if role == "caller"]
    assert RESUME_PHRASE in agent, agent
    assert caller == [utterances["need"].text, utterances["budget"].text]
    assert call.end_reason == "caller-hangup"
    await recording_spans_both_parts(b, call_sid, call)
    print(f"\nsilence heard after SIGKILL: {silence_s * 1000:.0f} ms")
    assert silence_s < 3.0


async def test_a_call_the_agent_ended_hangs_up_at_the_redirect(
    servers: Callable[..., ServerProcess], utterances: dict[str, Utterance]
) -> None:
    a = servers(redis_url=REDIS)
    public = a.env["PUBLIC_BASE_URL"]
    b = servers(redis_url=REDIS, public_base_url=public)
    await asyncio.gather(a.ready(), b.ready())
    call_sid = new_call_sid()
    first = parse(
        (await post_form(a.base_url, public, "/twilio/voice", voice_params(call_sid))).text
    )
    assert first.token and first.redirect
    line = await connect(a, public, call_sid, first.token)
    await wait_for(lambda: len(line.agent_audio) > 4000, 10, "the greeting")
    await wait_for(lambda: line.agent_quiet, 15, "the greeting's end")
    line.say(utterances["goodbye"].audio, then_silence_ms=800)
    await asyncio.wait_for(line.closed.wait(), 20)  # the agent says goodbye and hangs up
    await line.aclose()
    after = await follow_redirect(b, public, first.redirect, call_sid)
    assert after.hangup and after.token is None


@pytest.mark.skipif(
    not os.environ.get("VOICE_AGENT_KILLS"), reason="figures run: VOICE_AGENT_KILLS=20"
)
async def test_silence_over_many_kills(
    servers: Callable[..., ServerProcess], utterances: dict[str, Utterance]
) -> None:
    kills = int(os.environ["VOICE_AGENT_KILLS"])
    a = servers(redis_url=REDIS)
    public = a.env["PUBLIC_BASE_URL"]
    b = servers(redis_url=REDIS, public_base_url=public)
    await asyncio.gather(a.ready(), b.ready())
    holder, other = a, b
    silences = []
    for _ in range(kills):
        _, silence_s, line = await killed_and_resumed(holder, other, public, utterances)
        silences.append(silence_s)
        await line.hang_up()
        holder.start()  # the killed one comes back (as uvicorn's supervisor or Compose would)
        await holder.ready()
        holder, other = other, holder
    silences.sort()
    p50 = statistics.median(silences)
    p99 = silences[min(len(silences) - 1, round(0.99 * (len(silences) - 1)))]
    print(f"\n{kills} kills: silence p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")


async def recording_path(database_url: str, call_sid: str) -> str | None:
    for _ in range(100):  # written once the file is finished, after the call's end
        database = await Database.connect(database_url)
        try:
            facts = await CallRepository(database).call_facts(call_sid)
        finally:
            await database.dispose()
        if facts is not None and facts["recording_path"]:
            return str(facts["recording_path"])
        await asyncio.sleep(0.1)
    return None


async def recording_spans_both_parts(server: ServerProcess, call_sid: str, call) -> None:  # type: ignore[no-untyped-def]
    """One file for the whole call (the servers share DATA_DIR, as shared storage would):
    what the killed worker had written of its part (the greeting), then the resumed part at
    its place on the call's timeline (the apology, the second turn)."""
    path = await recording_path(server.env["DATABASE_URL"], call_sid)
    assert path is not None, "no recording linked to the resumed call"
    audio, rate = soundfile.read(path, dtype="int16")
    whole_s = (call.ended_at - call.started_at).total_seconds()
    assert abs(len(audio) / rate - whole_s) < 1.0, (len(audio) / rate, whole_s)
    resumed = next(t for t in call.turns if t.text == RESUME_PHRASE)
    split = round((resumed.started_at - call.started_at).total_seconds() * rate)
    agent = np.abs(audio[:, 1].astype(np.int32))
    caller = np.abs(audio[:, 0].astype(np.int32))
    # The killed worker's file holds the blocks it had handed to the writer (every 5 s):
    # the greeting at least; its last seconds died with it.
    assert agent[: 4 * rate].max() > 1000, "the first part's greeting is missing"
    assert agent[split:].max() > 1000, "the resumed part's agent audio is missing"
    assert caller[split:].max() > 1000, "the resumed part's caller audio is missing"
    leftovers = list(Path(path).parent.glob(f"{call_sid}*.partial"))
    assert leftovers == [], leftovers


async def test_a_replayed_resume_cannot_take_a_live_call(
    servers: Callable[..., ServerProcess],
    utterances: dict[str, Utterance],
    standin: StandinOpenAI,
) -> None:
    """Someone who captured Twilio's signed request to /twilio/resume replays it while
    the call is up on A (the replay reaching B): B's answer carries a fresh token, but
    the stream it opens is refused, since A answers that its session holds the call; the
    caller's call goes on on A."""
    a = servers(redis_url=REDIS)
    public = a.env["PUBLIC_BASE_URL"]
    b = servers(redis_url=REDIS, public_base_url=public)
    await asyncio.gather(a.ready(), b.ready())
    call_sid = new_call_sid()
    first = parse(
        (await post_form(a.base_url, public, "/twilio/voice", voice_params(call_sid))).text
    )
    assert first.token and first.redirect
    line = await connect(a, public, call_sid, first.token)
    await wait_for(lambda: line.agent_quiet and len(line.agent_audio) > 4000, 15, "greeting")

    replayed = await follow_redirect(b, public, first.redirect, call_sid)
    assert replayed.token
    intruder = await connect(b, public, call_sid, replayed.token)
    await asyncio.wait_for(intruder.closed.wait(), 5)
    await intruder.aclose()
    assert intruder.close_code == 1008  # policy violation
    assert not intruder.agent_media

    # A still has the call, and the caller is still answered there.
    before = len(standin.recorded("chat"))
    await line.turn(utterances["need"].audio)
    chats = standin.recorded("chat")[before:]
    assert chats and not line.closed.is_set()
    said = [m.get("content") for m in chats[-1].body["messages"] if m.get("role") == "user"]
    assert said == [utterances["need"].text]
    await line.hang_up()
    await wait_for_end(a, call_sid)
    call = await stored_call(a.env["DATABASE_URL"], call_sid)
    assert RESUME_PHRASE not in [t.text for t in call.turns]
    assert call.end_reason == "caller-hangup"
