"""Section 9, Integrity and sign-off, and the time-and-identity facts (late entries, clock
anomalies). Data (`rows`, `signatures`, `time_and_identity`), then layout (`render`)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from sterilog import audit
from sterilog.models import (
    AuditEntry,
    Signature,
)
from sterilog.reports.common import (
    Integrity,
    Period,
    plural,
    within,
)
from sterilog.reports.marks import mono_style
from sterilog.reports.monthly.layout import (
    SECTIONS,
    Fit,
    Page,
    T,
    widths,
)
from sterilog.reports.monthly.model import (
    MonthlyData,
    SignatureRow,
)
from sterilog.rulepack import RulePack


def time_and_identity(
    db: DbSession, data: MonthlyData, now: dt.datetime, rules: RulePack, who: Any
) -> None:
    """Late entries of the month, the late cleans that close a gap, clock anomalies."""
    from sterilog.reports.late import gap_closers, late_entries

    period = data.period
    data.late.update(late_entries(db, period.start, period.end, rules.late_entry_minutes, who))
    data.late_closers.extend(gap_closers(db, data.late, period.start, period.end))
    data.clock_anomalies.extend(
        a
        for a in audit.clock_anomalies(db, now)
        if period.start <= dt.datetime.fromisoformat(a.at.replace("Z", "+00:00")) < period.end
    )


def rows(db: DbSession, period: Period) -> Integrity:
    """The audit entries of the period and the verification of the whole chain."""
    verification = audit.verify(db)
    in_period = int(
        db.execute(select(func.count()).where(within(AuditEntry.at, period))).scalar_one()
    )
    return Integrity(
        entries_in_period=in_period,
        ok=verification.ok,
        entries=verification.entries,
        head=verification.head,
        problems=tuple((p.record, p.message) for p in verification.problems[:50]),
    )


def signatures(db: DbSession, year: int, month: int, tz: ZoneInfo) -> list[SignatureRow]:
    """Every `sterilog sign` signature of the month, and whether the month changed since."""
    from sterilog.services.signoff import bindings

    label = f"{year:04d}-{month:02d}"
    bound = bindings(db, label, tz)
    return [
        SignatureRow(s.name, s.at, s.meaning, s.head, s.id, bound[s.id].text(tz))
        for s in db.execute(
            select(Signature).where(Signature.month == label).order_by(Signature.at, Signature.id)
        ).scalars()
    ]


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Integrity."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph

    from sterilog.reports import pdf
    from sterilog.reports.pdf import esc, heading, key_values, para, table

    marks = c.marks
    story: list[Any] = []
    story += pdf.portrait_pages()
    story += heading(SECTIONS[8])
    integ = d.integrity
    story.append(
        key_values(
            [
                ("Audit entries in the period", str(integ.entries_in_period)),
                (
                    "Verification of the whole chain",
                    marks.ok(f"OK: {integ.entries} entries verified, every record matches")
                    if integ.ok
                    else marks.alert(
                        f"FAILED: {plural(len(integ.problems), 'problem')} in "
                        f"{integ.entries} entries"
                    ),
                ),
                ("Chain head (SEQ:HASH)", Paragraph(esc(integ.head), mono_style())),
            ],
            key_width=50 * mm,
        )
    )
    if integ.problems:
        story += table(
            ["Record", "Problem"],
            [[a, b] for a, b in integ.problems],
            [45 * mm, pdf.CONTENT_WIDTH - 45 * mm],
        )
    story.append(pdf.qr_flowable(integ.head, 32))
    story.append(para("Anyone can check this report against the database with:", pdf.STYLES.small))
    story.append(Paragraph(esc(f"sterilog audit verify --anchor {integ.head}"), mono_style()))
    if d.clock_anomalies:
        story += heading("Clock anomalies", 2)
        story += table(
            ["Entry", "Time", "Problem"],
            [[f"#{a.seq}", a.at, a.message] for a in d.clock_anomalies],
            [20 * mm, 40 * mm, pdf.CONTENT_WIDTH - 60 * mm],
        )
    story += _signatures(d, c)
    return story


def _signature_lines() -> Any:
    """Blank lines to sign on paper: name, signature, date, meaning."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Table, TableStyle

    from sterilog.reports import pdf

    widths = [55 * mm, 60 * mm, 30 * mm, pdf.CONTENT_WIDTH - 145 * mm]
    return Table(
        [["", "", "", ""], ["Name", "Signature", "Date", "Reviewed / approved"]],
        colWidths=widths,
        rowHeights=[16 * mm, None],
        hAlign="LEFT",
        style=TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), pdf.FONT, 7.5),
                ("TEXTCOLOR", (0, 1), (-1, 1), pdf.MUTED),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, pdf.INK),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8 * mm),
            ]
        ),
    )


def _signatures(d: MonthlyData, c: Page) -> list[Any]:
    """The signature block: every signature of the month, or lines to sign on paper."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, para, table

    t = c.t
    marks = c.marks
    story: list[Any] = []
    story += heading("Signatures", 2)
    if d.signatures:
        story += table(
            ["Name", "Time", "Meaning", "Chain head when signed"],
            [[s.name, t(s.at), s.meaning, s.head] for s in d.signatures],
            widths(
                [40, T, 16, Fit("0" * 72, mono=True)],
                pdf.CONTENT_WIDTH,
                ["Name", "Time", "Meaning", "Chain head when signed"],
            ),
            mono_cols=[3],
        )
        story += table(
            ["Signature", "Since signing"],
            [
                [
                    f"#{s.signature_id} {s.name}",
                    marks.alert(s.since) if "changed" in s.since else s.since,
                ]
                for s in d.signatures
            ],
            [40 * mm, pdf.CONTENT_WIDTH - 40 * mm],
        )
    else:
        story.append(
            para(
                "Not yet signed electronically for this month (sterilog sign MONTH --meaning "
                "reviewed|approved). Sign by hand below:",
                pdf.STYLES.small,
            )
        )
        story.append(_signature_lines())
    return story
