"""What an analysis is, and the facts of a call that decide its outcome without a model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from prompts import AgentDefinition
from voice_agent.storage.analyses import OUTCOMES, CallToAnalyse, Outcome

__all__ = ["OUTCOMES", "CallAnalysis", "Outcome", "RequestStats"]

#: Twilio statuses of a call nobody answered.
_UNANSWERED = frozenset({"no-answer", "busy", "canceled", "failed"})
_NOT_INTERESTED = re.compile(
    r"\b(not interested|no longer interested|don'?t call|do not call|stop calling|"
    r"remove me|take me off|wrong number)\b",
    re.IGNORECASE,
)


@dataclass(slots=True)
class RequestStats:
    """The model request(s) behind one analysis, for the figures and the bill."""

    model: str
    attempts: int = 0
    ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class CallAnalysis:
    summary: str
    outcome: Outcome
    fields: dict[str, Any] = field(default_factory=dict)
    #: "facts" (decided by how the call went), "playbook" (offline) or "llm".
    source: str = "facts"
    #: Why the analysis is a fallback ("other"), when it is one.
    reason: str | None = None
    request: RequestStats | None = None

    def document(self) -> dict[str, Any]:
        """As stored on the call; the contract's three keys lead."""
        doc: dict[str, Any] = {
            "summary": self.summary,
            "outcome": self.outcome,
            "fields": self.fields,
            "source": self.source,
        }
        if self.reason:
            doc["reason"] = self.reason
        if self.request is not None:
            doc["request"] = {
                "model": self.request.model,
                "attempts": self.request.attempts,
                "ms": round(self.request.ms, 1),
                "input_tokens": self.request.input_tokens,
                "output_tokens": self.request.output_tokens,
            }
        return doc


def empty_fields(agent: AgentDefinition | None) -> dict[str, Any]:
    return {item.name: None for item in agent.analysis.fields} if agent is not None else {}


def said_not_interested(text: str) -> bool:
    return _NOT_INTERESTED.search(text) is not None


def caller_text(material: CallToAnalyse) -> str:
    return " ".join(t.text for t in material.call.turns if t.role == "caller")


def from_facts(material: CallToAnalyse, agent: AgentDefinition | None) -> CallAnalysis | None:
    """The outcome when how the call went already tells it (nobody answered, a machine,
    a transfer before a word was said): no model request needed."""
    call = material.call
    fields = empty_fields(agent)
    answered = (material.answered_by or "").lower()
    outcome_fact = material.outcome or ""
    spoke = any(t.role == "caller" for t in call.turns)
    if outcome_fact == "voicemail":
        return CallAnalysis("Reached voicemail; the agent left a message.", "voicemail", fields)
    if outcome_fact == "machine" or answered.startswith("machine") or answered == "fax":
        return CallAnalysis("Reached an answering machine; no message left.", "no-answer", fields)
    if call.status in _UNANSWERED or outcome_fact in _UNANSWERED:
        return CallAnalysis(f"Not answered ({call.status}).", "no-answer", fields)
    if not spoke:
        if call.end_reason == "transfer":
            return CallAnalysis(
                "Transferred before the caller said anything.", "transferred", fields
            )
        who = "The callee" if call.direction == "outbound" else "The caller"
        return CallAnalysis(
            f"{who} said nothing; the call ended ({call.end_reason}).", "other", fields
        )
    return None
