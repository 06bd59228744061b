"""Faults of the model's side on the realtime pipeline: the socket drops mid-reply (the
call goes on, on a new session seeded with the conversation so far), the model stalls
(the recovery phrase), and the service refuses the session (a polite end, reason stored)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.realtime_server import StandinRealtime
from prompts.loader import load_agents
from tests.calls.cascade_support import RunCall, metric
from voice_agent.conversation.realtime_session import UNAVAILABLE
from voice_agent.conversation.session import APOLOGY
from voice_agent.settings import Settings


async def test_dropped_model_socket_reconnects_without_dropping_the_call(
    realtime: StandinRealtime, utterances: dict[str, Utterance], run_call: RunCall
) -> None:
    realtime.faults.drop_after_ms = 500.0  # the first reply's socket dies mid-audio
    names = ["need", "goodbye"]
    run = await run_call([CallerTurn(utterances[n]) for n in names], hangup_wait_s=6.0)

    first, second = realtime.sessions
    assert first.responses == 1 and first.cancelled == 1  # cut by the drop
    # The new session was seeded with the conversation so far, as text items, and asked
    # to answer the caller's turn the drop left unanswered.
    messages = [i for i in second.items_created if i["type"] == "message"]
    seeded = [(i["role"], i["content"][0]["text"]) for i in messages]
    agent = load_agents()["receptionist"]
    greeting = agent.render_speech(agent.greeting)
    assert seeded[:2] == [("assistant", greeting), ("user", utterances["need"].text)]
    assert messages[0]["content"][0]["type"] == "output_text"
    assert messages[1]["content"][0]["type"] == "input_text"
    assert second.received[:1] == ["session.update"] and "response.create" in second.received

    # The call went on to its end on the new session: the caller's goodbye was heard there.
    assert [t.text for t in run.turns("caller")] == [utterances[n].text for n in names]
    assert run.stored.end_reason == "agent-hangup"
    assert run.turns("agent")[-1].text == "Thanks for calling. Goodbye!"
    assert metric(run.metrics, "voice_agent_provider_errors_total", stage="realtime") == 1


async def test_stalled_model_gets_the_recovery_phrase(
    realtime: StandinRealtime,
    utterances: dict[str, Utterance],
    run_call: RunCall,
    realtime_settings: Callable[..., Settings],
) -> None:
    realtime.faults.stall_s = 3.0
    settings = realtime_settings(realtime_stall_s=0.6)
    turns = [CallerTurn(utterances["need"]), CallerTurn(utterances["goodbye"])]
    run = await run_call(turns, settings=settings)

    (session,) = realtime.sessions
    assert "response.cancel" in session.received and session.cancelled == 1
    agent = [t.text for t in run.turns("agent")]
    assert agent[1] == APOLOGY  # right after the caller's turn, instead of silence
    assert agent[-1] == "Thanks for calling. Goodbye!"
    assert run.result.turns[0].reply_ms is not None
    # Heard within the stall limit plus the endpointing, not after the stalled reply.
    assert run.result.turns[0].reply_ms < 600 + 500 + 800
    assert metric(run.metrics, "voice_agent_provider_errors_total", stage="realtime") == 1


@pytest.mark.parametrize("code", ["insufficient_quota", "invalid_api_key"])
async def test_refused_session_ends_the_call_politely(
    code: str, realtime: StandinRealtime, utterances: dict[str, Utterance], run_call: RunCall
) -> None:
    realtime.faults.refuse = 1
    realtime.faults.refuse_code = code
    run = await run_call([CallerTurn(utterances["need"])], hangup_wait_s=8.0)

    assert run.result.ended_by_server and run.result.unplayed_at_close == 0
    assert run.stored.end_reason == f"realtime-refused:{code}"
    agent = load_agents()["receptionist"]
    # The greeting (cached, played at once) and then the apology, both heard whole.
    assert [t.text for t in run.turns("agent")] == [
        agent.render_speech(agent.greeting),
        UNAVAILABLE,
    ]
    assert not run.turns("caller")
    assert len(realtime.sessions) == 1  # a refusal is not retried
