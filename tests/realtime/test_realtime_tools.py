"""Tool calls on the realtime pipeline go through the cascade's dispatcher: the result goes
back to the model as a function_call_output item, then the model answers it (or the call
ends or is transferred, after the model's words were heard)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import Reply, ScriptedToolCall, default_responder
from loadtest.standins.realtime_server import StandinRealtime
from tests.calls.cascade_support import RunCall

TRANSFER_LINE = "Let me put you through to a project manager."


async def test_transfer_tool_after_its_words_are_heard(
    realtime: StandinRealtime,
    utterances: dict[str, Utterance],
    run_call: RunCall,
    caplog: pytest.LogCaptureFixture,
) -> None:
    realtime.responder = lambda _m, _t: Reply(
        TRANSFER_LINE, (ScriptedToolCall("transfer_call", {"reason": "asked"}),)
    )
    with caplog.at_level(logging.ERROR, logger="voice_agent.telephony.media_socket"):
        run = await run_call([CallerTurn(utterances["need"])], hangup_wait_s=6.0)

    (session,) = realtime.sessions
    (output,) = session.function_outputs
    assert output["output"] == "transferring the caller" and output["call_id"].startswith("call_")
    assert run.result.ended_by_server and run.result.unplayed_at_close == 0
    assert run.stored.end_reason == "transfer"
    assert run.turns("agent")[-1].text == TRANSFER_LINE
    # No REST credentials in these settings: the line says so and hangs up.
    assert "needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in caplog.text


def _lookup_responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
    if messages[-1].get("role") == "tool":
        return Reply("All right, that is done.")
    said = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
    if "roof" in said:
        return Reply("One moment.", (ScriptedToolCall("check_calendar", {"day": "monday"}),))
    return default_responder(messages, tools)


async def test_a_tool_result_goes_back_and_the_model_answers_it(
    realtime: StandinRealtime, utterances: dict[str, Utterance], run_call: RunCall
) -> None:
    realtime.responder = _lookup_responder
    run = await run_call([CallerTurn(utterances["need"]), CallerTurn(utterances["goodbye"])])

    (session,) = realtime.sessions
    outputs = [o["output"] for o in session.function_outputs]
    assert outputs == ["unknown tool check_calendar", "ending the call"]
    # The tool's result was followed by a response.create (the model's own turn ends
    # with the caller's speech, so any response.create is ours).
    assert session.received.count("response.create") == 1
    agent = [t.text for t in run.turns("agent")]
    assert agent[1:] == ["One moment.", "All right, that is done.", "Thanks for calling. Goodbye!"]
    assert run.stored.end_reason == "agent-hangup"
