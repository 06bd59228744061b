"""The agent in text (SMS) mode: the same definition that speaks on calls, answering a thread.

An SMS thread outlives any process, so nothing is kept between messages: each reply starts
a fresh dialogue from the stored thread. The LLM reads the thread as its history. The
offline playbook keeps its state in the dialogue object instead, so its state is rebuilt by
replaying the thread's earlier messages (pure string matching: cheap and deterministic).

Sans-IO like the call session: no storage, no Twilio. Tools reach the outside world
through a TextTools port.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from prompts import AgentDefinition
from voice_agent.providers.base import (
    ChatMessage,
    Dialogue,
    DialogueEngine,
    ProviderError,
    TextDelta,
    TokenUsage,
    ToolCall,
)

log = logging.getLogger(__name__)

#: Appended to a voice prompt when the definition has no sms_system_prompt of its own.
SMS_MODE_NOTE = (
    "IMPORTANT: this conversation is NOT a phone call. You are texting by SMS. Ignore the "
    "instructions above about speaking aloud, transferring or ending the call. Write short "
    "plain-text messages (one to three sentences, no markdown). To involve a human, use the "
    "hand_off tool; to book a phone call, use the schedule_callback tool."
)
APOLOGY = "Sorry, I can't answer right now. A member of our team will get back to you shortly."
_MAX_TOOL_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class ThreadTurn:
    role: Literal["user", "assistant"]
    text: str


class TextTools(Protocol):
    """What the agent's SMS tools do, implemented by whoever owns the thread."""

    async def hand_off(self, reason: str) -> str:
        """Flag the thread for staff; the agent stops answering it. Returns the result."""
        ...

    async def schedule_callback(self, at: str | None, note: str) -> str:
        """Book an outbound call; returns the result the model reads (when, or an error)."""
        ...


@dataclass(slots=True)
class TextReply:
    text: str
    handed_off: bool = False
    #: Names of the tools run, in order (for logs and tests).
    tools: list[str] = field(default_factory=list)
    #: The provider failed and the text is an apology.
    failed: bool = False
    #: Tokens each model response was billed for (#14), for the caller to meter.
    usage: list[TokenUsage] = field(default_factory=list)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class TextAgent:
    """One reply to one SMS thread."""

    def __init__(
        self,
        agent: AgentDefinition,
        engine: DialogueEngine,
        *,
        replay: bool,
        variables: Mapping[str, str] | None = None,
        context: str = "",
    ) -> None:
        self._agent = agent
        self._engine = engine
        self._replay = replay
        self._variables = {**agent.links, **(variables or {})}
        self._context = context

    def text_definition(self) -> AgentDefinition:
        """The definition with its text-mode prompt and tools, as the LLM sees it."""
        agent = self._agent
        prompt = agent.sms_system_prompt or f"{agent.system_prompt}\n\n{SMS_MODE_NOTE}"
        notes = [self._context] if self._context else []
        if "send_link" in agent.sms_tools and agent.links:
            notes.append(
                "Links you can send with the send_link tool: " + ", ".join(sorted(agent.links))
            )
        if notes:
            prompt += "\n\n" + _escape("\n".join(notes))
        return replace(agent, system_prompt=prompt, tools=agent.sms_tools)

    async def reply(self, history: list[ThreadTurn], tools: TextTools) -> TextReply:
        """The agent's answer to `history`, which ends with the other party's message."""
        if self._replay:
            return await self._playbook_reply(history, tools)
        return await self._model_reply(history, tools)

    # --- LLM ------------------------------------------------------------------------------

    async def _model_reply(self, history: list[ThreadTurn], tools: TextTools) -> TextReply:
        dialogue = self._engine.start(self.text_definition(), self._variables)
        messages = [ChatMessage(turn.role, turn.text) for turn in history]
        result = TextReply("")
        parts: list[str] = []
        links: list[str] = []
        try:
            for _ in range(_MAX_TOOL_ROUNDS):
                text, calls = await _collect(dialogue, messages, result.usage)
                if text.strip():
                    parts.append(text.strip())
                if not calls:
                    break
                messages.append(ChatMessage("assistant", text or None, tool_calls=calls))
                for call in calls:
                    outcome = await self._run_tool(call, tools, links, result)
                    messages.append(ChatMessage("tool", outcome, tool_call_id=call.id))
        except ProviderError as exc:
            log.warning("sms reply: %s", exc)
            if not parts:
                result.failed = True
                parts.append(APOLOGY)
        text = " ".join(parts)
        if result.handed_off and not text:
            text = self._render(self._agent.sms_handoff)
        for url in links:
            if url not in text:
                text = f"{text}\n{url}" if text else url
        result.text = text
        return result

    async def _run_tool(
        self, call: ToolCall, tools: TextTools, links: list[str], result: TextReply
    ) -> str:
        result.tools.append(call.name)
        if call.name not in self._agent.sms_tools:
            return f"error: the tool {call.name} is not available in this conversation"
        if call.name == "hand_off":
            result.handed_off = True
            return await tools.hand_off(str(call.arguments.get("reason") or ""))
        if call.name == "schedule_callback":
            at = call.arguments.get("at")
            note = str(call.arguments.get("note") or "")
            return await tools.schedule_callback(str(at) if at else None, note)
        if call.name == "send_link":
            name = str(call.arguments.get("name") or "")
            url = self._agent.links.get(name)
            if url is None:
                known = ", ".join(sorted(self._agent.links))
                return f"error: no link named {name!r}; the links are: {known}"
            if url not in links:
                links.append(url)
            return f"the {name} link ({url}) will be added at the end of your message"
        return f"error: unknown tool {call.name}"

    # --- offline playbook ------------------------------------------------------------------

    async def _playbook_reply(self, history: list[ThreadTurn], tools: TextTools) -> TextReply:
        users = [turn.text for turn in history if turn.role == "user"]
        if not users:
            return TextReply("")
        first_contact = len(history) == 1
        if first_contact:
            return TextReply(self._render(self._agent.sms_greeting or self._agent.greeting))
        dialogue = self._engine.start(self._agent, self._variables)
        # The thread's first message was answered with the greeting, not by the playbook.
        earlier = users[1:-1] if history[0].role == "user" else users[:-1]
        try:
            for text in earlier:
                await _collect(dialogue, [ChatMessage("user", text)])
            said, calls = await _collect(dialogue, [ChatMessage("user", users[-1])])
        except ProviderError as exc:
            log.warning("sms reply: %s", exc)
            return TextReply(APOLOGY, failed=True)
        result = TextReply(said.strip())
        for call in calls:
            result.tools.append(call.name)
            if call.name == "transfer_call":
                # By text, "connecting you now" becomes a hand-off to staff.
                result.handed_off = True
                await tools.hand_off(str(call.arguments.get("reason") or "asked for a person"))
                result.text = self._render(self._agent.sms_handoff)
        return result

    def _render(self, template: str) -> str:
        return self._agent.render_speech(template, self._variables)


async def _collect(
    dialogue: Dialogue, history: list[ChatMessage], usage: list[TokenUsage] | None = None
) -> tuple[str, list[ToolCall]]:
    text: list[str] = []
    calls: list[ToolCall] = []
    async with contextlib.aclosing(dialogue.respond(history)) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ToolCall):
                calls.append(event)
            elif usage is not None:
                usage.append(event)
    return "".join(text), calls
