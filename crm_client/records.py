"""The CRM's typed records: what the agent knows about a person, and what it writes.

Plain data, the same for every CRM: the built-in one (our own tables) and Twenty. Phone
numbers are E.164 throughout; emails are lower-case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

#: What an activity records: a lead captured, a call had, a text exchanged.
ActivityKind = Literal["lead", "call", "sms"]


@dataclass(frozen=True, slots=True)
class PersonInput:
    """A person as a lead form or a call tells us about them. Empty strings are "unknown"
    and never overwrite what the CRM already holds."""

    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    phone: str | None = None  # E.164

    def __post_init__(self) -> None:
        if not self.email and not self.phone:
            raise ValueError("a person needs an email or a phone number")

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


@dataclass(frozen=True, slots=True)
class Person:
    """A person as a CRM holds them; ``id`` is that CRM's own id (an integer's text for the
    built-in CRM, a UUID for Twenty)."""

    id: str
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    phone: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


@dataclass(frozen=True, slots=True)
class NoteInput:
    """A note to attach to a person. ``key`` makes it idempotent: the same key attached
    twice (a retry, a replay) is one note."""

    key: str
    title: str
    body: str  # markdown
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Note:
    id: str
    person_id: str
    key: str
    title: str
    body: str
    fields: dict[str, Any]
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ActivityInput:
    """Something that happened with a person; ``ref`` names it in its own table (the lead's
    id, the call's CallSid, the text's thread), so recording it twice is once."""

    kind: ActivityKind
    ref: str
    summary: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Activity:
    id: str
    person_id: str
    kind: ActivityKind
    ref: str
    summary: str
    at: datetime
