"""A tenant's look on its staff's pages: name, logo and colour, checked before they reach
HTML or CSS (a colour is pasted into a stylesheet, where escaping does not help)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_COLOR = "#2563eb"
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


class BrandError(ValueError):
    """A branding field is malformed; the message names it."""


def valid_color(value: str) -> bool:
    return bool(_HEX_COLOR.match(value))


def check_color(value: str) -> str:
    value = value.strip()
    if not valid_color(value):
        raise BrandError("brand_color: must be a hex colour such as #2563eb")
    return value


def check_logo_url(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc or any(c in value for c in "\"'<> \\"):
        raise BrandError("logo_url: must be an https:// URL")
    return value


@dataclass(slots=True, frozen=True)
class Brand:
    name: str
    color: str
    logo_url: str | None

    @classmethod
    def of(cls, name: str, color: str | None, logo_url: str | None) -> Brand:
        """Stored values as they are safe to show: a bad colour or logo falls back."""
        safe_color = color if color and valid_color(color) else DEFAULT_COLOR
        try:
            safe_logo = check_logo_url(logo_url or "")
        except BrandError:
            safe_logo = None
        return cls(name, safe_color, safe_logo)


PLATFORM = Brand("OrenGen Voice", DEFAULT_COLOR, None)
