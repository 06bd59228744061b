"""Phone numbers: one normal form (E.164) everywhere, and the zone a number rings in."""

from __future__ import annotations

import phonenumbers
from phonenumbers import timezone as number_timezones


class InvalidPhoneNumber(ValueError):
    """Not a number that can be dialled."""


def to_e164(raw: str, default_region: str = "US") -> str:
    """``(415) 555-0134`` → ``+14155550134``; numbers without a country code are read as
    ``default_region``'s. Raises InvalidPhoneNumber for anything that cannot ring."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{raw!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def time_zone_of(e164: str, fallback: str) -> str:
    """The IANA zone a number is in, when its prefix tells exactly one; else ``fallback``."""
    try:
        zones = number_timezones.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return fallback
    if len(zones) == 1 and zones[0] != number_timezones.UNKNOWN_TIMEZONE:
        return zones[0]
    return fallback
