"""The offline analysis: the call's caller turns replayed through the scripted playbook
recover exactly the slots it collected and how it ended; the agent's fields, the outcome
and a one-paragraph summary follow from them. Pure string work, no model."""

from __future__ import annotations

from typing import Any

from prompts import AgentDefinition
from voice_agent.analysis.result import (
    CallAnalysis,
    Outcome,
    caller_text,
    empty_fields,
    from_facts,
    said_not_interested,
)
from voice_agent.providers.base import ChatMessage, ToolCall
from voice_agent.providers.offline.playbook import PlaybookDialogue
from voice_agent.storage.analyses import CallToAnalyse

_INTEREST: dict[str, str] = {
    "qualified": "high",
    "transferred": "high",
    "callback": "medium",
    "not-interested": "low",
}
_OUTCOME_WORDS: dict[str, str] = {
    "qualified": "qualified",
    "not-interested": "not interested",
    "callback": "to be called back",
    "transferred": "transferred to the team",
    "other": "ended without a clear result",
}


async def replay(
    agent: AgentDefinition, material: CallToAnalyse, known_name: str
) -> PlaybookDialogue:
    """Feed the stored caller turns (and DTMF events) to a fresh playbook in order."""
    variables = {"caller_name": known_name} if known_name else {}
    dialogue = PlaybookDialogue(agent, variables)
    for turn in material.call.turns:
        if turn.role == "caller" or (turn.role == "event" and turn.text.startswith("[DTMF")):
            history = [ChatMessage("user", turn.text)]
        else:
            continue
        tools: list[ToolCall] = [
            event async for event in dialogue.respond(history) if isinstance(event, ToolCall)
        ]
        for tool in tools:
            if tool.name == "transfer_call":
                result = (
                    "transferring the caller"
                    if material.call.end_reason == "transfer"
                    else "error: failed"
                )
                async for _ in dialogue.respond(
                    [ChatMessage("tool", result, tool_call_id=tool.id)]
                ):
                    pass
    return dialogue


def _outcome(playbook: str | None, filled: bool, material: CallToAnalyse) -> Outcome:
    if material.call.end_reason == "transfer" or playbook == "transferred":
        return "transferred"
    if said_not_interested(caller_text(material)):
        return "not-interested"
    if playbook == "booked":
        return "qualified"
    if playbook == "not_now":
        return "callback"
    if playbook in ("declined", "completed"):
        return "qualified" if filled else "callback"
    return "other"


def _summary(material: CallToAnalyse, fields: dict[str, Any], outcome: Outcome, name: str) -> str:
    call = material.call
    number = call.from_number if call.direction == "inbound" else call.to_number
    who = f"{name} ({number})" if name and number else name or number or "unknown caller"
    kind = "Inbound call from" if call.direction == "inbound" else "Outbound call to"
    said = "; ".join(
        f"{key.replace('_', ' ')}: {value}"
        for key, value in fields.items()
        if value not in (None, "") and key != "interest_level"
    )
    parts = [f"{kind} {who}."]
    if said:
        parts.append(said[0].upper() + said[1:] + ".")
    parts.append(f"Outcome: {_OUTCOME_WORDS.get(outcome, outcome)}.")
    return " ".join(parts)


class PlaybookAnalyser:
    """Analyses calls of the offline pipeline (and any call when no model is configured)."""

    name = "playbook"

    async def analyse(
        self, material: CallToAnalyse, agent: AgentDefinition | None, known_name: str = ""
    ) -> CallAnalysis:
        facts = from_facts(material, agent)
        if facts is not None:
            return facts
        if agent is None:
            return CallAnalysis(
                _summary(material, {}, "other", material.lead_name),
                "other",
                {},
                "playbook",
                reason=f"unknown agent {material.call.agent!r}",
            )
        greeted_by_name = bool(known_name) and any(
            t.role == "agent" and known_name in t.text for t in material.call.turns[:2]
        )
        dialogue = await replay(agent, material, known_name if greeted_by_name else "")
        slots = dialogue.slots
        wanted = [s.slot for s in agent.steps if s.extract != "yes_no"]
        filled = bool(wanted) and all(slot in slots for slot in wanted)
        outcome = _outcome(dialogue.outcome, filled, material)
        name = slots.get(next((s.slot for s in agent.steps if s.extract == "name"), ""), "")
        name = name or material.lead_name or known_name
        fields = empty_fields(agent)
        for item in agent.analysis.fields:
            if item.slot is not None:
                fields[item.name] = slots.get(item.slot)
            elif item.derive == "interest":
                fields[item.name] = _INTEREST.get(outcome, "unknown")
            elif item.derive == "caller_name":
                fields[item.name] = name or None
        return CallAnalysis(_summary(material, fields, outcome, name), outcome, fields, "playbook")
