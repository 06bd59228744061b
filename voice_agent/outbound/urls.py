"""The webhook URLs an outbound call carries. Each names its scheduled call in the query
string: Twilio signs the full URL, so the id cannot be swapped, and no lookup by CallSid
races the Calls.create response."""

from __future__ import annotations

from urllib.parse import urlencode

VOICE_PATH = "/twilio/voice"
STATUS_PATH = "/twilio/status"
AMD_PATH = "/twilio/amd"

#: Events the dialer subscribes to (Twilio's default is "completed" only).
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")


def with_query(base_url: str, path: str, **params: str | int) -> str:
    query = urlencode({k: str(v) for k, v in params.items()})
    return f"{base_url}{path}" + (f"?{query}" if query else "")


def scheduled_id(query_value: str | None) -> int | None:
    """The ``scheduled`` query parameter as an id; None when absent or not a number."""
    if not query_value or not query_value.isdigit() or len(query_value) > 18:
        return None
    return int(query_value)
