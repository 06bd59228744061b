"""Making a new tenant from what an operator typed: checked field by field, so the CLI and
the admin page refuse the same things with the same words."""

from __future__ import annotations

import re
from collections.abc import Collection
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voice_agent.storage.tenants import Tenant

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
    return Tenant(
        slug=slug, name=name, agent=agent, outbound_agent=outbound_agent, timezone=timezone
    )
