"""Agent definitions as data: one file drives both the LLM prompt and the offline playbook."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

Extractor = Literal["name", "text", "money", "timeframe", "yes_no"]
FieldType = Literal["string", "number", "boolean", "enum"]
#: Offline ways to fill a field that no single playbook slot holds.
Derivation = Literal["interest", "caller_name"]


@dataclass(frozen=True, slots=True)
class PlaybookStep:
    """One thing the agent asks for, in order."""

    id: str
    #: Key the answer is stored under (also a prompt variable once collected).
    slot: str
    #: What the agent says to ask.
    ask: str
    #: How the answer is read from the caller's words.
    extract: Extractor = "text"
    #: Said when the answer could not be read.
    reprompt: str = "Sorry, could you say that again?"
    #: Said before the next question once the slot is filled; may use {slot} variables.
    ack: str = ""
    #: yes_no steps only: said when the answer is "no"; the call then ends politely
    #: (e.g. "not a good time" on an outbound call). Empty: "no" is simply recorded.
    decline: str = ""


@dataclass(frozen=True, slots=True)
class FaqEntry:
    question: str
    answer: str
    #: Words or short phrases that, heard in the caller's turn, select this answer.
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AnalysisField:
    """One structured field the post-call analysis extracts from a finished call."""

    name: str
    type: FieldType
    #: What the field means; the model reads it, staff see it as the field's label.
    description: str
    #: enum fields only: the allowed values.
    values: tuple[str, ...] = ()
    #: Offline: the playbook slot whose answer fills the field.
    slot: str | None = None
    #: Offline: a rule instead of a slot. "interest": high/medium/low from the outcome;
    #: "caller_name": the name we know the other party by (their lead, caller memory).
    derive: Derivation | None = None


@dataclass(frozen=True, slots=True)
class AnalysisSchema:
    """What a finished call's analysis holds besides its summary and outcome."""

    fields: tuple[AnalysisField, ...] = ()
    #: Extra guidance for the model (what counts as qualified for this business).
    instructions: str = ""

    def json_schema(self, outcomes: tuple[str, ...]) -> dict[str, object]:
        """The structured-output schema (OpenAI strict mode: every property required,
        no others; a field the call did not reveal is null)."""
        properties: dict[str, object] = {}
        for item in self.fields:
            if item.type == "enum":
                spec: dict[str, object] = {"type": ["string", "null"], "enum": [*item.values, None]}
            else:
                spec = {"type": [item.type, "null"]}
            properties[item.name] = spec | {"description": item.description}
        return {
            "type": "object",
            "properties": {
                "summary": {
                    "type": "string",
                    "description": "Two or three sentences for staff: who called, what "
                    "they wanted, what was agreed.",
                },
                "outcome": {"type": "string", "enum": list(outcomes)},
                "fields": {
                    "type": "object",
                    "properties": properties,
                    "required": [item.name for item in self.fields],
                    "additionalProperties": False,
                },
            },
            "required": ["summary", "outcome", "fields"],
            "additionalProperties": False,
        }


@dataclass(frozen=True, slots=True)
class TurnTaking:
    """When the caller's turn is over, and what counts as an interruption (#18).

    ``text_aware`` off: a turn ends after a fixed silence (``silence_ms``, or the
    server's ENDPOINTING_SILENCE_MS when 0). On: at ``speculation_ms`` into a pause the
    turn so far is transcribed, and the wait becomes ``min_wait_ms`` when it reads as
    finished, ``max_wait_ms`` when it is visibly going on (a trailing "and", half a
    phone number), ``likely_wait_ms`` for a finished sentence that may be the first of
    several, the silence wait otherwise. ``interruption_min_ms``: voice needed to
    interrupt the agent (0: the server's BARGE_IN_MIN_MS).

    ``resume_on_backchannel`` on: caller voice while the agent speaks clears the line but
    keeps the reply; when the caller stops, their transcript decides: nothing, or only a
    backchannel ("uh-huh", "okay"), resumes the agent where it stopped; words take the
    turn. Off: any voice past ``interruption_min_ms`` stops the reply for good.
    ``early_llm`` (with ``text_aware``): a pause judged finished starts the model's reply
    at once; it is held until the turn ends, and dropped if the caller goes on.
    """

    text_aware: bool = False
    speculation_ms: int = 100
    min_wait_ms: int = 200
    max_wait_ms: int = 1500
    #: For a finished sentence that may be the first of several (see turn_end "likely");
    #: 0: the silence wait. 1100 is the benchmark's best (loadtest/turns, README).
    likely_wait_ms: int = 1100
    silence_ms: int = 0
    interruption_min_ms: int = 0
    resume_on_backchannel: bool = True
    early_llm: bool = True


@dataclass(frozen=True, slots=True)
class AgentDefinition:
    slug: str
    name: str
    direction: Literal["inbound", "outbound"]
    persona: str
    #: System prompt template; {variables} are filled per call (missing ones stay empty).
    system_prompt: str
    greeting: str
    goodbye: str
    #: Said when nothing in the caller's turn can be understood.
    fallback: str
    #: Offered when the playbook is done (or when the caller asks for a person).
    transfer_offer: str = ""
    transfer_number: str | None = None
    voicemail: str = ""
    #: The TTS voice for any pipeline; ``voices`` overrides it per pipeline. An AgentBook
    #: built for one pipeline stores that pipeline's choice here (see ``for_pipeline``).
    voice: str | None = None
    #: Pipeline name ("offline", "cascade", "realtime") -> its TTS voice.
    voices: Mapping[str, str] = field(default_factory=dict)
    #: ISO 639-1 code of the language calls are in: speech-to-text is told it, and the
    #: model is told to answer in it.
    language: str = "en"
    steps: tuple[PlaybookStep, ...] = ()
    faq: tuple[FaqEntry, ...] = ()
    tools: tuple[str, ...] = ("end_call", "transfer_call")
    variables: Mapping[str, str] = field(default_factory=dict)
    #: Said after the caller turns the transfer offer down, before the goodbye.
    wrap_up: str = ""
    #: Said when the caller asks for a moment ("hold on", "wait a second").
    hold: str = "Sure, take your time."
    #: Said right before the transfer_call tool is used.
    transferring: str = "Connecting you now."
    #: Said when a transfer was asked for but cannot happen (no number, tool off, failed).
    transfer_unavailable: str = (
        "I can't connect you right now, but I'll have someone from the team call you back."
    )
    #: Said when the caller would rather book a visit than be connected now; the call then
    #: ends. Empty: booking is not offered.
    booking_confirmation: str = ""
    #: Said when a step is skipped after the caller could not be understood twice.
    skip: str = "No problem, let's keep going."
    # --- text (SMS) mode -----------------------------------------------------------------
    #: Named links the agent may text (send_link tool, follow-up SMS): name -> https URL.
    #: Link names are also template variables.
    links: Mapping[str, str] = field(default_factory=dict)
    #: Tools the agent has by text: hand_off, schedule_callback, send_link.
    sms_tools: tuple[str, ...] = ()
    #: System prompt by text; empty: the voice prompt with a text-mode note appended.
    sms_system_prompt: str = ""
    #: First reply of a new SMS thread when the offline playbook answers.
    sms_greeting: str = ""
    #: Texted when the thread is handed to staff (and the model said nothing itself).
    sms_handoff: str = (
        "Thanks, I've passed this to a member of our team, who will text you back shortly."
    )
    #: Texted to the other party after a call with them; empty: no follow-up.
    followup_sms: str = ""
    # --- caller memory and post-call analysis (#12) -------------------------------------
    #: Said instead of the greeting to a caller we know ({caller_name} is set); empty:
    #: known callers hear the usual greeting.
    returning_greeting: str = ""
    analysis: AnalysisSchema = field(default_factory=AnalysisSchema)
    # --- turn-taking (#18) -----------------------------------------------------------
    turn_taking: TurnTaking = field(default_factory=TurnTaking)

    def voice_for(self, pipeline: str) -> str | None:
        """The TTS voice `pipeline` speaks this agent with (None: the server's default)."""
        return self.voices.get(pipeline, self.voice)

    def for_pipeline(self, pipeline: str) -> AgentDefinition:
        """This definition with ``voice`` set to `pipeline`'s choice, so every speaker of
        ``agent.voice`` (session, phrases, greeting cache, outbound) asks for the voice
        the agent chose for the pipeline the server runs."""
        voice = self.voice_for(pipeline)
        return self if voice == self.voice else replace(self, voice=voice)

    def greeting_for(self, variables: Mapping[str, str]) -> str:
        """The greeting template for this call: the returning caller's when we know them."""
        if self.returning_greeting and variables.get("caller_name"):
            return self.returning_greeting
        return self.greeting

    def render(self, template: str, variables: Mapping[str, str] | None = None) -> str:
        """Fill a template from the definition's defaults overlaid with per-call values."""
        merged = _Blank({**self.variables, **(variables or {})})
        return template.format_map(merged)

    def render_speech(self, template: str, variables: Mapping[str, str] | None = None) -> str:
        """Render a phrase meant to be spoken, tidying what empty variables leave behind
        ("Hi , this is Joe" -> "Hi, this is Joe")."""
        return tidy_speech(self.render(template, variables))


_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:])")
_COMMA_BEFORE_STOP = re.compile(r",+([.!?;:])")
_LEADING_PUNCT = re.compile(r"^[\s,.;:!?]+")
_MULTI_SPACE = re.compile(r"\s{2,}")


def tidy_speech(text: str) -> str:
    """Remove the stray spaces and commas an empty template variable leaves in a phrase."""
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _COMMA_BEFORE_STOP.sub(r"\1", text)
    text = _LEADING_PUNCT.sub("", text)
    return _MULTI_SPACE.sub(" ", text).strip()


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""
