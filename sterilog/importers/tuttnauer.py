"""Tuttnauer Elara11 (and the EZ family's) USB/printer `.TXT` cycle records.

Layout, as read from the samples (not vendor-documented):

    Date: 01/JAN/2017          Time: 16:23:33         Ser. Num: 00000000
    Model: ELARA11             Cycle Num: 000100
    WRAPPED INSTU / (Customized) / Bowie and Dick      <- program name, one or more lines
    Ster. Temp. 273.2 °F       Ster. Time 5.0 min*
      Time     °F    Psig                              <- units of the trace
    A 00:00:07 138.2 00.55                             <- phase, elapsed time, temp, pressure
    A 00:03:08 149.0 24.78In                           <- "In": vacuum in inHg
    CLK 1: 16:49:48                                    <- wall clock around the hold
    Status: Cycle Ended        Time: 17:16:44          <- the device's verdict, end time

Phase letters: A air removal, H heat-up, S sterilization (hold), E exhaust, D drying.
"""

from __future__ import annotations

import datetime as dt
import re

from sterilog.importers.common import (
    TEMP_UNIT,
    DeviceCycle,
    ImportFormatError,
    Sample,
    f_to_c,
    hms,
    number,
    to_kpa,
)

FORMAT = "tuttnauer-txt"
OK_STATUS = "cycle ended"
AIR_REMOVAL = re.compile(r"bowie|helix|\bb\s*&\s*d\b", re.IGNORECASE)

_KEY = re.compile(
    r"^\s*(Date|Time|Ser\. Num|Model|Version|Software vers\.|Cycle Num|Status|Operator)"
    r"\s*:\s*(.*?)\s*$"
)
_SKIP = re.compile(r"^\s*(Dry Time|End Temperature)\b")
_SET_TEMP = re.compile(r"^\s*Ster\. Temp\.\s+(\d+(?:[.,]\d+)?)\s*(.*)$")
_SET_TIME = re.compile(r"^\s*Ster\. Time\s+(\d+(?:[.,]\d+)?)\s*min", re.IGNORECASE)
_UNITS = re.compile(r"^\s*Time\s+(\S+)\s+(\S+)\s*$")
_ROW = re.compile(
    r"^([AHSED ]?)\s*(\d{1,2}:\d\d:\d\d)\s+(-?\d+(?:[.,]\d+)?)\s+(\d+(?:[.,]\d+)?)(In)?\s*$"
)
_CLK = re.compile(r"^\s*CLK\s*\d")
_RULE = re.compile(r"^\s*-{3,}\s*$")


class _Rec:
    def __init__(self, first: int) -> None:
        self.first = first
        self.last = first
        self.fields: dict[str, str] = {}
        self.end_time: str | None = None
        self.program: list[str] = []
        self.set_temp: tuple[float, str] | None = None
        self.set_time: float | None = None
        self.temp_unit = "°F"
        self.pressure_unit = "psig"
        self.rows: list[tuple[str, str, float, float, bool, int]] = []
        self.in_program = False


def _date(text: str, line: int) -> dt.date:
    for fmt in ("%d/%b/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text.title(), fmt).date()  # noqa: DTZ007 - device clock
        except ValueError:
            continue
    raise ImportFormatError(f"line {line}: unreadable date {text!r}")


def parse_tuttnauer(text: str) -> list[DeviceCycle]:
    recs: list[_Rec] = []
    cur: _Rec | None = None
    for no, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if not line.strip() or _RULE.match(line):
            continue
        key = _KEY.match(line)
        if key and key.group(1) == "Date":
            cur = _Rec(no)
            recs.append(cur)
        if cur is None:
            continue  # noise before the first record
        cur.last = no
        if key:
            name, value = key.group(1), key.group(2)
            if name == "Time" and "Time" in cur.fields:
                cur.end_time = value
            else:
                cur.fields.setdefault(name, value)
            cur.in_program = name == "Cycle Num"
            continue
        if m := _SET_TEMP.match(line):
            unit = TEMP_UNIT.search(m.group(2))
            cur.set_temp = (number(m.group(1)), unit.group(1) if unit else "F")
            cur.in_program = False
            continue
        if m := _SET_TIME.match(line):
            cur.set_time = number(m.group(1))
            continue
        if _SKIP.match(line):
            continue
        if cur.in_program:
            cur.program.append(line.strip())
            continue
        if m := _UNITS.match(line):
            unit = TEMP_UNIT.search(m.group(1))
            cur.temp_unit = "°C" if unit and unit.group(1) == "C" else "°F"
            cur.pressure_unit = m.group(2)
            continue
        if m := _ROW.match(line):
            cur.rows.append(
                (
                    m.group(1).strip(),
                    m.group(2),
                    number(m.group(3)),
                    number(m.group(4)),
                    m.group(5) is not None,
                    no,
                )
            )
            continue
        if _CLK.match(line):
            continue
        # Anything else (a footer, a banner) is not part of the evidence we read.
    return [_cycle(r) for r in recs]


def _cycle(r: _Rec) -> DeviceCycle:
    f = r.fields
    for needed in ("Time", "Ser. Num", "Cycle Num"):
        if needed not in f:
            raise ImportFormatError(f"line {r.first}: the record has no {needed!r} line")
    day = _date(f["Date"], r.first)
    try:
        start = dt.datetime.combine(day, dt.time.fromisoformat(f["Time"]))
        cycle_no = int(f["Cycle Num"])
    except ValueError as exc:
        raise ImportFormatError(f"line {r.first}: unreadable header ({exc})") from None
    celsius = r.temp_unit == "°C"
    samples = []
    for phase, elapsed, temp, pressure, vacuum, no in r.rows:
        try:
            at = start + hms(elapsed)
        except ValueError:
            raise ImportFormatError(f"line {no}: unreadable time {elapsed!r}") from None
        samples.append(
            Sample(
                phase=phase,
                at=at,
                temp_c=round(temp, 3) if celsius else f_to_c(temp),
                pressure_kpa=to_kpa(pressure, r.pressure_unit, vacuum=vacuum),
            )
        )
    end: dt.datetime | None = None
    if r.end_time:
        try:
            end = dt.datetime.combine(day, dt.time.fromisoformat(r.end_time))
        except ValueError:
            end = None
        if end is not None and end < start:
            end += dt.timedelta(days=1)
    status = f.get("Status")
    complete = status is not None
    ok = complete and status is not None and status.strip().lower() == OK_STATUS
    if not complete:
        reason: str | None = "record truncated (no Status line)"
    elif not ok:
        reason = f"device status: {status}"
    else:
        reason = None
    set_temp_c = None
    if r.set_temp is not None:
        value, unit = r.set_temp
        set_temp_c = round(value, 3) if unit == "C" else f_to_c(value)
    program = " ".join(r.program) or "(unnamed)"
    return DeviceCycle(
        format=FORMAT,
        serial=f["Ser. Num"].strip(),
        model=f.get("Model", "").strip(),
        cycle_no=cycle_no,
        started_at=start,
        ended_at=end,
        program=program,
        set_temp_c=set_temp_c,
        set_hold_min=r.set_time,
        air_removal_test=bool(AIR_REMOVAL.search(program)),
        samples=tuple(samples),
        complete=complete,
        device_ok=ok,
        device_reason=reason,
        error_codes=(),
        device_hold_s=None,
        temp_unit=r.temp_unit,
        pressure_unit=r.pressure_unit,
        first_line=r.first,
        last_line=r.last,
    )
