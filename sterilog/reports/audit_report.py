"""The audit report (SPEC §8): every audit entry of a period, and the whole chain verified.

Each entry is printed with its sequence number, time, operator, action, the records it wrote
(`rooms#1`, runs of ids shortened to `cartridge_units#5-504`) and its full SHA-256 hash on one
line in a monospaced column, so an inspector can compare it with their own recomputation.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog import audit
from sterilog.models import AuditEntry
from sterilog.reports.common import Integrity, Period, day_period
from sterilog.reports.late import LateEntry


@dataclass(frozen=True)
class EntryRow:
    seq: int
    at: dt.datetime
    drill: bool  # made under STERILOG_NOW
    operator: str | None
    action: str
    records: str
    hash: str
    # Late entries this entry wrote (sterilog.lateness): when they happened, entered, by whom.
    late: tuple[LateEntry, ...] = ()


@dataclass(frozen=True)
class AuditData:
    period: Period
    entries: list[EntryRow]
    integrity: Integrity


def record_names(records_json: str) -> str:
    """`rooms#1, cycle_packs#4-6`: the records an entry wrote, consecutive ids as ranges."""
    try:
        items = json.loads(records_json)
    except ValueError:
        return "(unreadable records column)"
    runs: list[list[Any]] = []  # [table, first, last]
    detail: list[str] = []
    for item in items:
        table = item.get("table")
        if table is None:
            content = item.get("content")
            if isinstance(content, dict) and content:
                detail.append(", ".join(f"{k}={v}" for k, v in sorted(content.items())))
            continue
        rid = int(item["id"])
        if runs and runs[-1][0] == table and runs[-1][2] + 1 == rid:
            runs[-1][2] = rid
        else:
            runs.append([table, rid, rid])
    names = [f"{t}#{a}" if a == b else f"{t}#{a}-{b}" for t, a, b in runs]
    return ", ".join(names + detail) or "\u2014"


def _late_of(records_json: str, late: dict[tuple[str, int], LateEntry]) -> tuple[LateEntry, ...]:
    if not late:
        return ()
    try:
        items = json.loads(records_json)
    except ValueError:
        return ()
    keys = [(i.get("table"), i.get("id")) for i in items if isinstance(i, dict)]
    return tuple(late[(t, int(r))] for t, r in keys if t and r is not None and (t, int(r)) in late)


def _entries(
    db: DbSession, period: Period, late: dict[tuple[str, int], LateEntry] | None = None
) -> Iterator[EntryRow]:
    last = 0
    while True:
        batch = db.execute(
            select(
                AuditEntry.seq,
                AuditEntry.at,
                AuditEntry.clock,
                AuditEntry.operator,
                AuditEntry.action,
                AuditEntry.records,
                AuditEntry.hash,
            )
            .where(
                AuditEntry.at >= period.start,
                AuditEntry.at < period.end,
                AuditEntry.seq > last,
            )
            .order_by(AuditEntry.seq)
            .limit(audit.BATCH)
        ).all()
        if not batch:
            return
        for seq, at, clock, operator, action, records, hash_ in batch:
            yield EntryRow(
                int(seq),
                at,
                clock not in ("system", "database"),
                operator,
                action,
                record_names(records),
                hash_,
                _late_of(records, late or {}),
            )
        last = int(batch[-1][0])


def rows(db: DbSession, first: dt.date, last: dt.date, *, tz: ZoneInfo) -> AuditData:
    from sterilog.reports.common import staff_lookup
    from sterilog.reports.late import late_entries
    from sterilog.services.base import load_clinic

    period = day_period(first, last, tz)
    who = staff_lookup(db)
    late = late_entries(
        db,
        period.start,
        period.end,
        load_clinic(db).rules.late_entry_minutes,
        who,
        entered=True,
    )
    entries = list(_entries(db, period, late))
    verification = audit.verify(db)
    return AuditData(
        period=period,
        entries=entries,
        integrity=Integrity(
            entries_in_period=len(entries),
            ok=verification.ok,
            entries=verification.entries,
            head=verification.head,
            problems=tuple((p.record, p.message) for p in verification.problems[:200]),
        ),
    )


def _late_note(entry: LateEntry, tz_name: str) -> str:
    from sterilog.reports import pdf

    return (
        f"; LATE ENTRY {entry.table}#{entry.record_id}: happened "
        f"{pdf.local_time(entry.at, tz_name)}, entered {pdf.local_time(entry.recorded_at, tz_name)}"
        f" by {entry.by}"
    )


def render(
    data: AuditData,
    *,
    generated_at: dt.datetime,
    clinic: str,
    tz_name: str,
    author: str = "sterilog",
    target: Any = None,
    progress: Callable[[int], None] | None = None,
    training: bool = False,
) -> bytes:
    from sterilog.reports import pdf

    story = _verification(data, clinic, tz_name) + _entry_table(data, tz_name)
    return pdf.build_pdf(
        target,
        story,
        title="Audit report",
        clinic=clinic,
        period=data.period.label,
        subject=f"Audit log {data.period.label} with chain verification",
        author=author,
        generated_at=generated_at,
        tz_name=tz_name,
        incomplete=False,
        anchor=data.integrity.head,
        progress=progress,
        training=training,
    )


def _verification(data: AuditData, clinic: str, tz_name: str) -> list[Any]:
    """The title and the verification of the whole chain (portrait)."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph

    from sterilog.reports import pdf
    from sterilog.reports.marks import Marks, mono_style

    marks = Marks()
    integ = data.integrity
    story: list[Any] = [
        Paragraph("Audit report", pdf.STYLES.title),
        pdf.para(
            f"{clinic} \u2014 every audit entry from {data.period.first_day.isoformat()} to "
            f"{data.period.last_day.isoformat()} (clinic days, {tz_name}), and the verification "
            "of the whole chain.",
        ),
        *pdf.heading("Verification of the whole chain"),
        pdf.key_values(
            [
                (
                    "Result",
                    marks.ok(f"OK: {integ.entries} entries verified, every record matches")
                    if integ.ok
                    else marks.alert(
                        f"FAILED: {len(integ.problems)} problem(s) in {integ.entries} entries"
                    ),
                ),
                ("Entries in the period", str(integ.entries_in_period)),
                ("Chain head (SEQ:HASH)", Paragraph(pdf.esc(integ.head), mono_style())),
            ],
            key_width=50 * mm,
        ),
    ]
    if integ.problems:
        story += pdf.table(
            ["Record", "Problem"],
            [[a, b] for a, b in integ.problems],
            [45 * mm, pdf.CONTENT_WIDTH - 45 * mm],
        )
    story.append(pdf.qr_flowable(integ.head, 30))
    story.append(
        pdf.para(
            "Each entry's hash is SHA-256 over the previous hash, the entry's header and the "
            "records it wrote (docs/architecture.md). Check this report against the database: "
            f"sterilog audit verify --anchor {integ.head}",
            pdf.STYLES.small,
        )
    )
    return story


def _entry_table(data: AuditData, tz_name: str) -> list[Any]:
    """Every audit entry of the period, one line each (landscape)."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += pdf.landscape_pages()
    story += pdf.heading(f"Audit entries ({len(data.entries)})")
    story.append(
        pdf.para(
            "* made under STERILOG_NOW (a drill, training or demo clock), not the system clock.",
            pdf.STYLES.small,
        )
    )
    hash_w = pdf.fit_width("0" * 64, mono=True)
    fixed = [14 * mm, pdf.fit_width("0000-00-00 00:00:00 *"), 26 * mm, 34 * mm]
    story += pdf.table(
        ["Seq", "Time", "Operator", "Action", "Records", "Hash (SHA-256)"],
        (
            [
                str(e.seq),
                pdf.local_time(e.at, tz_name, seconds=True) + (" *" if e.drill else ""),
                e.operator or "\u2014",
                e.action,
                e.records + "".join(_late_note(x, tz_name) for x in e.late),
                e.hash,
            ]
            for e in data.entries
        ),
        [*fixed, width - sum(fixed) - hash_w, hash_w],
        mono_cols=[5],
        align=["RIGHT", "LEFT", "LEFT", "LEFT", "LEFT", "LEFT"],
        empty="No audit entries in this period.",
    )
    return story
