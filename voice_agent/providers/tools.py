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
# Text (SMS) mode.
HAND_OFF = "hand_off"
SCHEDULE_CALLBACK = "schedule_callback"
SEND_LINK = "send_link"


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
    HAND_OFF: _function(
        HAND_OFF,
        "Hand the conversation to a human colleague, who will text back: when the person "
        "asks for a human or needs something the assistant cannot do. The assistant stops "
        "answering this conversation afterwards.",
        _REASON,
    ),
    SCHEDULE_CALLBACK: _function(
        SCHEDULE_CALLBACK,
        "Book a phone call back to this person. The call is placed at the asked time or, "
        "if that is outside calling hours, at the next time calling hours allow.",
        {
            "at": {
                "type": "string",
                "description": "When to call, as a local ISO 8601 date and time such as "
                "2026-03-04T15:30; omit for as soon as possible.",
            },
            "note": {"type": "string", "description": "What the call is about, briefly."},
        },
    ),
    SEND_LINK: _function(
        SEND_LINK,
        "Send one of the business's links (named in the instructions) in the reply.",
        {"name": {"type": "string", "description": "The link's name, e.g. booking."}},
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
