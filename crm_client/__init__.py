"""A small CRM protocol (find a person by phone or email, upsert a person, attach a note,
record an activity), its typed records, and the Twenty client. The built-in CRM, on our
own tables, lives with the other tables in voice_agent.storage.people.

Imports nothing from the rest of the project."""

from crm_client.limiter import RequestGate, SlidingWindowLimiter
from crm_client.protocol import Crm
from crm_client.records import (
    Activity,
    ActivityInput,
    ActivityKind,
    Note,
    NoteInput,
    Person,
    PersonInput,
)
from crm_client.twenty import (
    TWENTY_API_VERSION,
    TwentyAuthError,
    TwentyClient,
    TwentyError,
    TwentyMalformed,
    TwentyRateLimited,
    TwentyRejected,
    TwentyUnavailable,
)

__all__ = [
    "TWENTY_API_VERSION",
    "Activity",
    "ActivityInput",
    "ActivityKind",
    "Crm",
    "Note",
    "NoteInput",
    "Person",
    "PersonInput",
    "RequestGate",
    "SlidingWindowLimiter",
    "TwentyAuthError",
    "TwentyClient",
    "TwentyError",
    "TwentyMalformed",
    "TwentyRateLimited",
    "TwentyRejected",
    "TwentyUnavailable",
]
