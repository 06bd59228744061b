"""The scripted dialogue engine that stands in for the LLM when there is no API key.

It walks the agent definition's steps (ask, read the answer, acknowledge, ask the next),
answers FAQ questions by keyword, offers the transfer at the end and uses the same
`end_call` / `transfer_call` tools an LLM would. It is pure string matching, cheap
enough to run inline on the event loop.

Per caller turn, in priority order: goodbye, request for a person (or DTMF 0), the
pending transfer offer, an FAQ question, the answer to the current step, a request to
wait or repeat, and finally a reprompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Mapping
from enum import Enum

from prompts import AgentDefinition, FaqEntry, PlaybookStep
from voice_agent.providers.base import ChatMessage, DialogueEvent, TextDelta, ToolCall
from voice_agent.providers.offline.extractors import (
    EXTRACTORS,
    extract_money,
    extract_timeframe,
)
from voice_agent.providers.offline.intents import (
    GOODBYE_WEAK,
    Utterance,
    goodbye_strength,
    normalise,
    parse_utterance,
    wants_booking,
    wants_hold,
    wants_person,
    wants_repeat,
    yes_or_no,
)

#: Failed attempts at one step before moving on without the answer, so a caller the
#: recogniser keeps mishearing is not stuck in a loop.
MAX_ATTEMPTS = 2
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
#: Timeframes too vague to fill a later question from an answer to an earlier one.
_VAGUE_TIMES = frozenset({"not sure yet", "flexible, no rush", "soon"})


class Phase(Enum):
    STEPS = "steps"  # asking the playbook's questions
    OFFER = "offer"  # transfer (or booking) offered, waiting for the answer
    OPEN = "open"  # nothing left to ask: answer questions until goodbye
    TRANSFERRING = "transferring"  # transfer_call emitted, waiting for its result
    ENDED = "ended"  # end_call emitted


Reply = tuple[list[str], ToolCall | None]


class PlaybookEngine:
    """DialogueEngine for the offline pipeline."""

    def start(self, agent: AgentDefinition, variables: Mapping[str, str]) -> PlaybookDialogue:
        return PlaybookDialogue(agent, variables)


class PlaybookDialogue:
    """One call's scripted conversation. State lives here; `history` is only read for the
    latest caller turn, so a reply trimmed by barge-in needs no repair."""

    def __init__(self, agent: AgentDefinition, variables: Mapping[str, str]) -> None:
        self.agent = agent
        self._variables = dict(variables)
        self._slots: dict[str, str] = {}
        self._step = 0
        self._attempts = 0
        self._tool_calls = 0
        self._greeted = False
        self._resume: Phase = Phase.STEPS
        self._faq = [(entry, tuple(normalise(k) for k in entry.keywords)) for entry in agent.faq]
        self._remember_caller()
        self.phase = Phase.STEPS if self._step < len(agent.steps) else self._after_steps_phase()
        #: How the call ended, for the post-call summary: "transferred", "booked",
        #: "declined", "not_now", "goodbye" or "completed"; None while it goes on.
        self.outcome: str | None = None

    def _remember_caller(self) -> None:
        """A returning caller greeted by name is not asked for it again: the name step is
        answered from caller memory and the greeting asks the next question."""
        known = self._variables.get("caller_name", "")
        if not (known and self.agent.returning_greeting):
            return
        for step in self.agent.steps:
            if step.extract == "name":
                self._slots[step.slot] = known
        while (
            self._step < len(self.agent.steps) and self.agent.steps[self._step].slot in self._slots
        ):
            self._step += 1

    @property
    def slots(self) -> dict[str, str]:
        """Answers collected so far, keyed by step slot."""
        return dict(self._slots)

    async def respond(self, history: list[ChatMessage]) -> AsyncGenerator[DialogueEvent, None]:
        sentences, tool = self._reply(history)
        pieces = [p for s in sentences for p in _SENTENCE_END.split(s) if p]
        for i, piece in enumerate(pieces):
            yield TextDelta(piece if i == len(pieces) - 1 else piece + " ")
        if tool is not None:
            yield tool

    # --- turn handling ----------------------------------------------------------------

    def _reply(self, history: list[ChatMessage]) -> Reply:
        if self.phase is Phase.ENDED:
            return [], None
        last = history[-1] if history else None
        if last is None or (
            not self._greeted and not any(m.role in ("user", "assistant") for m in history)
        ):
            # Asked to open the call (the session usually speaks the greeting itself).
            self._greeted = True
            return [self._say(self.agent.greeting_for(self._variables))], None
        self._greeted = True
        if last.role == "tool":
            return self._after_tool(last)
        if last.role != "user":
            return [], None
        return self._on_turn(parse_utterance(last.content))

    def _on_turn(self, turn: Utterance) -> Reply:
        if self.phase is Phase.TRANSFERRING:
            # The caller spoke before the transfer result came back; keep them company.
            return [self._say(self.agent.transferring)], None
        step = self._current_step()
        bye = goodbye_strength(turn)
        if bye == "strong":
            if self.phase is Phase.OFFER:
                return self._finish("declined", wrap_up=True)
            return self._finish("goodbye", wrap_up=self._worth_wrapping_up())
        if bye == "weak" and not self._answers_despite_goodbye(turn, step):
            if self.phase is Phase.OFFER:
                return self._finish("declined", wrap_up=True)
            return self._finish("goodbye", wrap_up=self._worth_wrapping_up())
        if wants_person(turn):
            return self._transfer("caller_request")
        if self.phase is Phase.OFFER:
            return self._at_offer(turn)
        if step is not None:
            return self._at_step(step, turn)
        faq = self._faq_match(turn)
        if faq is not None:
            return [self._say(faq.answer)], None
        if wants_hold(turn):
            return [self._say(self.agent.hold)], None
        return [self._say(self.agent.fallback)], None

    def _answers_despite_goodbye(self, turn: Utterance, step: PlaybookStep | None) -> bool:
        """ "no thanks" answers a pending yes/no question, and "I need the gutters
        cleaned, that's all" still answers the question; neither is a goodbye."""
        if self.phase is Phase.OFFER:
            return yes_or_no(turn) == "yes"
        if step is None:
            return False
        if step.extract == "yes_no":
            return True
        rest = turn.without(GOODBYE_WEAK)
        return EXTRACTORS[step.extract](rest) is not None

    def _at_step(self, step: PlaybookStep, turn: Utterance) -> Reply:
        specific = step.extract in ("name", "money", "timeframe")
        value = (
            None
            if turn.dtmf is not None and step.extract != "yes_no"
            else EXTRACTORS[step.extract](turn)
        )
        faq = self._faq_match(turn)
        if faq is not None and (turn.is_question or value is None):
            return [self._say(faq.answer), self._say(step.ask)], None
        if value is None or not specific:
            if wants_hold(turn):
                return [self._say(self.agent.hold)], None
            if wants_repeat(turn):
                return [self._say(step.ask)], None
        if value is None:
            self._attempts += 1
            if self._attempts <= MAX_ATTEMPTS:
                return [self._say(step.reprompt)], None
            return self._advance([self._say(self.agent.skip)])

        if step.extract == "yes_no" and value == "no" and step.decline:
            self._slots[step.slot] = value
            self.phase = Phase.ENDED
            self.outcome = "not_now"
            return [self._say(step.decline), self._say(self.agent.goodbye)], self._tool(
                "end_call", {"reason": "not_now"}
            )
        self._slots[step.slot] = value
        self._fill_ahead(turn)
        return self._advance([self._say(step.ack)] if step.ack else [])

    def _fill_ahead(self, turn: Utterance) -> None:
        """Take answers to later questions given early ("a new roof, about 10k, ASAP")
        so the caller is not asked again; only for unambiguous money and dates."""
        for later in self.agent.steps[self._step + 1 :]:
            if later.slot in self._slots:
                continue
            if later.extract == "money":
                value = extract_money(turn, strict=True)
            elif later.extract == "timeframe":
                value = extract_timeframe(turn)
                value = None if value in _VAGUE_TIMES else value
            else:
                continue
            if value is not None:
                self._slots[later.slot] = value

    def _advance(self, said: list[str]) -> Reply:
        """Move to the next unanswered step, or to the offer when none is left."""
        self._attempts = 0
        self._step += 1
        while (
            self._step < len(self.agent.steps) and self.agent.steps[self._step].slot in self._slots
        ):
            self._step += 1
        if self._step < len(self.agent.steps):
            return [*said, self._say(self.agent.steps[self._step].ask)], None
        self.phase = self._after_steps_phase()
        if self.phase is Phase.OFFER:
            return [*said, self._say(self.agent.transfer_offer)], None
        self.phase = Phase.ENDED
        self.outcome = "completed"
        return [*said, self._say(self.agent.wrap_up), self._say(self.agent.goodbye)], self._tool(
            "end_call", {"reason": "completed"}
        )

    def _at_offer(self, turn: Utterance) -> Reply:
        offer = self._say(self.agent.transfer_offer)
        if self.agent.booking_confirmation and wants_booking(turn):
            self.phase = Phase.ENDED
            self.outcome = "booked"
            return [
                self._say(self.agent.booking_confirmation),
                self._say(self.agent.goodbye),
            ], self._tool("end_call", {"reason": "booked"})
        faq = self._faq_match(turn)
        if faq is not None and turn.is_question:
            return [self._say(faq.answer), offer], None
        if wants_hold(turn):
            return [self._say(self.agent.hold)], None
        if wants_repeat(turn):
            return [offer], None
        answer = yes_or_no(turn)
        if answer == "yes":
            return self._transfer("accepted_offer")
        if answer == "no":
            return self._finish("declined", wrap_up=True)
        if faq is not None:
            return [self._say(faq.answer), offer], None
        return [self._say(self.agent.fallback), offer], None

    # --- endings ----------------------------------------------------------------------

    def _transfer(self, reason: str) -> Reply:
        number = self._say(self.agent.transfer_number or "")
        if "transfer_call" not in self.agent.tools or not number:
            return [self._say(self.agent.transfer_unavailable), *self._question()], None
        self._resume = self.phase
        self.phase = Phase.TRANSFERRING
        self.outcome = "transferred"
        return [self._say(self.agent.transferring)], self._tool(
            "transfer_call", {"to": number, "reason": reason}
        )

    def _after_tool(self, result: ChatMessage) -> Reply:
        if self.phase is not Phase.TRANSFERRING or not _failed(result.content):
            return [], None
        # The transfer did not go through: apologise, then carry on where we were.
        self.outcome = None
        self.phase = self._resume
        if self.phase is Phase.STEPS and self._current_step() is not None:
            return [self._say(self.agent.transfer_unavailable), *self._question()], None
        self.phase = Phase.ENDED
        self.outcome = "goodbye"
        return [
            self._say(self.agent.transfer_unavailable),
            self._say(self.agent.goodbye),
        ], self._tool("end_call", {"reason": "transfer_failed"})

    def _finish(self, outcome: str, wrap_up: bool) -> Reply:
        self.phase = Phase.ENDED
        self.outcome = outcome
        said = [self._say(self.agent.wrap_up)] if wrap_up and self.agent.wrap_up else []
        return [*said, self._say(self.agent.goodbye)], self._tool("end_call", {"reason": outcome})

    def _worth_wrapping_up(self) -> bool:
        # A callback promise only makes sense once we know what the caller needs.
        return self.phase is Phase.OFFER or any(
            step.extract == "text" and step.slot in self._slots for step in self.agent.steps
        )

    # --- helpers ----------------------------------------------------------------------

    def _after_steps_phase(self) -> Phase:
        can_transfer = "transfer_call" in self.agent.tools and bool(self.agent.transfer_number)
        return Phase.OFFER if self.agent.transfer_offer and can_transfer else Phase.OPEN

    def _current_step(self) -> PlaybookStep | None:
        if self.phase is Phase.STEPS and self._step < len(self.agent.steps):
            return self.agent.steps[self._step]
        return None

    def _question(self) -> list[str]:
        step = self._current_step()
        if step is not None:
            return [self._say(step.ask)]
        if self.phase is Phase.OFFER:
            return [self._say(self.agent.transfer_offer)]
        return []

    def _faq_match(self, turn: Utterance) -> FaqEntry | None:
        best: FaqEntry | None = None
        best_score = 0
        padded = turn.padded
        for entry, keywords in self._faq:
            score = sum(1 for k in keywords if f" {k} " in padded)
            if score > best_score:
                best, best_score = entry, score
        return best

    def _say(self, template: str) -> str:
        values = {**self._variables, **self._slots}
        for step in self.agent.steps:
            if step.extract == "name" and step.slot in self._slots:
                values["first_name"] = self._slots[step.slot].split()[0]
        return self.agent.render_speech(template, values)

    def _tool(self, name: str, arguments: dict[str, str]) -> ToolCall:
        self._tool_calls += 1
        return ToolCall(id=f"playbook_{self._tool_calls}", name=name, arguments=arguments)


def _failed(content: str | None) -> bool:
    """Read a tool result: JSON with "ok": false or an "error" key, or text saying so."""
    text = (content or "").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data.get("ok") is False or bool(data.get("error"))
    lowered = text.lower()
    return lowered.startswith("error") or "fail" in lowered
