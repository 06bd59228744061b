"""The text-mode agent on its own, and the offline playbook answering by text."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from prompts import AgentDefinitionError, load_agents, parse_agent
from tests.app.twilio_side import sign
from tests.sms.conftest import reply_of, sms_params
from voice_agent.conversation.text_mode import TextAgent, ThreadTurn
from voice_agent.demo import running_server
from voice_agent.providers.base import Pipeline
from voice_agent.providers.offline.playbook import PlaybookEngine
from voice_agent.settings import Settings


class Tools:
    def __init__(self) -> None:
        self.handed_off: list[str] = []

    async def hand_off(self, reason: str) -> str:
        self.handed_off.append(reason)
        return "handed off"

    async def schedule_callback(self, at: str | None, note: str) -> str:
        return "error: not in this test"


def thread(*texts: str) -> list[ThreadTurn]:
    """Alternating turns, starting with the texter."""
    return [ThreadTurn("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts)]


async def test_playbook_walks_its_steps_by_text() -> None:
    agent = load_agents()["receptionist"]
    playbook = TextAgent(agent, PlaybookEngine(), replay=True)
    tools = Tools()

    greeting = await playbook.reply(thread("Hi there"), tools)
    assert greeting.text == (
        "Thanks for texting Acme Home Services, this is Joe. Who am I speaking with?"
    )
    history = thread("Hi there", greeting.text, "This is Maria Lopez")
    named = await playbook.reply(history, tools)
    assert named.text == "Nice to meet you, Maria. What can we help you with today?"
    history += [ThreadTurn("assistant", named.text), ThreadTurn("user", "My roof is leaking")]
    need = await playbook.reply(history, tools)
    assert need.text.endswith("Do you have a rough budget in mind for the project?")
    history += [ThreadTurn("assistant", need.text), ThreadTurn("user", "What are your hours?")]
    faq = await playbook.reply(history, tools)
    assert faq.text.startswith("We're open Monday to Friday")
    assert tools.handed_off == []


async def test_playbook_hand_off_when_a_person_is_asked_for() -> None:
    agent = load_agents()["receptionist"]
    tools = Tools()
    reply = await TextAgent(agent, PlaybookEngine(), replay=True).reply(
        thread("hello", "Thanks for texting...", "Can I talk to a real person?"), tools
    )
    assert reply.handed_off and tools.handed_off
    assert reply.text.startswith("Thanks! I've passed this to a project manager")


def test_text_definition_swaps_prompt_and_tools() -> None:
    agent = load_agents()["receptionist"]
    text = TextAgent(agent, PlaybookEngine(), replay=False, context="Now: {noon}").text_definition()
    assert text.tools == ("hand_off", "schedule_callback", "send_link")
    assert "text messages (SMS)" in text.system_prompt
    assert "Links you can send with the send_link tool: booking" in text.system_prompt
    # Context is data, not a template: braces in it survive rendering.
    assert "Now: {noon}" in text.render(text.system_prompt)


BASE = """
slug = "tt"
name = "T"
direction = "inbound"
persona = "p"
system_prompt = "s"
greeting = "g"
goodbye = "b"
fallback = "f"
tools = ["end_call"]
"""


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('[links]\nbooking = "ftp://x"', "links.booking: 'ftp://x' is not an http(s) URL"),
        ('[links]\nBad = "https://x.example"', "links.Bad: name must be lowercase"),
        ('sms_tools = ["send_link"]', "'send_link' needs at least one entry in [links]"),
        ('sms_tools = ["transfer_call"]', "sms_tools: unknown tool 'transfer_call'"),
        ('followup_sms = "see {nope}"', "followup_sms: placeholder {nope} is not declared"),
        (
            '[variables]\nbooking = "x"\n[links]\nbooking = "https://x.example"',
            "links.booking: is also a variable name",
        ),
    ],
)
def test_sms_fields_are_validated(extra: str, problem: str) -> None:
    with pytest.raises(AgentDefinitionError) as error:
        parse_agent(BASE + "\n" + extra, source="t.toml")
    assert problem in str(error.value)


def test_links_are_template_variables() -> None:
    agent = parse_agent(
        BASE + 'followup_sms = "Book: {booking}"\n[links]\nbooking = "https://b.example/x"'
    )
    assert agent.render(agent.followup_sms, agent.links) == "Book: https://b.example/x"


async def test_offline_server_answers_texts_with_the_playbook(
    make_settings: Callable[..., Settings], offline_pipeline: Pipeline
) -> None:
    pipeline = offline_pipeline
    settings = make_settings()
    assert settings.pipeline == "offline"
    url = settings.public_base_url + "/twilio/sms"
    async with (
        running_server(settings, pipeline=pipeline) as runtime,
        httpx.AsyncClient(timeout=10.0) as http,
    ):

        async def text(body: str) -> str | None:
            params = sms_params(body)
            headers = {"X-Twilio-Signature": sign(url, params)}
            return reply_of(await http.post(url, data=params, headers=headers))

        assert await text("Hi") == (
            "Thanks for texting Acme Home Services, this is Joe. Who am I speaking with?"
        )
        assert await text("I'm Sam") == ("Nice to meet you, Sam. What can we help you with today?")
        assert await text("stop") is None
        assert await runtime.opt_outs.is_opted_out("default", sms_params("")["From"])
