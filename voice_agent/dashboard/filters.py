"""The call list's query string, read into a CallFilter with an error per bad field."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from starlette.datastructures import QueryParams

from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.storage.call_search import CallFilter, decode_cursor

DIRECTIONS = ("inbound", "outbound")
STATUSES = ("in-progress", "completed", "failed", "busy", "no-answer", "canceled")
FIELDS = (
    "since",
    "until",
    "direction",
    "status",
    "outcome",
    "number",
    "agent",
    "q",
    "tenant",
    "tests",
)
#: Which browser test calls the list shows (the "tests" field; empty: include).
TEST_CHOICES = ("include", "exclude", "only")


@dataclass(slots=True)
class ParsedFilter:
    where: CallFilter
    cursor: str | None
    values: dict[str, str]  # as typed, to refill the form
    errors: dict[str, str] = field(default_factory=dict)


def _day(value: str, name: str, errors: dict[str, str]) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
    except ValueError:
        errors[name] = "must be a date like 2026-11-25"
        return None


def _number(raw: str) -> str | None:
    """E.164 as stored. Lenient: test and fictional (555) numbers are stored too and must be
    findable, though the numbering plan calls them invalid."""
    try:
        return to_e164(raw)
    except InvalidPhoneNumber:
        pass
    digits = re.sub(r"[\s().-]", "", raw)
    if not re.fullmatch(r"\+?\d{4,15}", digits):
        return None
    if digits.startswith("+"):
        return digits
    return "+1" + digits if len(digits) == 10 else "+" + digits


def parse_filter(params: QueryParams, scope: str | None) -> ParsedFilter:
    """``scope`` is the viewer's tenant (None for admins, who may pick one with ?tenant=)."""
    values = {name: params.get(name, "").strip() for name in FIELDS}
    errors: dict[str, str] = {}
    since = _day(values["since"], "since", errors)
    until = _day(values["until"], "until", errors)
    if until is not None:
        until += timedelta(days=1)  # "until" names the last day shown, inclusive
    if since and until and since >= until:
        errors["until"] = "must not be before since"
    direction = values["direction"] or None
    if direction and direction not in DIRECTIONS:
        errors["direction"] = "must be inbound or outbound"
    number = values["number"] or None
    if number:
        number = _number(number)
        if number is None:
            errors["number"] = "is not a phone number"
    tests = values["tests"] or "include"
    if tests not in TEST_CHOICES:
        errors["tests"] = "must be include, exclude or only"
        tests = "include"
    for name in ("status", "outcome", "agent", "tenant"):
        if len(values[name]) > 64:
            errors[name] = "is too long"
    if len(values["q"]) > 200:
        errors["q"] = "is too long (200 characters at most)"
    cursor = params.get("after") or None
    if cursor:
        try:
            decode_cursor(cursor)
        except ValueError:
            errors["after"] = "is not a page cursor"
            cursor = None
    tenant = scope if scope is not None else (values["tenant"] or None)
    where = CallFilter(
        tenant=tenant,
        since=since,
        until=until,
        direction=direction,
        status=values["status"] or None,
        outcome=values["outcome"] or None,
        number=number,
        agent=values["agent"] or None,
        search=values["q"] or None,
        tests=tests,
    )
    return ParsedFilter(where, cursor, values, errors)
