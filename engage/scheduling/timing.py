"""Offsets like ``-7d``, ``0``, ``+2w``, ``+3m``, and quiet hours, in the patient's time zone.

Offsets count calendar days, weeks and months in the patient's own time zone, so
"+3m" after 31 January is 30 April (the last day of a shorter month) and a
follow-up due at 10:00 stays at 10:00 across a daylight-saving change.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

OFFSET = re.compile(r"^\s*([+-]?)\s*(\d{1,4})\s*([hdwmy]?)\s*$")
UNITS = {"h": "hours", "d": "days", "w": "weeks", "m": "months", "y": "years", "": "days"}


class OffsetError(ValueError):
    """Not an offset; the message says what is expected."""


@dataclass(frozen=True)
class Offset:
    """A signed amount of hours, days, weeks, months or years."""

    amount: int
    unit: str  # one of "h", "d", "w", "m", "y"

    @classmethod
    def parse(cls, text: str) -> Offset:
        match = OFFSET.match(text or "")
        if not match:
            raise OffsetError(
                f"{text!r} is not an offset: write a number with a unit, e.g. "
                "-7d, 0, +2w, +3m, +1y (h hours, d days, w weeks, m months, y years)"
            )
        sign, number, unit = match.groups()
        amount = int(number) * (-1 if sign == "-" else 1)
        return cls(amount, unit or "d")

    def __str__(self) -> str:
        if self.amount == 0:
            return "0"
        return f"{self.amount:+d}{self.unit}"

    def apply(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """``moment`` moved by this offset on the calendar of ``tz``; aware UTC out."""
        local = moment.astimezone(tz)
        if self.unit == "h":
            return (moment + timedelta(hours=self.amount)).astimezone(UTC)
        if self.unit in ("d", "w"):
            days = self.amount * (7 if self.unit == "w" else 1)
            moved = datetime.combine(local.date() + timedelta(days=days), local.time(), tz)
        else:
            months = self.amount * (12 if self.unit == "y" else 1)
            moved = datetime.combine(add_months(local.date(), months), local.time(), tz)
        return moved.astimezone(UTC)

    def approx_days(self) -> float:
        factor = {"h": 1 / 24, "d": 1, "w": 7, "m": 30.44, "y": 365.25}[self.unit]
        return self.amount * factor


def add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def zone(name: str | None) -> ZoneInfo:
    """The IANA time zone ``name``; ``ValueError`` with a clear message if unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone; use an IANA name like Europe/London")\
            from None


@dataclass(frozen=True)
class QuietHours:
    """A daily period (possibly across midnight) when no message goes out."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        match = re.match(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$", text or "")
        if not match:
            raise ValueError(f"{text!r} is not a period like 21:00-08:00")
        h1, m1, h2, m2 = (int(x) for x in match.groups())
        return cls(time(h1, m1), time(h2, m2))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """``moment`` itself if it is outside quiet hours, else when they end (aware UTC)."""
        local = moment.astimezone(tz)
        if not self.contains(local.time().replace(tzinfo=None)):
            return moment.astimezone(UTC)
        end_day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            end_day += timedelta(days=1)
        return datetime.combine(end_day, self.end, tz).astimezone(UTC)
