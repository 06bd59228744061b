"""JSON-schema definitions of the tools an agent may call, in OpenAI chat "tools" format.

The names are the contract with the conversation core, which dispatches the calls;
an agent definition lists the names it allows.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

END_CALL = "end_call"
TRANSFER_CALL = "transfer_call"


def _function(name: str, description: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": dict(properties),
                "required": [],
                "additionalProperties": False,
            },
        },
    }


_REASON = {"reason": {"type": "string", "description": "One short sentence: why."}}

TOOL_SPECS: Mapping[str, dict[str, Any]] = {
    END_CALL: _function(
        END_CALL,
        "Hang up after the goodbye has been said: the caller is done, asked to stop, "
        "or the conversation cannot usefully continue.",
        _REASON,
    ),
    TRANSFER_CALL: _function(
        TRANSFER_CALL,
        "Transfer the caller to a human colleague, when they ask for a person or need "
        "something the agent cannot do.",
        _REASON,
    ),
}


def tool_specs(names: Iterable[str]) -> list[dict[str, Any]]:
    """Tool definitions for `names`, in the given order; unknown names raise KeyError
    so a typo in an agent file fails at load time rather than mid-call."""
    specs: list[dict[str, Any]] = []
    for name in names:
        try:
            spec = TOOL_SPECS[name]
        except KeyError:
            raise KeyError(f"unknown tool {name!r}; known: {sorted(TOOL_SPECS)}") from None
        # A copy, so a caller that edits its list cannot change every other agent's tools.
        specs.append(copy.deepcopy(spec))
    return specs
