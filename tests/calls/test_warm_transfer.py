"""The transfer_call tool warm-transfers: the person answering hears a one-sentence summary
(the whisper) before the caller is bridged; nobody answering gets one cold try, then an
apology."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from loadtest.caller import CallerTurn
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import Reply, ScriptedToolCall, StandinOpenAI
from loadtest.standins.twilio_rest import TwilioRestStandin
from prompts.loader import load_agents
from tests.app.twilio_side import sign
from tests.calls.cascade_support import RunCall
from tests.conftest import TWILIO_ACCOUNT, TWILIO_TOKEN
from voice_agent.demo import running_server
from voice_agent.settings import Settings


def _transfer(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Reply:
    return Reply("Let me put you through.", (ScriptedToolCall("transfer_call", {}),))


async def _post(url: str, params: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(url, data=params, headers={"X-Twilio-Signature": sign(url, params)})


async def test_warm_transfer_whispers_a_summary_then_falls_back(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
    run_call: RunCall,
) -> None:
    standin.responder = _transfer
    call_sid = "CA" + secrets.token_hex(16)
    receptionist = load_agents()["receptionist"]
    async with TwilioRestStandin(TWILIO_ACCOUNT, TWILIO_TOKEN) as twilio:
        twilio.register_call(call_sid)
        settings = cascade_settings(
            twilio_account_sid=TWILIO_ACCOUNT, twilio_api_base_url=twilio.base_url
        )
        run = await run_call(
            [CallerTurn(utterances["need"])],
            settings=settings,
            call_sid=call_sid,
            hangup_wait_s=5.0,
        )
        (update,) = twilio.requests_for(call_sid)
    assert run.stored.end_reason == "transfer"

    dial = ET.fromstring(update.form["Twiml"]).find("Dial")
    assert dial is not None and dial.get("timeout") == "20"
    number = dial.find("Number")
    assert number is not None and number.text == receptionist.transfer_number
    whisper_url, action_url = number.get("url", ""), dial.get("action", "")
    base = settings.public_base_url
    assert whisper_url.startswith(base + "/twilio/whisper?t=")
    assert action_url.startswith(base + "/twilio/transfer?")

    # The same server again (the transfer's webhooks may reach any worker; tokens are shared
    # through Redis there). Here: a fresh process cannot know the whisper token.
    async with running_server(settings) as runtime:
        del runtime
        child = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": TWILIO_ACCOUNT}
        unknown = await _post(whisper_url, child)
        assert unknown.status_code == 200
        assert "transferred call" in unknown.text

        # Nobody picked up: one cold try, without the whisper.
        parent = {"CallSid": call_sid, "AccountSid": TWILIO_ACCOUNT}
        cold = await _post(action_url, parent | {"DialCallStatus": "no-answer"})
        cold_dial = ET.fromstring(cold.text).find("Dial")
        assert cold_dial is not None and cold_dial.text == receptionist.transfer_number
        assert cold_dial.find("Number") is None
        cold_query = dict(parse_qsl(urlsplit(cold_dial.get("action", "")).query))
        assert cold_query["stage"] == "cold"
        # The tenant travels along, so the apology is its own agent's (#13).
        assert cold_query["tenant"] == "default"

        # Still nobody: the agent's apology, and the call ends.
        apology = await _post(cold_dial.get("action", ""), parent | {"DialCallStatus": "busy"})
        root = ET.fromstring(apology.text)
        assert [c.tag for c in root] == ["Say", "Hangup"]
        assert root[0].text == receptionist.render_speech(receptionist.transfer_unavailable) + (
            " Goodbye."
        )

        # A bridged call that ends: hang up.
        done = await _post(action_url, parent | {"DialCallStatus": "completed"})
        assert [c.tag for c in ET.fromstring(done.text)] == ["Hangup"]


async def test_the_whisper_is_one_sentence_about_the_call(
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
    cascade_settings: Callable[..., Settings],
) -> None:
    """Whisper fetched from the server that made the transfer: the summary names the caller
    and what they said; the token works once."""
    from loadtest.caller import place_call

    standin.responder = _transfer
    call_sid = "CA" + secrets.token_hex(16)
    async with TwilioRestStandin(TWILIO_ACCOUNT, TWILIO_TOKEN) as twilio:
        twilio.register_call(call_sid)
        settings = cascade_settings(
            twilio_account_sid=TWILIO_ACCOUNT, twilio_api_base_url=twilio.base_url
        )
        async with running_server(settings):
            await place_call(
                settings.public_base_url,
                [CallerTurn(utterances["need"])],
                auth_token=TWILIO_TOKEN,
                call_sid=call_sid,
                hangup_wait_s=5.0,
            )
            (update,) = twilio.requests_for(call_sid)
            number = ET.fromstring(update.form["Twiml"]).find("Dial/Number")
            assert number is not None
            child = {"CallSid": "CA" + secrets.token_hex(16), "AccountSid": TWILIO_ACCOUNT}
            first = await _post(number.get("url", ""), child)
            again = await _post(number.get("url", ""), child)

    say = ET.fromstring(first.text).find("Say")
    assert say is not None and say.text is not None
    said = utterances["need"].text.rstrip(".!?")
    assert say.text == f"Transfer from Receptionist: a caller from +15551230000, who said: {said}."
    assert say.get("language") == "en-US"  # the agent's language, carried by the token
    assert "transferred call" in again.text  # single use
