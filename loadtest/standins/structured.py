"""Structured-output replies for the OpenAI stand-in: a JSON object that holds to the
request's `response_format` JSON schema, with values read from the conversation (names,
amounts, times said by the caller), as a model would give. Stands alone.

Handles the schema shapes the API's strict mode takes: objects, strings (with enums),
numbers, integers, booleans, and ["<type>", "null"] unions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_CALLER = re.compile(r"^(?:Caller|User|Customer):\s*(.+)$", re.MULTILINE | re.IGNORECASE)
_AGENT = re.compile(r"^(?:Agent|Assistant):\s*(.+)$", re.MULTILINE | re.IGNORECASE)
_NAME = re.compile(
    r"\b(?:my name is|this is|i'm|i am|it's|name's)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)"
)
_ON_FILE = re.compile(r"name on file:\s*([^.\n]+)", re.IGNORECASE)
_MONEY = re.compile(
    r"(\$\s?\d[\d,]*(?:\.\d+)?\s*(?:k|thousand)?|\b(?:\w+\s+)?(?:hundred|thousand)\s+dollars"
    r"|\b\d[\d,]*\s*(?:k|dollars|bucks)\b)",
    re.IGNORECASE,
)
_WHEN = re.compile(
    r"\b(asap|as soon as possible|right away|today|tomorrow|this (?:week|month|year)|"
    r"next (?:week|month|year|spring|summer|fall|winter)|(?:sometime )?in the next \w+ "
    r"(?:days|weeks|months)|in \w+ (?:days|weeks|months)|no rush|not sure)\b",
    re.IGNORECASE,
)
_NEED = re.compile(r"\b(need|looking|want|fix|repair|replace|install|help with|leak)", re.I)
_URGENT = re.compile(r"\b(emergency|urgent|burst|flood|no heat|leaking|right away|asap)\b", re.I)
_NOT_INTERESTED = re.compile(r"\b(not interested|don'?t call|stop calling|remove me)\b", re.I)
_CALLBACK = re.compile(r"\b(call me back|call back|another time|later)\b", re.I)
_TRANSFER = re.compile(r"\b(connecting you|transfer)", re.I)
_NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")


def _types(spec: Mapping[str, Any]) -> list[str]:
    kind = spec.get("type", "string")
    return list(kind) if isinstance(kind, list) else [kind]


class _Reading:
    """What a model would gather from the transcript in the request."""

    def __init__(self, text: str) -> None:
        self.caller = _CALLER.findall(text) or [text]
        self.agent = _AGENT.findall(text)
        said = " ".join(self.caller)
        self.said = said
        name = _NAME.search(said) or _ON_FILE.search(text)
        self.name = name.group(1).strip() if name else None
        money = _MONEY.search(said)
        self.budget = money.group(1).strip() if money else None
        when = _WHEN.search(said)
        self.when = when.group(1) if when else None
        self.need = next((line.rstrip(".") for line in self.caller if _NEED.search(line)), None)
        self.urgent = bool(_URGENT.search(said))
        transferred = any(_TRANSFER.search(line) for line in self.agent) or "(transfer" in text
        if transferred:
            self.outcome = "transferred"
        elif _NOT_INTERESTED.search(said):
            self.outcome = "not-interested"
        elif _CALLBACK.search(said):
            self.outcome = "callback"
        elif self.need and (self.budget or self.when):
            self.outcome = "qualified"
        else:
            self.outcome = "other"

    def summary(self) -> str:
        who = self.name or "The caller"
        parts = [f"{who} called" + (f" about: {self.need.lower()}" if self.need else "") + "."]
        if self.budget:
            parts.append(f"Budget {self.budget}.")
        if self.when:
            parts.append(f"Timing: {self.when}.")
        parts.append(f"Outcome: {self.outcome}.")
        return " ".join(parts)

    def value(self, name: str, spec: Mapping[str, Any]) -> Any:
        """A value for the property `name`, of a type its schema allows."""
        kinds = _types(spec)
        allowed = spec.get("enum")
        about = f"{name} {spec.get('description', '')}".lower()
        if allowed is not None:
            options = [v for v in allowed if v is not None]
            if name == "outcome" or "outcome" in about:
                wanted = self.outcome
            else:
                level = {"qualified": "high", "transferred": "high", "callback": "medium"}
                wanted = level.get(self.outcome, "low" if self.outcome == "not-interested" else "")
            if wanted in options:
                return wanted
            return "unknown" if "unknown" in options else (None if None in allowed else options[0])
        if "boolean" in kinds:
            return self.urgent if ("urgent" in about or "emergency" in about) else False
        if "number" in kinds or "integer" in kinds:
            found = _NUMBER.search(self.said)
            if found:
                number = float(found.group())
                return int(number) if "integer" in kinds else number
            return None if "null" in kinds else 0
        if name == "summary":
            return self.summary()
        for keys, found in (
            (("name",), self.name),
            (("budget", "spend", "price"), self.budget),
            (("timeline", "timing", "when"), self.when),
            (("need", "project", "help", "reason"), self.need),
        ):
            if any(key in about for key in keys):
                return found if found is not None or "null" in kinds else ""
        return None if "null" in kinds else ""


def structured_reply(schema: Mapping[str, Any], conversation: str) -> Any:
    """An instance of `schema` (an object schema) filled from `conversation`."""
    return _fill(schema, _Reading(conversation), "")


def _fill(spec: Mapping[str, Any], reading: _Reading, name: str) -> Any:
    if "object" in _types(spec):
        properties = spec.get("properties") or {}
        return {key: _fill(sub, reading, key) for key, sub in properties.items()}
    return reading.value(name, spec)
