"""What every section's layout shares: the section titles, the page context (time formatting,
marks), column widths and tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sterilog.reports.marks import Marks
from sterilog.reports.monthly.model import MonthlyData

SECTIONS = (
    "1. Summary",
    "2. Charts",
    "3. Sterilization",
    "4. Cleaning log",
    "5. Sessions and refusals",
    "6. Cartridge stock",
    "7. Incidents",
    "8. Voided records",
    "9. Integrity and sign-off",
)


@dataclass(frozen=True)
class Page:
    """What every section's layout needs besides the data: time formatting and marks."""

    t: Callable[[dt.datetime | None], str]
    lt: Callable[[str, int | None, dt.datetime | None], str]
    marks: Marks
    tz_name: str
    clinic: str


def late_note(d: MonthlyData, table: str, record_id: int | None, t: Any) -> str:
    entry = d.late.get((table, record_id)) if record_id is not None else None
    if entry is None:
        return ""
    return f" (LATE ENTRY: entered {t(entry.recorded_at)} by {entry.by})"


@dataclass(frozen=True)
class Fit:
    """A column exactly as wide as `sample` on one line."""

    sample: str
    mono: bool = False


T = Fit("0000-00-00 00:00")  # a local time

D = Fit("0000-00-00")  # a date

GTIN_SAMPLE = "00000000000000"


def widths(columns: Sequence[float | Fit], total: float, header: Sequence[str] = ()) -> list[float]:
    """Column widths filling `total` points: `Fit` columns fit their sample, the others share
    what is left in the given proportions; no column is narrower than its header's longest
    word (so a header never breaks inside a word)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from sterilog.reports.pdf import FONT_BOLD, fit_width

    floor = [stringWidth(max(h.split() or [""], key=len), FONT_BOLD, 7.5) + 7.0 for h in header] + [
        0.0
    ] * (len(columns) - len(header))
    fixed = {
        i: max(fit_width(c.sample, mono=c.mono), floor[i])
        for i, c in enumerate(columns)
        if isinstance(c, Fit)
    }
    weights = {i: float(c) for i, c in enumerate(columns) if not isinstance(c, Fit)}
    while True:
        left = total - sum(fixed.values())
        whole = sum(weights.values()) or 1.0
        share = {i: left * w / whole for i, w in weights.items()}
        narrow = [i for i, w in share.items() if w < floor[i]]
        if not narrow:
            break
        for i in narrow:
            fixed[i] = floor[i]
            del weights[i]
    return [fixed[i] if i in fixed else share[i] for i in range(len(columns))]


def tbl(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    columns: Sequence[float | Fit],
    total: float,
    **options: Any,
) -> list[Any]:
    """`pdf.table` with widths from `widths`."""
    from sterilog.reports.pdf import table

    return table(header, rows, widths(columns, total, header), **options)
