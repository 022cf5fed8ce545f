"""One renderer for a gate's verdict, shared by `check`, `session start`, blocked writes
(`cycle record`) and `sterilog terminal`: GO in green and BLOCKED in red at a terminal (plain
when stdout is not a terminal or NO_COLOR is set), each blocking reason followed by its
"what to do" line (the remedies of docs/gate.md), and times in the clinic's zone with offset.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import click


def use_color(json_mode: bool = False) -> bool:
    """Colour only for a person at a terminal, and never with NO_COLOR (no-color.org)."""
    if json_mode or os.environ.get("NO_COLOR"):
        return False
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def headline(text: str, go: bool, color: bool) -> str:
    return click.style(text, fg="green" if go else "red", bold=True) if color else text


def what_to_do(code: str) -> str | None:
    """The remedy line of a rule code (docs/gate.md is generated from the same table)."""
    from sterilog.compliance.table import BY_CODE

    spec = BY_CODE.get(code)
    return spec.what_to_do if spec is not None else None


def reason_lines(reasons: Iterable[Any], *, bullet: str = "") -> list[str]:
    """Each blocking reason, then what to do about it."""
    lines: list[str] = []
    for r in reasons:
        if bullet:
            lines.append(f"  {bullet} {r.code}: {r.message}")
        else:
            lines.append(f"  {r.code:<28} {r.message}")
        todo = what_to_do(r.code)
        if todo:
            lines.append(f"      what to do: {todo}")
    return lines


def zoned(instant: dt.datetime | None, tz: ZoneInfo) -> str:
    """A time as a clinic reads it: local, with its UTC offset (2026-07-10 08:05-04:00)."""
    from sterilog.clock import fmt_zoned

    return fmt_zoned(instant, tz)


class Held:
    """What `no_interrupt` saw: `pressed` is True when Ctrl-C came while it held it."""

    pressed: bool = False


@contextmanager
def no_interrupt() -> Iterator[Held]:
    """Hold Ctrl-C while a decision is committed and shown: a record written is always shown.

    The one Ctrl-C guard of the commands that record at the point of care (`session start`,
    `sterilog terminal`). A Ctrl-C pressed meanwhile is not raised: the caller sees it in
    `Held.pressed` and decides what it means after the result is on the screen (`session
    start` exits as the record says, 0 GO or 3 BLOCKED; the terminal then leaves, exit 0)."""
    held = Held()
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield held
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield held
    finally:
        held.pressed = signal.SIGINT in signal.sigpending()
        if held.pressed:
            # Swallow the Ctrl-C that arrived while the record was being committed and shown.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
            signal.signal(signal.SIGINT, previous)
        else:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
