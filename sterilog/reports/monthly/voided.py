"""Section 8, Voided records. Data (`rows`), then layout (`render`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session as DbSession

from sterilog.compliance.voids import voids_touching
from sterilog.reports.common import (
    Period,
    Who,
)
from sterilog.reports.monthly.layout import (
    SECTIONS,
    Page,
    T,
    tbl,
)
from sterilog.reports.monthly.model import (
    MonthlyData,
    VoidRow,
)

VOID_SUMMARY: dict[str, Callable[[Any], str]] = {
    "cycle": lambda r: f"load {r.id} (#{r.load_no}), {'passed' if r.passed else 'failed'}",
    "bi-read": lambda r: f"BI {r.bi_id} read {r.result}, control {r.control}",
    "air-removal": lambda r: f"air-removal test {r.id}: {r.result}",
    "room-clean": lambda r: f"room clean {r.id} ({r.kind})",
    "device-clean": lambda r: f"device clean {r.id}",
    "incident": lambda r: (
        f"incident {r.id} on session {r.session_id}: {r.kind}"
        if r.session_id is not None
        else f"incident {r.id} (no session): {r.kind}"
    ),
    "recall": lambda r: f"recall {r.id}: {r.reason}",
    "discard": lambda r: f"discard {r.id}: {r.reason}",
    "service": lambda r: f"sterilizer service {r.id}: {r.note}",
    "bi-skip": lambda r: f"declared week {r.week} without a spore test: {r.reason}",
}


def rows(db: DbSession, period: Period, who: Who) -> list[VoidRow]:
    """Voids made in the month, and voids of records whose event is in the month."""
    out = [
        VoidRow(
            kind=kind,
            record_id=void.record_id,
            record_at=record.at,
            summary=VOID_SUMMARY[kind](record),
            reason=void.reason,
            by=who(void.operator_id, void.at),
            at=void.at,
        )
        for kind, void, record in voids_touching(db, period.start, period.end)
    ]
    out.sort(key=lambda r: (r.at, r.kind, r.record_id))
    return out


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Voided records."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, para

    t = c.t
    marks = c.marks
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading(SECTIONS[7])
    story.append(
        para(
            "A voided record was entered by mistake and stops counting everywhere (the gate, "
            "status and the gaps above); it is never erased. Voided rows are also struck "
            "through in the logs above.",
            pdf.STYLES.small,
        )
    )
    story += tbl(
        ["Kind", "Record", "Record time", "Void reason", "Voided by", "Voided at"],
        [
            [v.kind, marks.struck(v.summary), t(v.record_at), v.reason, v.by, t(v.at)]
            for v in d.voids
        ],
        [22, 70, T, 80, 34, T],
        width,
        empty="No voided records.",
    )
    return story
