"""The offline playbook dialogue, driven turn by turn as the session drives it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from prompts import AgentDefinition, load_agents, parse_agent
from voice_agent.providers.base import (
    ChatMessage,
    Dialogue,
    DialogueEngine,
    TextDelta,
    ToolCall,
)
from voice_agent.providers.offline.playbook import MAX_ATTEMPTS, Phase, PlaybookEngine

AGENTS = load_agents()
RECEPTIONIST = AGENTS["receptionist"]
LEAD_QUALIFIER = AGENTS["lead_qualifier"]

DEMO_SCRIPT = [
    "Hi, my name is Sarah Johnson.",
    "I need help with a leaking roof at my house.",
    "My budget is about five thousand dollars.",
    "Sometime in the next two weeks would be great.",
    "What are your opening hours?",
    "Sorry, wait a second.",
    "No thanks, that's all for today. Goodbye.",
]
# The same caller as tiny.en may hear them: no capitals or punctuation, digits.
WHISPER_SCRIPT = [
    "hi my name is sarah johnson",
    "i need help with a leaking roof at my house",
    "my budget is about $5,000",
    "sometime in the next 2 weeks would be great",
    "what are your opening hours",
    "sorry wait a second",
    "no thanks that's all for today goodbye",
]


@dataclass
class Reply:
    pieces: list[str]
    tool: ToolCall | None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass
class Call:
    """Plays the session's part: keeps the history and collects each reply."""

    agent: AgentDefinition
    variables: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        engine = PlaybookEngine()
        self.dialogue = engine.start(self.agent, self.variables)
        self.history = [
            ChatMessage("system", self.agent.render(self.agent.system_prompt, self.variables)),
            ChatMessage("assistant", self.agent.render_speech(self.agent.greeting, self.variables)),
        ]

    async def turn(self, content: str | None, role: str = "user") -> Reply:
        self.history.append(ChatMessage(role, content))  # type: ignore[arg-type]
        pieces: list[str] = []
        tool: ToolCall | None = None
        async for event in self.dialogue.respond(self.history):
            assert tool is None, "nothing may follow the tool call"
            if isinstance(event, TextDelta):
                pieces.append(event.text)
            else:
                assert isinstance(event, ToolCall)
                tool = event
        reply = Reply(pieces, tool)
        if reply.text or tool:
            self.history.append(
                ChatMessage("assistant", reply.text, tool_calls=[tool] if tool else [])
            )
        return reply

    async def say(self, *lines: str) -> list[Reply]:
        return [await self.turn(line) for line in lines]


def test_engine_and_dialogue_meet_the_protocols() -> None:
    engine = PlaybookEngine()
    assert isinstance(engine, DialogueEngine)
    assert isinstance(engine.start(RECEPTIONIST, {}), Dialogue)


@pytest.mark.parametrize("script", [DEMO_SCRIPT, WHISPER_SCRIPT], ids=["fixture", "whisper"])
async def test_demo_script_ends_the_call(script: list[str]) -> None:
    call = Call(RECEPTIONIST)
    replies = await call.say(*script)
    name, need, budget, timing, hours, wait, bye = replies

    assert name.text == "Nice to meet you, Sarah. What can we help you with today?"
    assert need.text.endswith("Do you have a rough budget in mind for the project?")
    assert budget.text.startswith("Thanks, about $5,000")
    assert budget.text.endswith("when are you hoping to get the work done?")
    assert timing.text.endswith(RECEPTIONIST.transfer_offer)
    assert hours.text.startswith("We're open Monday to Friday")
    assert hours.text.endswith(RECEPTIONIST.transfer_offer)
    assert wait.text == "Sure, take your time." and wait.tool is None
    assert "project manager will call you back" in bye.text
    assert bye.text.endswith("Thanks for calling Acme Home Services, Sarah. Have a great day!")
    assert bye.tool is not None and bye.tool.name == "end_call"
    assert all(r.tool is None for r in replies[:-1])

    slots = call.dialogue.slots
    assert slots["name"] == "Sarah Johnson"
    assert "5,000" in slots["budget"]
    assert slots["timing"] in ("in the next two weeks", "in the next 2 weeks")
    assert "leaking roof" in slots["need"].lower()
    assert call.dialogue.outcome == "declined"
    assert call.dialogue.phase is Phase.ENDED
    # Once the call is over, further turns get nothing.
    after = await call.turn("hello?")
    assert after.text == "" and after.tool is None


async def test_reply_streams_sentence_by_sentence() -> None:
    call = Call(RECEPTIONIST)
    reply = await call.turn("Hi, my name is Sarah Johnson.")
    assert reply.pieces == ["Nice to meet you, Sarah. ", "What can we help you with today?"]


async def test_faq_mid_flow_answers_and_reasks_the_current_question() -> None:
    call = Call(RECEPTIONIST)
    await call.say("This is Mike.")
    reply = await call.turn("Do you guys cover Shelbyville? What area do you serve?")
    assert reply.text == (
        "We serve the greater Springfield area, up to about 30 miles from downtown. "
        "What can we help you with today?"
    )
    price = await call.turn("how much does a roof repair cost")
    assert price.text.startswith("Estimates are free.")
    assert price.text.endswith("What can we help you with today?")
    emergency = await call.turn("Do you do emergency service?")
    assert "24/7" in emergency.text
    # The question was not taken as the answer.
    assert "need" not in call.dialogue.slots


async def test_statement_with_an_faq_keyword_is_still_an_answer() -> None:
    call = Call(RECEPTIONIST)
    await call.turn("Sarah")
    reply = await call.turn("It's an emergency, water is coming through the ceiling")
    assert reply.text.startswith("Got it")
    assert call.dialogue.slots["need"].startswith("It's an emergency")
    # "emergency" also told us the timing, so that question is skipped.
    assert call.dialogue.slots["timing"] == "as soon as possible"
    budget = await call.turn("no idea, maybe 2 grand")
    assert budget.text.endswith(RECEPTIONIST.transfer_offer)


async def test_answers_given_early_are_not_asked_again() -> None:
    call = Call(RECEPTIONIST)
    await call.turn("Sarah Johnson")
    reply = await call.turn("A new roof, I have about 15k and want it done next month")
    assert call.dialogue.slots["budget"] == "about $15,000"
    assert call.dialogue.slots["timing"] == "next month"
    assert reply.text.endswith(RECEPTIONIST.transfer_offer)


async def test_transfer_on_request_mid_flow() -> None:
    call = Call(RECEPTIONIST)
    await call.turn("my name is sarah")
    reply = await call.turn("Can I just speak to a real person please?")
    assert reply.text == "Great, connecting you now."
    assert reply.tool is not None and reply.tool.name == "transfer_call"
    assert reply.tool.arguments == {"to": "+15550100200", "reason": "caller_request"}
    assert call.dialogue.outcome == "transferred"
    # The session reports the transfer result; nothing more is said.
    done = await call.turn(json.dumps({"ok": True}), role="tool")
    assert done.text == "" and done.tool is None


async def test_transfer_by_dtmf_zero() -> None:
    call = Call(RECEPTIONIST)
    reply = await call.turn("[DTMF 0]")
    assert reply.tool is not None and reply.tool.name == "transfer_call"


async def test_yes_to_the_offer_transfers() -> None:
    call = Call(RECEPTIONIST)
    await call.say("Sarah", "new gutters", "$800", "this week")
    reply = await call.turn("Yes please.")
    assert reply.tool is not None and reply.tool.name == "transfer_call"
    assert reply.tool.arguments["reason"] == "accepted_offer"


async def test_no_to_the_offer_wraps_up_and_ends() -> None:
    call = Call(RECEPTIONIST)
    await call.say("Sarah", "new gutters", "$800", "this week")
    reply = await call.turn("no")
    assert reply.text.startswith("No problem. I've passed your details to the team")
    assert reply.tool is not None and reply.tool.name == "end_call"
    assert call.dialogue.outcome == "declined"


async def test_failed_transfer_apologises_and_continues() -> None:
    call = Call(RECEPTIONIST)
    await call.turn("Sarah")
    await call.turn("human")
    reply = await call.turn(json.dumps({"ok": False, "error": "busy"}), role="tool")
    assert reply.text.startswith("I can't connect you right now")
    assert reply.text.endswith("What can we help you with today?")
    assert call.dialogue.phase is Phase.STEPS and call.dialogue.outcome is None
    # At the offer there is nothing left to ask, so the call ends politely instead.
    await call.say("new gutters", "$800", "this week")
    await call.turn("yes")
    last = await call.turn("Error: transfer failed", role="tool")
    assert last.tool is not None and last.tool.name == "end_call"


async def test_transfer_unavailable_without_the_tool() -> None:
    agent = parse_agent(
        """
        slug = "solo"
        name = "Solo"
        direction = "inbound"
        persona = "p"
        system_prompt = "s"
        greeting = "Hi. What is your name?"
        goodbye = "Bye."
        fallback = "Sorry?"
        wrap_up = "We'll call you."
        tools = ["end_call"]
        [[steps]]
        id = "name"
        slot = "name"
        ask = "What is your name?"
        extract = "name"
        """
    )
    call = Call(agent)
    reply = await call.turn("operator")
    assert reply.tool is None
    assert reply.text.startswith("I can't connect you right now")
    assert reply.text.endswith("What is your name?")
    # With no transfer to offer, finishing the steps ends the call.
    done = await call.turn("I'm Pat")
    assert done.text == "We'll call you. Bye."
    assert done.tool is not None and done.tool.name == "end_call"
    assert call.dialogue.outcome == "completed"


@pytest.mark.parametrize("noise", ["", None, "   ", "um", "Thank you.", "[BLANK_AUDIO]", "..."])
async def test_empty_or_noise_reprompts(noise: str | None) -> None:
    call = Call(RECEPTIONIST)
    await call.turn("Sarah")
    reply = await call.turn(noise)
    assert reply.text == RECEPTIONIST.steps[1].reprompt
    assert reply.tool is None


async def test_garbage_reprompts_then_moves_on() -> None:
    call = Call(RECEPTIONIST)
    await call.say("Sarah", "a new fence")
    for _ in range(MAX_ATTEMPTS):
        reply = await call.turn("purple monkey dishwasher")
        assert reply.text == RECEPTIONIST.steps[2].reprompt
    skipped = await call.turn("purple monkey dishwasher")
    assert (
        skipped.text
        == "No problem, let's keep going. And when are you hoping to get the work done?"
    )
    assert "budget" not in call.dialogue.slots


async def test_offer_not_understood_repeats_the_offer() -> None:
    call = Call(RECEPTIONIST)
    await call.say("Sarah", "a new fence", "5k", "next week")
    reply = await call.turn("purple monkey dishwasher")
    assert reply.text == f"Sorry, I didn't quite catch that. {RECEPTIONIST.transfer_offer}"
    again = await call.turn("sorry?")
    assert again.text == RECEPTIONIST.transfer_offer


async def test_unrelated_dtmf_reprompts() -> None:
    call = Call(RECEPTIONIST)
    reply = await call.turn("[DTMF 5]")
    assert reply.text == RECEPTIONIST.steps[0].reprompt


async def test_interruption_during_a_text_step_is_not_taken_as_the_answer() -> None:
    call = Call(RECEPTIONIST)
    await call.turn("Sarah")
    assert (await call.turn("hold on")).text == "Sure, take your time."
    assert (await call.turn("sorry, can you repeat that?")).text == RECEPTIONIST.steps[1].ask
    assert "need" not in call.dialogue.slots


async def test_trimmed_history_after_barge_in_just_continues() -> None:
    call = Call(RECEPTIONIST)
    await call.turn("Sarah")
    # The caller cut the agent off: the session trimmed the reply to what was heard.
    call.history[-1] = ChatMessage("assistant", "Nice to meet")
    reply = await call.turn("I need my deck repaired")
    assert reply.text.endswith(RECEPTIONIST.steps[2].ask)


async def test_goodbye_early_ends_without_a_callback_promise() -> None:
    call = Call(RECEPTIONIST)
    reply = await call.turn("Oh sorry, wrong number. Bye.")
    assert reply.text == "Thanks for calling Acme Home Services. Have a great day!"
    assert reply.tool is not None and reply.tool.name == "end_call"
    assert call.dialogue.outcome == "goodbye"


async def test_weak_goodbye_inside_an_answer_is_an_answer() -> None:
    call = Call(RECEPTIONIST)
    await call.turn("Sarah")
    reply = await call.turn("I just need the gutters cleaned, that's all")
    assert reply.tool is None
    assert call.dialogue.slots["need"].startswith("I just need the gutters cleaned")


async def test_greeting_when_asked_to_open_the_call() -> None:
    dialogue = PlaybookEngine().start(LEAD_QUALIFIER, {"first_name": "Dana"})
    events = [e async for e in dialogue.respond([ChatMessage("system", "prompt")])]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text.startswith("Hi Dana, this is Joe from Acme Home Services")


async def test_lead_qualifier_walks_to_a_booking() -> None:
    call = Call(LEAD_QUALIFIER, {"first_name": "Dana", "last_name": "Reyes"})
    assert call.history[1].content.startswith("Hi Dana, this is Joe")  # type: ignore[union-attr]
    good_time, _need, budget, timing = await call.say(
        "Yeah, sure.",
        "We want to redo the kitchen.",
        "somewhere around 30 to 40 thousand",
        "by the end of the summer",
    )
    assert good_time.text.endswith(LEAD_QUALIFIER.steps[1].ask)
    assert budget.text.startswith("Thanks, $30,000 to $40,000")
    assert timing.text.endswith(LEAD_QUALIFIER.transfer_offer)
    reply = await call.turn("I'd rather book the free estimate")
    assert reply.text.startswith("Great. Our scheduling team will text you")
    assert reply.text.endswith("Thanks for your time, Dana. Have a great day!")
    assert reply.tool is not None and reply.tool.name == "end_call"
    assert call.dialogue.outcome == "booked"
    assert call.dialogue.slots == {
        "good_time": "yes",
        "need": "We want to redo the kitchen.",
        "budget": "$30,000 to $40,000",
        "timing": "by the end of the summer",
    }


async def test_lead_qualifier_not_a_good_time_ends_politely() -> None:
    call = Call(LEAD_QUALIFIER, {})
    assert call.history[1].content.startswith("Hi, this is Joe")  # type: ignore[union-attr]
    reply = await call.turn("No, not really, I'm driving.")
    assert reply.text == (
        "No problem at all, I'll try you another time. Thanks for your time. Have a great day!"
    )
    assert reply.tool is not None and reply.tool.name == "end_call"
    assert call.dialogue.outcome == "not_now"


async def test_lead_qualifier_who_is_calling() -> None:
    call = Call(LEAD_QUALIFIER, {"first_name": "Dana"})
    reply = await call.turn("Sorry, who is this?")
    assert reply.text.startswith("I'm Joe from Acme Home Services.")
    assert reply.text.endswith(LEAD_QUALIFIER.steps[0].ask)
