"""A whole call on AGENT_PIPELINE=realtime over the real webhook and media websocket."""

from __future__ import annotations

from collections.abc import Callable

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.realtime_server import StandinRealtime
from prompts.loader import load_agents
from tests.calls.cascade_support import RunCall
from voice_agent.settings import Settings
from voice_agent.storage.database import Database
from voice_agent.storage.metering import UsageRepository

from .conftest import LATENCY


async def test_whole_call_on_realtime(
    realtime: StandinRealtime, run_call: RunCall, utterances: dict[str, Utterance]
) -> None:
    names = ["greeting_reply", "need", "goodbye"]
    run = await run_call([CallerTurn(utterances[n]) for n in names])
    result, stored = run.result, run.stored
    agent = load_agents()["receptionist"]
    greeting = agent.render_speech(agent.greeting)
    assert stored.turns[0].role == "agent" and stored.turns[0].text == greeting
    assert result.greeting_ms is not None
    assert [t.text for t in run.turns("caller")] == [utterances[n].text for n in names]
    assert result.ended_by_server and stored.end_reason == "agent-hangup"
    (session,) = realtime.sessions
    assert session.session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert session.session["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    assert session.session["instructions"]
    assert {t["name"] for t in session.session["tools"]} == set(agent.tools)
    answered = [t for t in run.turns("agent")[1:]]
    assert answered and answered[-1].text == "Thanks for calling. Goodbye!"
    for turn in answered:
        assert turn.total_ms is not None and turn.llm_ms is not None, turn
        assert turn.llm_ms >= LATENCY.response_ms
        assert turn.server_ms is not None and turn.server_ms < 100


async def test_a_realtime_call_is_metered_as_the_model_reported(
    realtime: StandinRealtime,
    run_call: RunCall,
    realtime_settings: Callable[..., Settings],
    utterances: dict[str, Utterance],
) -> None:
    settings = realtime_settings()
    run = await run_call([CallerTurn(utterances["goodbye"])], settings=settings)
    db = await Database.connect(settings.database_url)
    try:
        rows = await UsageRepository(db).rows_for_call(run.result.call_sid)
    finally:
        await db.dispose()
    (session,) = realtime.sessions
    assert session.usage

    def total(meter: str) -> float:
        return sum(r.quantity for r in rows if r.meter == meter)

    def sent(direction: str, kind: str) -> int:
        return sum(u[f"{direction}_token_details"][f"{kind}_tokens"] for u in session.usage)

    assert total("realtime_audio_input_tokens") == sent("input", "audio") > 0
    assert total("realtime_audio_output_tokens") == sent("output", "audio") > 0
    assert total("realtime_text_input_tokens") == sent("input", "text")
    assert total("realtime_text_output_tokens") == sent("output", "text") > 0
    assert {r.model for r in rows if r.meter.startswith("realtime_")} == {"gpt-realtime"}
    # No cascade meters: the caller's audio went to the model, not to STT.
    assert not [r for r in rows if r.meter in ("stt_seconds", "llm_input_tokens")]


async def test_greeting_plays_at_once_while_the_model_connects(
    realtime: StandinRealtime, run_call: RunCall, utterances: dict[str, Utterance]
) -> None:
    realtime.faults.connect_delay_s = 1.5  # longer than the greeting takes to start
    run = await run_call([CallerTurn(utterances["goodbye"])])
    assert run.result.greeting_ms is not None and run.result.greeting_ms < 100
    agent = load_agents()["receptionist"]
    assert run.stored.turns[0].text == agent.render_speech(agent.greeting)
    assert not run.stored.turns[0].interrupted
    assert run.stored.end_reason == "agent-hangup"
