"""Whole calls on the offline pipeline over the real media websocket: the finished call is
analysed from the playbook (fields, outcome, summary), shown in the API and the
transcript JSON, and the same number calling again is greeted by name."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from loadtest.caller import place_call
from media import mulaw
from tests.conftest import TWILIO_TOKEN
from tests.dashboard.conftest import PASSWORD, login
from voice_agent.demo import demo_turns, running_server
from voice_agent.providers.base import Pipeline
from voice_agent.settings import Settings
from voice_agent.storage.transcript import transcript_dict

CALLER = "+15551230042"


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


async def test_offline_call_is_analysed_and_the_caller_is_remembered(
    offline_pipeline: Pipeline, make_settings: Callable[..., Settings]
) -> None:
    # The personal greeting is made while "Twilio" connects; the load generator connects
    # at once, so the test gives it the time a real connect takes.
    settings = make_settings(caller_greeting_wait_ms=5000)
    async with running_server(settings, pipeline=offline_pipeline) as runtime:
        assert runtime.analysis is not None
        first = await place_call(
            settings.public_base_url, demo_turns(), auth_token=TWILIO_TOKEN, from_number=CALLER
        )
        assert first.error is None
        assert await runtime.analysis.idle(20.0)
        stored = await runtime.calls.get_call(first.call_sid)
        assert stored is not None and stored.analysis is not None

        # From the playbook's slots: the demo caller gives name, need, budget and timing.
        analysis = stored.analysis
        assert analysis["source"] == "playbook"
        fields = analysis["fields"]
        assert set(fields) == {"name", "need", "budget", "timeline", "emergency", "interest_level"}
        assert "sarah" in fields["name"].lower()
        assert "roof" in fields["need"].lower()
        assert fields["budget"] and fields["timeline"]
        assert fields["emergency"] is None  # no slot, no rule: the playbook cannot tell
        # The demo caller says goodbye after the questions: qualified, high interest.
        assert analysis["outcome"] == "qualified", analysis
        assert fields["interest_level"] == "high"
        assert "roof" in analysis["summary"].lower() and CALLER in analysis["summary"]

        document = transcript_dict(stored)
        assert document["analysis"] == {
            "summary": analysis["summary"],
            "outcome": "qualified",
            "fields": fields,
        }
        facts = await runtime.calls.call_facts(first.call_sid)
        assert facts is not None and facts["outcome"] == "qualified"

        # The same number again: greeted by name, and not asked for it.
        second = await place_call(
            settings.public_base_url,
            demo_turns()[1:2],
            auth_token=TWILIO_TOKEN,
            from_number=CALLER,
            hangup_wait_s=3.0,
        )
        assert second.error is None
        assert await runtime.writes.flush(5.0)
        again = await runtime.calls.get_call(second.call_sid)
        assert again is not None
        greeting = again.turns[0]
        assert greeting.role == "agent" and "Sarah" in greeting.text
        assert "who am i speaking with" not in greeting.text.lower()
        heard = await offline_pipeline.stt.transcribe(mulaw.decode(bytes(second.replies[0])), 8000)
        assert "sarah" in _words(heard.text), heard.text
        # The playbook took the name as known and went on to the next question's answer.
        replies = [t.text for t in again.turns[1:] if t.role == "agent"]
        assert replies and "name" not in replies[0].lower(), replies

        # A stranger on the same server still gets the usual greeting.
        stranger = await place_call(
            settings.public_base_url,
            demo_turns()[:1],
            auth_token=TWILIO_TOKEN,
            from_number="+15551230099",
            hangup_wait_s=1.0,
        )
        assert await runtime.writes.flush(5.0)
        other = await runtime.calls.get_call(stranger.call_sid)
        assert other is not None and "who am i speaking with" in other.turns[0].text.lower()


async def test_analysis_in_the_api_and_the_outcome_filter(
    offline_pipeline: Pipeline, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    async with running_server(settings, pipeline=offline_pipeline) as runtime:
        call = await place_call(settings.public_base_url, demo_turns(), auth_token=TWILIO_TOKEN)
        assert call.error is None
        assert runtime.analysis is not None and await runtime.analysis.idle(20.0)
        async with httpx.AsyncClient(base_url=settings.public_base_url) as http:
            await _sign_in(http, runtime)
            detail = (await http.get(f"/api/calls/{call.call_sid}")).json()
            assert detail["analysis"]["outcome"] == "qualified"
            assert detail["analysis"]["fields"]["need"]
            listed = (await http.get("/api/calls", params={"outcome": "qualified"})).json()
            assert [c["call_sid"] for c in listed["calls"]] == [call.call_sid]
            none = (await http.get("/api/calls", params={"outcome": "voicemail"})).json()
            assert none["calls"] == []
            page = (await http.get(f"/calls/{call.call_sid}")).text
            assert 'id="outcome"' in page and "qualified" in page
            assert "from the playbook" in page


async def _sign_in(http: httpx.AsyncClient, runtime: object) -> None:
    from voice_agent.storage.users import UserRepository

    users = UserRepository(runtime.database)  # type: ignore[attr-defined]
    await users.add("admin@example.com", PASSWORD, role="admin")
    assert (await login(http, "admin@example.com", PASSWORD)).status_code == 303
