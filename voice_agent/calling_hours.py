"""When an outbound call may ring: inside the tenant's window, on its days, in the callee's
local time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class CallingHours:
    start_min: int  # minutes after local midnight, inclusive
    end_min: int  # exclusive
    days: str  # ISO weekdays allowed, "1" = Monday … "7" = Sunday

    def __post_init__(self) -> None:
        if not 0 <= self.start_min < self.end_min <= 24 * 60:
            raise ValueError(f"calling window {self.start_min}-{self.end_min} min is empty")
        if not self.days or not set(self.days) <= set("1234567"):
            raise ValueError(f"calling days {self.days!r}: use ISO weekday digits 1-7")

    def allows(self, at: datetime, zone: str) -> bool:
        local = at.astimezone(ZoneInfo(zone))
        minute = local.hour * 60 + local.minute
        return str(local.isoweekday()) in self.days and self.start_min <= minute < self.end_min

    def next_permitted(self, at: datetime, zone: str) -> datetime:
        """``at`` itself when it is allowed, else the start of the next allowed window."""
        if self.allows(at, zone):
            return at
        tz = ZoneInfo(zone)
        local = at.astimezone(tz)
        start = time(self.start_min // 60, self.start_min % 60)
        for days_ahead in range(8):
            day = local.date() + timedelta(days=days_ahead)
            if str(day.isoweekday()) not in self.days:
                continue
            opening = datetime.combine(day, start, tz)
            if opening >= local:
                return opening.astimezone(at.tzinfo)
        raise AssertionError("a week always holds an allowed day")  # guarded by __post_init__
