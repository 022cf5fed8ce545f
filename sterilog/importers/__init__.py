"""Autoclave cycle records, read from the device's own output. Pure: bytes in, values out.

No database, no SQLAlchemy, no clock. `parse(data, fmt)` returns every cycle a file holds
(a capture may hold several, with logger noise between them); `hold_stats` computes the hold
from the trace. The services decide what to record (services/device_import.py).

Supported formats (docs/import.md describes their fields):

- ``tuttnauer-txt``: Tuttnauer Elara/EZ USB or printer ``.TXT`` (Latin-1, °F/°C, psig/bar/kPa,
  ``In`` suffix = vacuum in inHg).
- ``dac-printer``: Dentsply Sirona DAC Universal serial-printer output (German, °C, bar).
"""

from __future__ import annotations

from sterilog.importers.common import (
    DeviceCycle,
    HoldStats,
    ImportFormatError,
    Sample,
    decode,
    hold_stats,
)
from sterilog.importers.dac import parse_dac
from sterilog.importers.tuttnauer import parse_tuttnauer

FORMATS = ("tuttnauer-txt", "dac-printer")

__all__ = [
    "FORMATS",
    "DeviceCycle",
    "HoldStats",
    "ImportFormatError",
    "Sample",
    "detect",
    "hold_stats",
    "parse",
]


def detect(text: str) -> str | None:
    """The format of a decoded file, or None when it is none we know."""
    if "DAC Universal" in text and "Zyklus:" in text:
        return "dac-printer"
    if "Ser. Num:" in text and "Cycle Num:" in text:
        return "tuttnauer-txt"
    return None


def parse(data: bytes, fmt: str = "auto") -> tuple[str, list[DeviceCycle]]:
    """Every cycle in `data`, in file order, and the format used. Raises ImportFormatError."""
    text = decode(data)
    if fmt == "auto":
        found = detect(text)
        if found is None:
            raise ImportFormatError(
                "not a cycle record of a supported autoclave (formats: "
                + ", ".join(FORMATS)
                + "); give --format if you know it"
            )
        fmt = found
    if fmt == "tuttnauer-txt":
        cycles = parse_tuttnauer(text)
    elif fmt == "dac-printer":
        cycles = parse_dac(text)
    else:
        raise ImportFormatError(f"unknown format {fmt!r}; formats: auto, {', '.join(FORMATS)}")
    if not cycles:
        raise ImportFormatError(f"no {fmt} cycle record found in the file")
    return fmt, cycles
