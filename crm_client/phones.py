"""Phone numbers in Twenty's PHONES shape: national number, ISO country, calling code.

integrations.md §6.2: whether ``primaryPhoneNumber`` holds the national number or the full
E.164 is not settled and integrations do both; we write the national number with the
calling code beside it, and search both spellings."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers


@dataclass(frozen=True, slots=True)
class SplitPhone:
    number: str  # national significant number: "4155550100"
    country: str  # ISO 3166 alpha-2: "US" ("" when the prefix is shared and unclear)
    calling_code: str  # "+1"

    def twenty(self) -> dict[str, object]:
        return {
            "primaryPhoneNumber": self.number,
            "primaryPhoneCountryCode": self.country,
            "primaryPhoneCallingCode": self.calling_code,
        }


def split_e164(e164: str) -> SplitPhone:
    """``+14155550100`` → ("4155550100", "US", "+1"). A number that does not parse is kept
    whole, as its own national number, with no country."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return SplitPhone(e164, "", "")
    national = phonenumbers.national_significant_number(parsed)
    country = phonenumbers.region_code_for_number(parsed) or ""
    return SplitPhone(national, country, f"+{parsed.country_code}")


def join_phone(value: object) -> str | None:
    """Twenty's PHONES value back to E.164 (None when it holds no number)."""
    if not isinstance(value, dict):
        return None
    number = str(value.get("primaryPhoneNumber") or "").strip()
    if not number:
        return None
    if number.startswith("+"):
        return number
    code = str(value.get("primaryPhoneCallingCode") or "").strip()
    if code:
        return (code if code.startswith("+") else "+" + code) + number
    country = str(value.get("primaryPhoneCountryCode") or "").strip()
    if country:
        try:
            parsed = phonenumbers.parse(number, country)
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            return number
    return number
