from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voice_agent.calling_hours import CallingHours
from voice_agent.phone import InvalidPhoneNumber, time_zone_of, to_e164

WEEKDAYS_9_TO_8 = CallingHours(9 * 60, 20 * 60, "12345")


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("(415) 555-0134", "+14155550134"),
        ("415.555.0134", "+14155550134"),
        ("+1 415 555 0134", "+14155550134"),
        ("+44 20 7946 0018", "+442079460018"),
    ],
)
def test_numbers_normalise_to_e164(raw: str, e164: str) -> None:
    assert to_e164(raw) == e164


@pytest.mark.parametrize("raw", ["", "hello", "12", "+1 415 555", "+999 123 456 789"])
def test_undiallable_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        to_e164(raw)


def test_time_zone_from_the_number_or_the_fallback() -> None:
    assert time_zone_of("+14155550134", "America/New_York") == "America/Los_Angeles"
    assert time_zone_of("+442079460018", "UTC") == "Europe/London"
    assert time_zone_of("not a number", "UTC") == "UTC"


def test_inside_the_window_is_now() -> None:
    # Wednesday 10:00 in Los Angeles.
    at = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    assert WEEKDAYS_9_TO_8.next_permitted(at, "America/Los_Angeles") == at


def test_after_hours_moves_to_the_next_opening_in_the_callees_zone() -> None:
    # Wednesday 21:30 in Los Angeles → Thursday 09:00 there (17:00 UTC).
    at = datetime(2026, 11, 26, 5, 30, tzinfo=UTC)
    assert WEEKDAYS_9_TO_8.next_permitted(at, "America/Los_Angeles") == datetime(
        2026, 11, 26, 17, 0, tzinfo=UTC
    )


def test_weekend_skips_to_monday_and_early_morning_waits_for_opening() -> None:
    saturday_noon_ny = datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    assert WEEKDAYS_9_TO_8.next_permitted(saturday_noon_ny, "America/New_York") == datetime(
        2026, 11, 30, 14, 0, tzinfo=UTC
    )
    monday_7am_ny = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert WEEKDAYS_9_TO_8.next_permitted(monday_7am_ny, "America/New_York") == datetime(
        2026, 11, 30, 14, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(("start", "end", "days"), [(600, 600, "1"), (0, 1500, "1"), (0, 60, "")])
def test_empty_windows_are_refused(start: int, end: int, days: str) -> None:
    with pytest.raises(ValueError):
        CallingHours(start, end, days)
