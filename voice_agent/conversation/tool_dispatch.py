"""What each tool call the model makes does to the call: one dispatcher for every pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from prompts import AgentDefinition


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    #: What the model is told the tool did.
    result: str
    #: (end reason, transfer number or None) when the tool ends the call for the agent.
    ending: tuple[str, str | None] | None = None


def dispatch_tool(name: str, agent: AgentDefinition) -> ToolOutcome:
    if name == "end_call":
        return ToolOutcome("ending the call", ("agent-hangup", None))
    if name == "transfer_call" and agent.transfer_number:
        return ToolOutcome("transferring the caller", ("transfer", agent.transfer_number))
    if name == "transfer_call":
        return ToolOutcome("error: no transfer number is configured")
    return ToolOutcome(f"unknown tool {name}")


def combine(
    ending: tuple[str, str | None] | None, outcome: ToolOutcome
) -> tuple[str, str | None] | None:
    """Several tool calls in one reply: a transfer wins over a hang-up, else the first."""
    if outcome.ending is not None and (ending is None or outcome.ending[1] is not None):
        return outcome.ending
    return ending
