"""Whole calls on the cascade pipeline over the real media websocket, against the OpenAI
stand-in through the openai SDK: the finished call is analysed by one structured-output
request, and the same number calling again is greeted by name, with its memory in the
system prompt."""

from __future__ import annotations

from collections.abc import Callable

from loadtest.caller import CallerTurn, place_call
from loadtest.fixtures import Utterance
from loadtest.standins.openai_server import StandinOpenAI
from tests.conftest import TWILIO_TOKEN
from voice_agent.demo import running_server
from voice_agent.settings import Settings

CALLER = "+15551230077"


def last_system_prompt(standin: StandinOpenAI) -> str:
    """The system prompt of the latest dialogue (streamed) request."""
    streamed = [r for r in standin.recorded("chat") if r.body.get("stream")]
    return str(streamed[-1].body["messages"][0]["content"])


def script(utterances: dict[str, Utterance], *ids: str) -> list[CallerTurn]:
    return [CallerTurn(utterances[i]) for i in ids]


async def test_cascade_call_is_analysed_and_the_caller_is_greeted_by_name(
    cascade_settings: Callable[..., Settings],
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
) -> None:
    settings = cascade_settings(caller_greeting_wait_ms=3000)
    async with running_server(settings) as runtime:
        assert runtime.analysis is not None
        first = await place_call(
            settings.public_base_url,
            script(utterances, "greeting_reply", "need", "budget", "timing", "goodbye"),
            auth_token=TWILIO_TOKEN,
            from_number=CALLER,
        )
        assert first.error is None
        assert await runtime.analysis.idle(20.0)
        stored = await runtime.calls.get_call(first.call_sid)
        assert stored is not None and stored.analysis is not None
        analysis = stored.analysis
        assert analysis["source"] == "llm"
        assert analysis["outcome"] == "qualified"
        assert analysis["fields"]["name"] == "Sarah Johnson"
        assert analysis["fields"]["budget"] == "five thousand dollars"
        assert "roof" in analysis["fields"]["need"]
        assert analysis["request"]["attempts"] == 1 and analysis["request"]["input_tokens"] > 0
        structured = [r for r in standin.recorded("chat") if "response_format" in r.body]
        assert len(structured) == 1  # one analysis request; the dialogue's are streamed
        assert not structured[0].body.get("stream")

        second = await place_call(
            settings.public_base_url,
            script(utterances, "goodbye"),
            auth_token=TWILIO_TOKEN,
            from_number=CALLER,
        )
        assert second.error is None
        assert await runtime.writes.flush(5.0)
        again = await runtime.calls.get_call(second.call_sid)
        assert again is not None
        assert again.turns[0].role == "agent"
        assert "Good to hear from you again, Sarah Johnson!" in again.turns[0].text
        # The greeting's audio was made by the TTS for this text, before the stream began.
        spoken = [r.body.get("input") for r in standin.recorded("speech")]
        assert again.turns[0].text in spoken
        # The model knows who is calling and what happened last time.
        dialogue = last_system_prompt(standin)
        assert "name Sarah Johnson; their last contact with us: On " in dialogue
        assert "a call: Sarah Johnson called about" in dialogue


async def test_a_greeting_not_ready_in_time_falls_back_to_the_generic_one(
    cascade_settings: Callable[..., Settings],
    standin: StandinOpenAI,
    utterances: dict[str, Utterance],
) -> None:
    settings = cascade_settings(caller_greeting_wait_ms=0)
    async with running_server(settings) as runtime:
        assert runtime.analysis is not None and runtime.memory is not None
        first = await place_call(
            settings.public_base_url,
            script(utterances, "greeting_reply", "goodbye"),
            auth_token=TWILIO_TOKEN,
            from_number=CALLER,
        )
        assert first.error is None
        assert await runtime.analysis.idle(20.0)
        # The speech stand-in is slow now: the personal greeting cannot be ready at once.
        standin.fail("speech", status=None, hang_s=2.0, times=1)
        second = await place_call(
            settings.public_base_url,
            script(utterances, "goodbye"),
            auth_token=TWILIO_TOKEN,
            from_number=CALLER,
        )
        assert second.error is None
        assert await runtime.writes.flush(5.0)
        again = await runtime.calls.get_call(second.call_sid)
        assert again is not None
        agent = runtime.agents["receptionist"]
        assert again.turns[0].text == agent.render_speech(agent.greeting)
        assert second.greeting_ms is not None and second.greeting_ms < 1000
        # And the model is not told a name the greeting did not use.
        dialogue = last_system_prompt(standin)
        assert "name ; their last contact with us: " in dialogue
