"""A realtime call survives its stream dropping (#15), as the cascade's does: the media
socket dies without a `stop` (as when the worker holding it is killed), Twilio follows the
<Redirect> to the resume webhook, and the new stream's session goes on from the stored
turns: the model's new session is seeded with them, the caller hears the apology instead
of the greeting, turn numbers follow the stored ones, and the call keeps its start.

In one process (the resume store in-process, SQLite): what the resume needs from the first
part is only what was stored, so a worker's death and a socket's drop look the same here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from loadtest.fixtures import Utterance
from loadtest.standins.realtime_server import StandinRealtime
from tests.app.twilio_side import media_url, new_call_sid, voice_params
from tests.deploy.processes import PhoneLine, post_form, wait_for
from tests.deploy.test_resume import parse
from voice_agent.demo import running_server
from voice_agent.resume import RESUME_PATH, RESUME_PHRASE
from voice_agent.runtime import Runtime
from voice_agent.settings import Settings
from voice_agent.storage.records import StoredCall


async def stored(runtime: Runtime, call_sid: str) -> StoredCall:
    assert await runtime.writes.flush(5.0)
    call = await runtime.calls.get_call(call_sid)
    assert call is not None
    return call


async def stored_until(
    runtime: Runtime, call_sid: str, check: Callable[[StoredCall], bool], what: str
) -> StoredCall:
    for _ in range(100):
        call = await stored(runtime, call_sid)
        if check(call):
            return call
        await asyncio.sleep(0.05)
    raise AssertionError(f"the stored call never showed {what}: {call.turns}")


async def test_a_dropped_realtime_call_resumes_from_its_stored_turns(
    realtime: StandinRealtime,
    realtime_settings: Callable[..., Settings],
    utterances: dict[str, Utterance],
) -> None:
    settings = realtime_settings()
    public = settings.public_base_url
    async with running_server(settings) as runtime:
        agent = runtime.default_agent
        greeting = agent.render_speech(agent.greeting)
        call_sid = new_call_sid()
        first = parse(
            (await post_form(public, public, "/twilio/voice", voice_params(call_sid))).text
        )
        assert first.token and first.redirect == public + RESUME_PATH
        line = await PhoneLine.open(
            media_url(settings), public + "/twilio/media", call_sid, first.token
        )
        await wait_for(lambda: len(line.agent_audio) > 4000, 10, "the greeting")
        await line.turn(utterances["need"].audio)
        before = await stored_until(
            runtime,
            call_sid,
            lambda c: [t.role for t in c.turns] == ["agent", "caller", "agent"],
            "the greeting, the caller's turn and its answer",
        )

        line.ws.transport.abort()  # no `stop`, no close frame: the stream just dies
        await asyncio.wait_for(line.closed.wait(), 5)
        await line.aclose()
        response = await post_form(
            public, public, RESUME_PATH, voice_params(call_sid, CallStatus="in-progress")
        )
        resumed = parse(response.text)
        assert resumed.token and resumed.redirect == first.redirect and not resumed.hangup
        line = await PhoneLine.open(
            media_url(settings), public + "/twilio/media", call_sid, resumed.token
        )
        # All the caller hears before speaking again is the cached apology, not the
        # greeting (the stand-in's voices for the two share a start: compare it whole).
        apology = await runtime.phrases.get(RESUME_PHRASE, agent.voice)
        await wait_for(lambda: len(line.agent_audio) > 0, 10, "the apology")
        await wait_for(lambda: line.agent_quiet, 10, "the apology's end")
        assert bytes(line.agent_audio) == apology
        await line.turn(utterances["budget"].audio)
        await line.hang_up()
        after = await stored_until(
            runtime, call_sid, lambda c: c.end_reason == "caller-hangup", "the caller's hang-up"
        )

    # The model's new session was seeded with the stored turns, then the apology we said.
    assert len(realtime.sessions) == 2
    messages = [i for i in realtime.sessions[1].items_created if i["type"] == "message"]
    seeded = [(i["role"], i["content"][0]["text"]) for i in messages]
    roles = {"agent": "assistant", "caller": "user"}
    expected = [(roles[t.role], t.text) for t in before.turns] + [("assistant", RESUME_PHRASE)]
    assert seeded[: len(expected)] == expected, seeded
    assert expected[0] == ("assistant", greeting)

    # The first part's turns are kept as they were; the resumed part's follow them.
    turns = [(t.seq, t.role, t.text) for t in after.turns]
    kept = [(t.seq, t.role, t.text) for t in before.turns]
    assert turns[: len(kept)] == kept, turns
    assert [seq for seq, _, _ in turns] == list(range(1, len(turns) + 1)), turns
    agent_said = [text for _, role, text in turns if role == "agent"]
    assert agent_said.count(greeting) == 1 and agent_said[2] == RESUME_PHRASE, agent_said
    caller_said = [text for _, role, text in turns if role == "caller"]
    assert caller_said == [utterances["need"].text, utterances["budget"].text]
    assert after.started_at == before.started_at
