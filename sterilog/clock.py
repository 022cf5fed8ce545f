"""Time helpers. Only the CLI's composition root reads the clock; everything else takes `now`."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sterilog.errors import UserError

UTC = dt.UTC


@dataclass(frozen=True)
class Clock:
    now: dt.datetime  # aware UTC
    source: str  # "system", "database" (PostgreSQL's clock of record) or "STERILOG_NOW"


def system_now() -> dt.datetime:
    """The operating system's clock. The one place it is read (tests replace it to play a
    terminal whose clock is wrong)."""
    return dt.datetime.now(UTC)


def read_clock(environ: dict[str, str] | None = None) -> Clock:
    env = os.environ if environ is None else environ
    raw = env.get("STERILOG_NOW")
    if raw:
        return Clock(parse_instant(raw, "STERILOG_NOW"), "STERILOG_NOW")
    return Clock(system_now().replace(microsecond=0), "system")


def parse_instant(raw: str, what: str = "time") -> dt.datetime:
    """An ISO 8601 time with an offset (or Z), as aware UTC. Naive times are refused."""
    text = raw.strip()
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{what} {raw!r} is not an ISO 8601 time; use e.g. 2026-11-24T09:30:00+00:00"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise UserError(f"{what} {raw!r} has no UTC offset; add one, e.g. +00:00 or Z")
    if not (1970 <= value.year <= 2999):
        raise UserError(f"{what} {raw!r} is out of range")
    return value.astimezone(UTC)


def parse_at(raw: str, tz: ZoneInfo, what: str = "--at") -> dt.datetime:
    """`--at`: ISO 8601; a time without offset is taken in the clinic's zone."""
    text = raw.strip()
    if not text:  # given empty (e.g. an unset shell variable): not "now"
        raise UserError(f"{what} is empty; give a time, e.g. 2026-11-24T09:30, or leave it out")
    if not text.isascii():
        raise UserError(f"{what} {raw!r} must be written with ASCII digits, e.g. 2026-11-24T09:30")
    if "T" not in text.upper() and " " not in text:
        raise UserError(f"{what} {raw!r} is a date without a time; add a time, e.g. {text}T09:30")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UserError(
            f"{what} {raw!r} is not an ISO 8601 time; use e.g. 2026-11-24T09:30 or "
            "2026-11-24T09:30:00+01:00"
        ) from None
    if not (1970 <= value.year <= 2999):
        raise UserError(f"{what} {raw!r} is out of range")
    if value.tzinfo is None:
        value = _local(value, tz, raw, what)
    return value.astimezone(UTC)


def _local(value: dt.datetime, tz: ZoneInfo, raw: str, what: str) -> dt.datetime:
    """A wall-clock time in the clinic's zone: refused when the clocks skip it (spring
    forward) or pass it twice (fall back) -- then an offset says which one."""
    early = value.replace(tzinfo=tz, fold=0)
    late = value.replace(tzinfo=tz, fold=1)
    roundtrip = early.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    if roundtrip != value:
        raise UserError(
            f"{what} {raw!r} does not exist in {tz.key}: the clocks skipped that hour "
            "(daylight saving); check the time"
        )
    if early.utcoffset() != late.utcoffset():
        a, b = _offset(early), _offset(late)
        raise UserError(
            f"{what} {raw!r} happened twice in {tz.key} (the clocks went back); add the "
            f"offset: {value.isoformat()}{a} or {value.isoformat()}{b}"
        )
    return early


def _offset(value: dt.datetime) -> str:
    off = value.utcoffset() or dt.timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def parse_date(raw: str, what: str = "date") -> dt.date:
    if not raw.strip():  # given empty: never "no date" (an empty expiry would end a check)
        raise UserError(f"{what} is empty; give a date, YYYY-MM-DD")
    try:
        value = dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise UserError(f"{what} {raw!r} is not a real date; use YYYY-MM-DD") from None
    if not (1970 <= value.year <= 2999):
        raise UserError(f"{what} {raw!r} is out of range (years 1970 to 2999)")
    return value


def parse_month(raw: str) -> tuple[int, int]:
    try:
        year_s, month_s = raw.strip().split("-")
        year, month = int(year_s), int(month_s)
        dt.date(year, month, 1)
    except ValueError:
        raise UserError(f"month {raw!r} is not a real month; use YYYY-MM") from None
    if len(year_s) != 4 or len(month_s) != 2:
        raise UserError(f"month {raw!r} is not a real month; use YYYY-MM")
    if not (1970 <= year <= 2999):
        raise UserError(f"month {raw!r} is out of range (years 1970 to 2999)")
    return year, month


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"unknown time zone {name!r}; use an IANA name like Europe/London"
        ) from None


def system_zone_name() -> str:
    tz_env = os.environ.get("TZ")
    if tz_env:
        try:
            ZoneInfo(tz_env)
            return tz_env
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        link = os.readlink("/etc/localtime")
        if "zoneinfo/" in link:
            return link.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    return "UTC"


def local_day_bounds(day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a clinic day, in UTC."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def end_of_day(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """First instant after `day` in the clinic's zone (expiry: usable while now < this)."""
    return local_day_bounds(day, tz)[1]


def local_date(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def fmt_local(instant: dt.datetime | None, tz: ZoneInfo) -> str:
    if instant is None:
        return "-"
    return instant.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def fmt_zoned(instant: dt.datetime | None, tz: ZoneInfo) -> str:
    """A time as the clinic reads it: local, with its UTC offset (2026-07-10 08:05-04:00)."""
    if instant is None:
        return "-"
    local = instant.astimezone(tz)
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M") + f"{offset[:3]}:{offset[3:]}"


def iso(instant: dt.datetime | None) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
