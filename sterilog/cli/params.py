"""Command-line numbers that mean what they look like (issue 14, point 7).

Python's float() and int() accept `1_34` (134), Arabic-Indic and other Unicode digits, and
`nan`/`inf`; a scanner or a keyboard layout can type any of them. Here a number is ASCII digits
only, with an optional sign, decimal point and exponent. A record ID outside what the database
can hold (64-bit on SQLite, 32-bit on PostgreSQL) is simply an unknown record, on both.
"""

from __future__ import annotations

import re
from typing import Any

import click

from sterilog.errors import UnknownRecord, UserError

_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+")
# The largest ID either backend can hold (PostgreSQL INTEGER); above it nothing exists.
MAX_RECORD_ID = 2**31 - 1


def _refuse(param: click.Parameter | None, message: str) -> UserError:
    """Bad input is exit 1 with the option's name (SPEC §6), like every other bad value."""
    name = param.opts[0] if param is not None and param.opts else "a value"
    if param is not None and param.param_type_name == "argument":
        name = (param.human_readable_name or "value").upper()
    return UserError(f"{name}: {message}")


def _ascii(value: str, pattern: re.Pattern[str]) -> bool:
    text = value.strip()
    return text.isascii() and pattern.fullmatch(text) is not None


class Number(click.ParamType[float, Any]):
    """A decimal number written with ASCII digits."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float | int) and not isinstance(value, bool):
            return float(value)
        if str(value).strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            return float(str(value).strip())  # refused with its name by the service's check
        if not _ascii(str(value), _FLOAT):
            raise _refuse(param, f"{value!r} is not a number written with ASCII digits, e.g. 1.5")
        return float(str(value).strip())


class Integer(click.ParamType[int, Any]):
    """A whole number written with ASCII digits."""

    name = "integer"

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif _ascii(str(value), _INT):
            number = int(str(value).strip())
        else:
            raise _refuse(param, f"{value!r} is not a whole number written with ASCII digits")
        if (self.low is not None and number < self.low) or (
            self.high is not None and number > self.high
        ):
            self.fail(f"{number} is not in the range {self.low}-{self.high}", param, ctx)
        return number


class RecordId(click.ParamType[int, Any]):
    """A record number; one no database could hold is an unknown record (exit 1)."""

    name = "id"

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif _ascii(str(value), _INT):
            number = int(str(value).strip())
        else:
            raise _refuse(param, f"{value!r} is not a record number (ASCII digits)")
        if not 1 <= number <= MAX_RECORD_ID:
            raise UnknownRecord(self.kind, number)
        return number


NUMBER = Number()
INTEGER = Integer()
