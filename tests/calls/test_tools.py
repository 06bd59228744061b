"""The agent's tools on a live call (transfer, hang-up) and keypad presses reaching the
model, on the cascade pipeline."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import Reply, ScriptedToolCall, StandinOpenAI, message_text
from loadtest.standins.twilio_rest import RecordedRequest, TwilioRestStandin
from prompts.loader import load_agents
from tests.calls.cascade_support import RunCall, line_bytes, short_responder
from tests.conftest import TWILIO_ACCOUNT, TWILIO_TOKEN
from voice_agent.settings import Settings

_SLACK = 40
TRANSFER_LINE = "Let me put you through to a project manager."


def _transfer_responder(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
    return Reply(TRANSFER_LINE, (ScriptedToolCall("transfer_call", {"reason": "asked"}),))


def _silence(ms: int) -> Utterance:
    """A turn with no speech: the caller only presses keys."""
    return Utterance("silence", "", b"\xff" * (8 * ms), ms, 0, 0)


async def test_transfer_updates_the_live_call_after_the_sentence_is_heard(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    standin.responder = _transfer_responder
    call_sid = "CA" + secrets.token_hex(16)
    async with TwilioRestStandin(TWILIO_ACCOUNT, TWILIO_TOKEN) as twilio:
        twilio.register_call(call_sid)
        updated_at: list[float] = []
        twilio.on_request(lambda _request: updated_at.append(time.perf_counter()))
        settings = cascade_settings(
            twilio_account_sid=TWILIO_ACCOUNT, twilio_api_base_url=twilio.base_url
        )
        run = await run_call(
            [CallerTurn(utterances["need"])],
            settings=settings,
            call_sid=call_sid,
            hangup_wait_s=5.0,
        )
        requests: list[RecordedRequest] = twilio.requests_for(call_sid)

    # One authorised update of this call, to TwiML that dials the agent's transfer number.
    receptionist = load_agents()["receptionist"]
    assert receptionist.transfer_number
    (update,) = requests
    assert update.method == "POST" and update.authorized and update.status == 200
    assert "<Dial" in update.form["Twiml"]
    # A warm transfer: the number is dialled with a whisper for the person who answers.
    assert f">{receptionist.transfer_number}</Number></Dial>" in update.form["Twiml"]

    # Only after the caller heard the whole sentence (the line played it in real time).
    result = run.result
    reply = result.replies[1]
    assert abs(len(reply) - line_bytes(TRANSFER_LINE)) <= _SLACK
    reply_started = next(t for t in result.media_times if t > result.turns[0].speech_end_at)
    assert updated_at[0] >= reply_started + len(reply) / 8000 - 0.1
    assert run.turns("agent")[-1].text == TRANSFER_LINE
    assert run.stored.end_reason == "transfer"


async def test_transfer_without_rest_credentials_hangs_up(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    run_call: RunCall,
    caplog: pytest.LogCaptureFixture,
) -> None:
    standin.responder = _transfer_responder
    with caplog.at_level(logging.ERROR, logger="voice_agent.telephony.media_socket"):
        run = await run_call([CallerTurn(utterances["need"])], hangup_wait_s=6.0)

    assert run.result.ended_by_server
    assert run.result.unplayed_at_close == 0
    assert run.stored.end_reason == "transfer"
    assert run.turns("agent")[-1].text == TRANSFER_LINE
    assert "needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in caplog.text


async def test_end_call_without_words_says_the_agents_goodbye_first(
    standin: StandinOpenAI, utterances: dict[str, Utterance], run_call: RunCall
) -> None:
    standin.responder = lambda _m, _t: Reply("", (ScriptedToolCall("end_call"),))
    run = await run_call([CallerTurn(utterances["goodbye"])], hangup_wait_s=8.0)

    receptionist = load_agents()["receptionist"]
    goodbye = receptionist.render_speech(receptionist.goodbye)
    assert goodbye.startswith("Thanks for calling Acme Home Services")
    assert standin.recorded("speech")[-1].body["input"] == goodbye
    result = run.result
    assert abs(len(result.replies[1]) - line_bytes(goodbye)) <= _SLACK
    # The socket closed only once the goodbye had played.
    assert result.ended_by_server and result.unplayed_at_close == 0
    assert run.stored.end_reason == "agent-hangup"
    last = run.turns("agent")[-1]
    assert last.text == goodbye and not last.interrupted
    assert last.total_ms is not None and last.tts_first_byte_ms is not None


async def test_a_keypad_press_reaches_the_model(
    standin: StandinOpenAI, utterances: dict[str, Utterance], run_call: RunCall
) -> None:
    standin.responder = short_responder
    turns = [CallerTurn(_silence(200), dtmf="5"), CallerTurn(utterances["goodbye"])]
    run = await run_call(turns)

    chat = standin.recorded("chat")
    assert len(chat) == 2
    assert chat[0].body["messages"][-1] == {"role": "user", "content": "[DTMF 5]"}
    # The press is part of the conversation from then on.
    assert {"role": "user", "content": "[DTMF 5]"} in chat[1].body["messages"]
    stored = run.stored.turns
    assert [(t.role, t.text) for t in stored[1:3]] == [
        ("event", "[DTMF 5]"),
        ("agent", short_responder(chat[0].body["messages"], []).text),
    ]
    assert run.result.turns[0].reply_ms is not None
    assert message_text(chat[1].body["messages"][-1]) == utterances["goodbye"].text
    assert run.result.ended_by_server
