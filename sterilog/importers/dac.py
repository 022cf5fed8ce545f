"""Dentsply Sirona DAC Universal serial-printer records (German).

Layout, as read from the samples (not vendor-documented):

    DAC Universal                         <- starts a record ('#' may precede it)
    Serien Nr:  601362                    Programm:   Universal/134?C/3min
    Zyklus:     13                        <- the device's cycle counter
    Dat.(T-M-J) 16-03-2016                Zeit(H-M-S) 00:53:20
    Start              00:53:52 Ok        <- phase, wall-clock time, result (Ok / FEHL)
    Beginn Haltezeit   01:05:22 Ok
    Uhrzeit:           ?C:      bar:      <- the hold's trace: time, °C, bar
    01:05:30           135.3    3.18
    Maximum / Minimum / Dauer (m-s) 03-11 <- the device's own summary (read, not trusted)
    Sterilisation      01:08:33 Ok
    Zyklusende         01:12:08 Ok        <- the end; a record without it is truncated
    Error code   97                       <- a fault; "Fehler!" / "Abbruch Sterilisation"

A record ends at its last recognised line: anything else (a logger's own messages in a raw
capture such as DAC.Log) is noise between records.
"""

from __future__ import annotations

import datetime as dt
import re

from sterilog.importers.common import (
    DEGREE,
    DeviceCycle,
    ImportFormatError,
    Sample,
    number,
    to_kpa,
)

FORMAT = "dac-printer"

_HEADER = re.compile(r"^\s*#?\s*DAC Universal\s*$")
_FIELD = re.compile(
    r"^\s*(Serien Nr:|Programm:|Deckel:|Zyklus:|Dat\.\(T-M-J\)|Zeit\(H-M-S\))\s*(.*?)\s*$"
)
_PHASE = re.compile(r"^\s*(\S.*?)\s+(\d\d:\d\d:\d\d)\s+(Ok|FEHL)\s*$")
_SAMPLE = re.compile(r"^\s*(\d\d:\d\d:\d\d)\s+(-?\d+(?:[.,]\d+)?)\s+(-?\d+(?:[.,]\d+)?)\s*$")
_SUMMARY = re.compile(r"^\s*(Maximum|Minimum)\s+(-?\d+(?:[.,]\d+)?)\s+(-?\d+(?:[.,]\d+)?)\s*$")
_DURATION = re.compile(r"^\s*Dauer \(m-s\)\s+(\d+)-(\d+)\s*$")
_ERROR = re.compile(r"^\s*Error code\s+(\d+)\s*$")
_OTHER = re.compile(
    r"^\s*(-{3,}|Phase:\s+Uhrzeit:\s+Erg:|Uhrzeit:\s+" + DEGREE + r"C:\s+bar:|Fehler!|"
    r"Abbruch Sterilisation|\S.*?\s+Deaktiviert)\s*$"
)
_PROGRAM_TEMP = re.compile(r"(\d+(?:[.,]\d+)?)\s*" + DEGREE + r"\s*C\b")
_PROGRAM_TIME = re.compile(r"(\d+(?:[.,]\d+)?)\s*min\b")
END = "Zyklusende"
HOLD_START = "Beginn Haltezeit"


class _Rec:
    def __init__(self, first: int) -> None:
        self.first = first
        self.last = first
        self.fields: dict[str, str] = {}
        self.phases: list[tuple[str, str, str]] = []
        self.samples: list[tuple[str, float, float]] = []
        self.errors: list[int] = []
        self.duration_s: float | None = None


def parse_dac(text: str) -> list[DeviceCycle]:
    recs: list[_Rec] = []
    cur: _Rec | None = None
    for no, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip()
        if _HEADER.match(line):
            cur = _Rec(no)
            recs.append(cur)
            continue
        if cur is None:
            continue
        if not line.strip():
            continue  # blank lines neither end nor extend a record
        if m := _FIELD.match(line):
            cur.fields.setdefault(m.group(1).rstrip(":"), m.group(2))
        elif m := _PHASE.match(line):
            cur.phases.append((m.group(1).strip(), m.group(2), m.group(3)))
        elif m := _SAMPLE.match(line):
            cur.samples.append((m.group(1), number(m.group(2)), number(m.group(3))))
        elif m := _ERROR.match(line):
            cur.errors.append(int(m.group(1)))
        elif m := _DURATION.match(line):
            cur.duration_s = int(m.group(1)) * 60 + int(m.group(2))
        elif _SUMMARY.match(line) or _OTHER.match(line):
            pass
        else:
            cur = None  # noise: the record ended at its last recognised line
            continue
        cur.last = no
    return [_cycle(r) for r in recs]


def _clock(day: dt.date, start: dt.datetime, text: str) -> dt.datetime:
    """A wall-clock time of the cycle; the printer gives no date, so past midnight rolls over."""
    at = dt.datetime.combine(day, dt.time.fromisoformat(text))
    return at + dt.timedelta(days=1) if at < start - dt.timedelta(hours=1) else at


def _cycle(r: _Rec) -> DeviceCycle:
    f = r.fields
    for needed in ("Serien Nr", "Zyklus", "Dat.(T-M-J)", "Zeit(H-M-S)"):
        if needed not in f:
            raise ImportFormatError(f"line {r.first}: the DAC record has no {needed!r} line")
    try:
        day = dt.datetime.strptime(f["Dat.(T-M-J)"], "%d-%m-%Y").date()  # noqa: DTZ007
        start = dt.datetime.combine(day, dt.time.fromisoformat(f["Zeit(H-M-S)"]))
        cycle_no = int(f["Zyklus"])
    except ValueError as exc:
        raise ImportFormatError(f"line {r.first}: unreadable DAC header ({exc})") from None
    program = f.get("Programm", "")
    t = _PROGRAM_TEMP.search(program)
    h = _PROGRAM_TIME.search(program)
    # Every sample row is the hold's trace: the printer lists them after "Beginn Haltezeit".
    samples = tuple(
        Sample(
            phase="S",
            at=_clock(day, start, at),
            temp_c=temp,
            pressure_kpa=to_kpa(bar, "bar"),
        )
        for at, temp, bar in r.samples
    )
    end_phase = next((p for p in r.phases if p[0] == END), None)
    complete = end_phase is not None
    failed_phases = [p[0] for p in r.phases if p[2] == "FEHL"]
    reasons: list[str] = []
    if r.errors:
        first = r.errors[0]
        where = next((p for p in failed_phases if p != END), None)
        reasons.append(f"Error code {first}" + (f" ({where}: FEHL)" if where else ""))
        later = [c for c in dict.fromkeys(r.errors[1:]) if c != first]
        if later:
            reasons.append("then Error code " + ", ".join(str(c) for c in later))
    elif failed_phases:
        reasons.append(f"{failed_phases[0]}: FEHL")
    if not complete:
        reasons.append(f"record truncated (no {END} line)")
    ok = complete and not failed_phases and not r.errors
    return DeviceCycle(
        format=FORMAT,
        serial=f["Serien Nr"].strip(),
        model="DAC Universal",
        cycle_no=cycle_no,
        started_at=start,
        ended_at=_clock(day, start, end_phase[1]) if end_phase else None,
        program=program,
        set_temp_c=number(t.group(1)) if t else None,
        set_hold_min=number(h.group(1)) if h else None,
        air_removal_test=False,
        samples=samples,
        complete=complete,
        device_ok=ok,
        device_reason="; ".join(reasons) or None,
        error_codes=tuple(dict.fromkeys(r.errors)),
        device_hold_s=r.duration_s,
        temp_unit="°C",
        pressure_unit="bar",
        first_line=r.first,
        last_line=r.last,
    )
