"""The portal's text tester (#13): one reply of a draft agent by text, on the same
dialogue engine as SMS, with tools that only say what they would have done."""

from __future__ import annotations

from collections.abc import Sequence

from prompts import AgentDefinition
from voice_agent.conversation.text_mode import TextAgent, TextReply, ThreadTurn
from voice_agent.providers.base import Pipeline


class TryoutTools:
    """SMS tools in the tester do nothing outside: they say what would have happened."""

    async def hand_off(self, reason: str) -> str:
        return f"(test) handed to staff: {reason}"

    async def schedule_callback(self, at: str | None, note: str) -> str:
        return f"(test) callback booked for {at or 'soon'}"

    async def send_link(self, name: str) -> str:  # pragma: no cover - model-driven
        return f"(test) link {name} sent"


async def try_text(
    agent: AgentDefinition, pipeline: Pipeline, history: Sequence[tuple[str, str]]
) -> TextReply:
    """`agent`'s answer to `history` ((role, text) pairs, "user" or "assistant", ending
    with the user's); the offline pipeline replays its playbook, as SMS does."""
    turns = [
        ThreadTurn("assistant" if role == "assistant" else "user", text) for role, text in history
    ]
    text_agent = TextAgent(agent, pipeline.dialogue, replay=pipeline.name == "offline")
    return await text_agent.reply(turns, TryoutTools())  # type: ignore[arg-type]
