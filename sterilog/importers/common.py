"""Values shared by the format parsers, and the hold computed from a trace."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sterilog.errors import UserError


class ImportFormatError(UserError):
    """The file is not (or not entirely) a record in the format given."""


@dataclass(frozen=True)
class Sample:
    """One row of the device's trace. `at` is the device's own clock (naive, local)."""

    phase: str  # "A" air removal, "H" heat-up, "S" sterilization (hold), "E", "D", "" other
    at: dt.datetime
    temp_c: float
    pressure_kpa: float | None  # gauge for psig/inHg readers, as printed (bar) for DAC


@dataclass(frozen=True)
class DeviceCycle:
    """One cycle as the device printed it. Everything here is read, nothing computed."""

    format: str
    serial: str
    model: str
    cycle_no: int
    started_at: dt.datetime  # device clock, naive
    ended_at: dt.datetime | None
    program: str  # as printed
    set_temp_c: float | None
    set_hold_min: float | None
    air_removal_test: bool  # Bowie-Dick / Helix program
    samples: tuple[Sample, ...]
    complete: bool  # the record reached its end-of-cycle line
    device_ok: bool  # the device's own verdict (complete, no error, no FEHL)
    device_reason: str | None  # why the device flagged or aborted it
    error_codes: tuple[int, ...]
    device_hold_s: float | None  # a duration the device printed (DAC "Dauer"), for reference
    temp_unit: str  # "°C" or "°F", as printed
    pressure_unit: str | None  # "bar", "psig", "kPa", as printed
    first_line: int  # 1-based line range of the record in the file
    last_line: int


@dataclass(frozen=True)
class HoldStats:
    """Computed from the trace (never from the header's set point)."""

    hold_s: float  # longest run of sterilization-phase samples at or above the temperature
    temp_min_c: float | None  # over the sterilization-phase samples
    temp_max_c: float | None
    pressure_min_kpa: float | None
    pressure_max_kpa: float | None
    samples: int  # sterilization-phase samples


def hold_stats(samples: tuple[Sample, ...], temp_c: float) -> HoldStats:
    """The hold: the time the measured temperature stayed at or above `temp_c` during the
    sterilization phase, from the first to the last sample of the longest unbroken run.

    Only printed samples count, so the result is a lower bound (a 30-second print interval can
    hide up to that much of the hold at each end) and never longer than the evidence shows.
    """
    ster = [s for s in samples if s.phase == "S"]
    best = 0.0
    run_start: dt.datetime | None = None
    for s in ster:
        if s.temp_c >= temp_c:
            if run_start is None:
                run_start = s.at
            best = max(best, (s.at - run_start).total_seconds())
        else:
            run_start = None
    temps = [s.temp_c for s in ster]
    pressures = [s.pressure_kpa for s in ster if s.pressure_kpa is not None]
    return HoldStats(
        hold_s=best,
        temp_min_c=min(temps) if temps else None,
        temp_max_c=max(temps) if temps else None,
        pressure_min_kpa=min(pressures) if pressures else None,
        pressure_max_kpa=max(pressures) if pressures else None,
        samples=len(ster),
    )


def decode(data: bytes) -> str:
    """UTF-8 when it is valid (a logger's capture), else Latin-1 (device USB/printer files)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def f_to_c(value: float) -> float:
    return round((value - 32.0) * 5.0 / 9.0, 3)


PSI_KPA = 6.894757
INHG_KPA = 3.386389


def to_kpa(value: float, unit: str, vacuum: bool = False) -> float:
    u = unit.lower()
    if u in {"psig", "psi"}:
        kpa = value * PSI_KPA
    elif u == "bar":
        kpa = value * 100.0
    elif u == "kpa":
        kpa = value
    else:
        raise ImportFormatError(f"unknown pressure unit {unit!r}")
    if vacuum:
        kpa = -value * INHG_KPA
    return round(kpa, 3)


# `°` printed as the degree sign (Latin-1 0xB0), as '?' by printers without it, or as the two
# characters a UTF-8 file read as Latin-1 shows.
DEGREE = r"(?:°|\?|Â°)?"
TEMP_UNIT = re.compile(DEGREE + r"\s*([CF])\b")


def number(text: str) -> float:
    return float(text.replace(",", "."))


def hms(text: str) -> dt.timedelta:
    h, m, s = (int(x) for x in text.split(":"))
    return dt.timedelta(hours=h, minutes=m, seconds=s)
