"""Making a new tenant from what an operator typed: checked field by field, so the CLI and
the admin page refuse the same things with the same words."""

from __future__ import annotations

import re
from collections.abc import Collection
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voice_agent.storage.tenants import Tenant

_HOURS = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")

# Slugs appear in URLs, file paths (recordings) and Redis keys: keep them plain.
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


class TenantFieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def new_tenant(
    slug: str,
    name: str,
    agent: str,
    outbound_agent: str,
    agents: Collection[str],
    timezone: str = "America/New_York",
    calling_hours: str | None = None,
    calling_days: str | None = None,
) -> Tenant:
    """A Tenant with every field checked; raises TenantFieldError naming the first bad one."""
    if not _SLUG.fullmatch(slug):
        raise TenantFieldError(
            "slug", "lower-case letters, digits and inner hyphens, at most 64 characters"
        )
    name = name.strip()
    if not name or len(name) > 200:
        raise TenantFieldError("name", "must be 1 to 200 characters")
    for field, value in (("agent", agent), ("outbound_agent", outbound_agent)):
        if value not in agents:
            raise TenantFieldError(field, f"no agent definition named {value!r}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise TenantFieldError("timezone", f"{timezone!r} is not an IANA time zone") from None
    tenant = Tenant(
        slug=slug, name=name, agent=agent, outbound_agent=outbound_agent, timezone=timezone
    )
    if calling_hours is not None:
        tenant.calling_start_min, tenant.calling_end_min = parse_calling_hours(calling_hours)
    if calling_days is not None:
        tenant.calling_days = parse_calling_days(calling_days)
    return tenant


def parse_calling_hours(text: str) -> tuple[int, int]:
    """ "09:00-20:00" as minutes after midnight, [start, end); end may be 24:00."""
    match = _HOURS.fullmatch(text.strip())
    if match is None:
        raise TenantFieldError("calling_hours", f"{text!r} is not a window like 09:00-20:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise TenantFieldError("calling_hours", f"{text!r} has a time that does not exist")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start >= end:
        raise TenantFieldError("calling_hours", f"{text!r} must end after it starts")
    return start, end


def parse_calling_days(text: str) -> str:
    """ISO weekday digits ("123456" = Monday to Saturday), each once, in order."""
    days = text.strip()
    if not days or not set(days) <= set("1234567") or len(set(days)) != len(days):
        raise TenantFieldError(
            "calling_days", f"{text!r}: ISO weekday digits 1-7 (1 = Monday), each once"
        )
    return "".join(sorted(days))


def format_calling_hours(start_min: int, end_min: int) -> str:
    return f"{start_min // 60:02d}:{start_min % 60:02d}-{end_min // 60:02d}:{end_min % 60:02d}"
