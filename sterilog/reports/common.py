"""Plain data and helpers shared by the reports: periods, staff names, the audit chain's
integrity, counting words."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import local_day_bounds

DASH = "\u2014"


@dataclass(frozen=True)
class Period:
    """A span of clinic days: [start, end) in UTC, and its label."""

    label: str
    first_day: dt.date
    last_day: dt.date
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Integrity:
    entries_in_period: int
    ok: bool
    entries: int
    head: str
    problems: tuple[tuple[str, str], ...]


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    first = dt.date(year, month, 1)
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    return Period(
        label=first.strftime("%B %Y"),
        first_day=first,
        last_day=last,
        start=local_day_bounds(first, tz)[0],
        end=local_day_bounds(last, tz)[1],
    )


def day_period(first: dt.date, last: dt.date, tz: ZoneInfo) -> Period:
    label = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return Period(label, first, last, local_day_bounds(first, tz)[0], local_day_bounds(last, tz)[1])




def within(column: Any, period: Period) -> Any:
    return and_(column >= period.start, column < period.end)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def fmt_num(value: float | None) -> str:
    return DASH if value is None else f"{value:g}"


Who = Callable[[int | None, dt.datetime | None], str]


def staff_lookup(db: DbSession) -> Who:
    """Staff id, time -> the name in force at that time, as every report prints a name with
    the record it belongs to (`compliance.registers.StaffNames`: a name corrected by `staff
    update --name` is a dated change); a missing or empty id is a dash."""
    from sterilog.compliance.registers import StaffNames

    names = StaffNames(db)

    def who(staff_id: int | None, at: dt.datetime | None) -> str:
        return names(staff_id, at) or DASH

    return who


def weeks(period: Period) -> list[dt.date]:
    """Mondays of the ISO weeks overlapping the period."""
    monday = period.first_day - dt.timedelta(days=period.first_day.weekday())
    out = []
    while monday <= period.last_day:
        out.append(monday)
        monday += dt.timedelta(days=7)
    return out


def iso_week(day: dt.date) -> str:
    """The ISO week label of a day: 2026-W44."""
    iso_year, number, _ = day.isocalendar()
    return f"{iso_year}-W{number:02d}"
