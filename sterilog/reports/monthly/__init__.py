"""The monthly compliance report (SPEC §8): gather with `rows`, lay out with `render`.

`rows` runs a bounded number of set-based queries whatever the size of the month (one for all
cycles with their packs aggregated, one for all sessions joined to room, practitioner and
device, one for the clean gaps of every session, ...), never one query per row of a big
section. `render` is pure ReportLab over the plain data.

Gaps (each one stamps every page INCOMPLETE) are the `gap` rows of the one rule table
(`sterilog/compliance/table.py`, listed in docs/gate.md): each applies the gate's or
`cycle record`'s own rule function to the facts as of the record's own time, read through
`sterilog/compliance/history.py` (the same plumbing and void filter as the gate's queries,
batched per month):

- a cycle that `sterilizer-bi-overdue` blocks (no BI in the rule pack's interval before it);
- a cycle that `air-removal-test-missing` / `-failed` blocks (one line per sterilizer and day);
- a cycle without a chemical-indicator result;
- a session that `room-not-cleaned` or `device-not-reprocessed` blocks as of its start;
- a session started in the month that is still open.

Voided records (SPEC §7) do not count for anything here; they are printed struck through.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session as DbSession

from sterilog.reports import appendix
from sterilog.reports.common import (
    DASH,
    Integrity,
    Period,
    day_period,
    fmt_num,
    month_period,
    staff_lookup,
)
from sterilog.reports.decision import decide
from sterilog.reports.marks import Marks
from sterilog.reports.monthly import (
    cartridges,
    charts,
    cleaning,
    gaps,
    incidents,
    integrity,
    sessions,
    sterilization,
    summary,
    voided,
)
from sterilog.reports.monthly.layout import GTIN_SAMPLE, SECTIONS, D, Fit, Page, T, late_note
from sterilog.reports.monthly.model import (
    AffectedSession,
    AirRow,
    AttachmentRow,
    BiRow,
    CleanRow,
    CycleRow,
    DiscardRow,
    GapRow,
    IncidentRow,
    MonthlyData,
    RecallRow,
    ReceiptRow,
    RefusalRow,
    SessionRow,
    SignatureRow,
    StockRow,
    Verdict,
    VoidRow,
)
from sterilog.reports.monthly.voided import VOID_SUMMARY as _VOID_SUMMARY
from sterilog.rulepack import RulePack


def render(
    data: MonthlyData,
    *,
    generated_at: dt.datetime,
    clinic: str,
    tz_name: str,
    author: str = "sterilog",
    target: Any = None,
    progress: Callable[[int], None] | None = None,
    training: bool = False,
) -> bytes:
    """The monthly report as PDF bytes (also written to `target`, a path or file, if given)."""
    from sterilog.reports import pdf

    story = _story(data, clinic=clinic, tz_name=tz_name)
    return pdf.build_pdf(
        target,
        story,
        title="Monthly compliance report",
        clinic=clinic,
        period=data.period.label,
        subject=f"Sterilization and equipment compliance, {data.period.label}",
        author=author,
        generated_at=generated_at,
        tz_name=tz_name,
        incomplete=data.incomplete,
        anchor=data.integrity.head,
        progress=progress,
        training=training,
    )


def _story(d: MonthlyData, *, clinic: str, tz_name: str) -> list[Any]:
    from reportlab.platypus import Paragraph

    from sterilog.reports import pdf
    from sterilog.reports.pdf import local_time, para

    def t(moment: dt.datetime | None) -> str:
        return local_time(moment, tz_name) if moment is not None else DASH

    def lt(table: str, record_id: int | None, moment: dt.datetime | None) -> str:
        """A row's time; a late entry also says when it was entered and by whom."""
        return t(moment) + late_note(d, table, record_id, t)

    marks = Marks()
    story: list[Any] = [
        Paragraph("Monthly compliance report", pdf.STYLES.title),
        para(
            f"{clinic} \u2014 {d.period.label} ({d.period.first_day.isoformat()} to "
            f"{d.period.last_day.isoformat()}). Times are local to {tz_name}.",
            pdf.STYLES.body,
        ),
    ]
    c = Page(t, lt, marks, tz_name, clinic)
    for section in SECTION_FUNCTIONS:
        story += section(d, c)
    story += pdf.portrait_pages()
    story += appendix.flowables(d.appendix, t, d.period.last_day)
    return story


def rows(
    db: DbSession,
    year: int,
    month: int,
    *,
    tz: ZoneInfo,
    now: dt.datetime,
    rules: RulePack,
) -> MonthlyData:
    """Everything the monthly report prints, as plain data, as the database says at `now`."""
    from sterilog.services.attachments import attachments_by_record

    period = month_period(year, month, tz)
    who = staff_lookup(db)
    bis, bi_text = sterilization.bi_rows(db, period, who)
    attached = attachments_by_record(db)
    cycles = sterilization.cycle_rows(db, period, who, bi_text, attached)
    session_rows = sessions.rows(db, period)
    refusal_rows = sessions.refusals(db, period)
    cycles_per_week, suspect_per_week = charts.per_week(period, tz, cycles)
    data = MonthlyData(
        period=period,
        rules_name=rules.name,
        gaps=gaps.gaps(db, period, tz, rules, cycles, session_rows),
        verdicts=[],
        sessions_per_day=charts.per_day(period, tz, session_rows, refusal_rows),
        cycles_per_week=cycles_per_week,
        cycles=cycles,
        bis=bis,
        air_tests=sterilization.air_rows(db, period, who),
        cleans=cleaning.rows(db, period, who),
        sessions=session_rows,
        refusals=refusal_rows,
        stock=cartridges.stock(db, period),
        receipts=cartridges.receipts(db, period, who),
        discards=cartridges.discards(db, period, who),
        recalls=cartridges.recalls(db, period, who),
        incidents=incidents.rows(db, period, who),
        voids=voided.rows(db, period, who),
        integrity=integrity.rows(db, period),
        signatures=integrity.signatures(db, year, month, tz),
        attachments=sterilization.attachments(period, cycles, bis, attached),
        declared_weeks=sterilization.declared_weeks(db, period),
        suspect_per_week=suspect_per_week,
    )
    data.verdicts.extend(summary.verdicts(data))
    integrity.time_and_identity(db, data, now, rules, who)
    decide(db, data, rules, data.decision)
    a = appendix.rows(db, data)
    data.appendix.sterilizers[:] = a.sterilizers
    data.appendix.staff[:] = a.staff
    data.appendix.disinfectants[:] = a.disinfectants
    data.appendix.devices[:] = a.devices
    data.appendix.corrections[:] = a.corrections
    return data


SECTION_FUNCTIONS: tuple[Callable[[MonthlyData, Page], list[Any]], ...] = (
    summary.render,
    charts.render,
    sterilization.render,
    cleaning.render,
    sessions.render,
    cartridges.render,
    incidents.render,
    voided.render,
    integrity.render,
)

__all__ = [
    "DASH",
    "GTIN_SAMPLE",
    "SECTIONS",
    "SECTION_FUNCTIONS",
    "_VOID_SUMMARY",
    "AffectedSession",
    "AirRow",
    "AttachmentRow",
    "BiRow",
    "CleanRow",
    "CycleRow",
    "D",
    "DiscardRow",
    "Fit",
    "GapRow",
    "IncidentRow",
    "Integrity",
    "MonthlyData",
    "Page",
    "Period",
    "RecallRow",
    "ReceiptRow",
    "RefusalRow",
    "SessionRow",
    "SignatureRow",
    "StockRow",
    "T",
    "Verdict",
    "VoidRow",
    "day_period",
    "fmt_num",
    "month_period",
    "render",
    "rows",
]
