"""Section 3, Sterilization: cycles, spore tests, documents, air-removal tests.

Data first (`bi_rows`, `cycle_rows`, `air_rows`, `attachments`, `declared_weeks`), layout after
(`render`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session as DbSession

from sterilog.compliance import facts, history
from sterilog.models import (
    AirRemovalTest,
    BiologicalIndicator,
    BiRead,
    Cycle,
    CyclePack,
    Pack,
    Program,
    Sterilizer,
)
from sterilog.reports.common import (
    DASH,
    Period,
    Who,
    fmt_num,
    weeks,
    within,
)
from sterilog.reports.marks import bi_text, passfail_text, status_text
from sterilog.reports.monthly.layout import (
    SECTIONS,
    Fit,
    Page,
    T,
    tbl,
)
from sterilog.reports.monthly.model import (
    AirRow,
    AttachmentRow,
    BiRow,
    CycleRow,
    MonthlyData,
)


def attachments(
    period: Period,
    cycles: Sequence[CycleRow],
    bis: Sequence[BiRow],
    attached: dict[tuple[str, int], list[Any]],
) -> list[AttachmentRow]:
    """Documents kept with the month's loads and BIs, and every document attached this month."""
    keys = {("load", c.load_id) for c in cycles} | {("bi", b.bi_id) for b in bis}
    records: dict[int, list[tuple[str, int]]] = {}
    infos_by_id: dict[int, Any] = {}
    for (kind, rid), infos in attached.items():
        for a in infos:
            if (kind, rid) in keys or period.start <= a.recorded_at < period.end:
                records.setdefault(a.id, []).append((kind, rid))
                infos_by_id[a.id] = a
    out = []
    for att_id in sorted(records):
        a = infos_by_id[att_id]
        by_kind: dict[str, list[int]] = {}
        for kind, rid in sorted(records[att_id]):
            by_kind.setdefault(kind, []).append(rid)
        label = "; ".join(
            f"{kind}{'s' if len(ids) > 1 else ''} {', '.join(str(i) for i in ids)}"
            for kind, ids in by_kind.items()
        )
        out.append(
            AttachmentRow(att_id, label, a.filename, a.size, a.sha256, a.note, a.recorded_at)
        )
    return out


def declared_weeks(db: DbSession, period: Period) -> list[tuple[str, str, str]]:
    """(sterilizer, ISO week, reason) of the month's weeks declared without a spore test."""
    labels = [f"{y}-W{w:02d}" for y, w, _ in (m.isocalendar() for m in weeks(period))]
    return [(c, w, r) for _, c, w, r in history.declared_weeks(db, labels[0], labels[-1])]


def bi_rows(db: DbSession, period: Period, who: Who) -> tuple[list[BiRow], dict[int, str]]:
    """Every BI placed or read in the month (one row per read), and each load's BI as text."""
    voided_reads = facts.voided_ids(db, "bi-read")
    bi_text: dict[int, str] = {}
    bis: list[BiRow] = []
    bi_q = (
        select(
            BiologicalIndicator.id,
            BiologicalIndicator.lot,
            Cycle.id,
            Cycle.load_no,
            Cycle.at,
            Sterilizer.code,
            BiRead.id,
            BiRead.at,
            BiRead.result,
            BiRead.control,
            BiRead.valid,
            BiRead.operator_id,
        )
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .join(Sterilizer, Sterilizer.id == Cycle.sterilizer_id)
        .outerjoin(BiRead, BiRead.bi_id == BiologicalIndicator.id)
        .where(or_(within(Cycle.at, period), within(BiRead.at, period)))
        .order_by(Cycle.at, Cycle.id, BiRead.at, BiRead.id)
    )
    for bi_id, lot, cid, load_no, placed, st, rid, rat, res, ctl, valid, op in db.execute(bi_q):
        row = BiRow(
            bi_id=int(bi_id),
            load_id=int(cid),
            load_no=int(load_no),
            sterilizer=str(st),
            lot=str(lot),
            placed_at=placed,
            read_id=int(rid) if rid is not None else None,
            read_at=rat,
            result=res,
            control=ctl,
            valid=valid,
            operator=who(op, rat),
            voided=rid is not None and int(rid) in voided_reads,
        )
        bis.append(row)
        if not row.voided:
            if row.read_id is None:
                bi_text.setdefault(row.load_id, f"BI {bi_id} ({lot}): not read")
            elif row.valid:
                bi_text[row.load_id] = f"BI {bi_id} ({lot}): {res}"
            else:
                bi_text.setdefault(row.load_id, f"BI {bi_id} ({lot}): invalid read")
    return bis, bi_text


def _packs_of(db: DbSession, period: Period) -> dict[int, list[str]]:
    """Pack codes of every cycle of the month, in one query."""
    packs_of: dict[int, list[str]] = defaultdict(list)
    for cycle_id, code in db.execute(
        select(CyclePack.cycle_id, Pack.code)
        .join(Pack, Pack.id == CyclePack.pack_id)
        .join(Cycle, Cycle.id == CyclePack.cycle_id)
        .where(within(Cycle.at, period))
        .order_by(CyclePack.id)
    ).all():
        packs_of[int(cycle_id)].append(str(code))
    return packs_of


@dataclass
class _Imported:
    """Device cycle numbers of imported loads, and chemical indicators read after import."""

    device_no: dict[int, int] = field(default_factory=dict)
    ci_read: dict[int, bool] = field(default_factory=dict)
    ci_later: dict[int, tuple[str, int | None]] = field(default_factory=dict)


def _imported(db: DbSession, period: Period) -> _Imported:
    from sterilog.models import CycleCi, ImportedCycle

    out = _Imported()
    for cid, no, read, read_ci, read_type in db.execute(
        select(Cycle.id, ImportedCycle.device_cycle_no, CycleCi.passed, CycleCi.ci, CycleCi.ci_type)
        .outerjoin(ImportedCycle, ImportedCycle.cycle_id == Cycle.id)
        .outerjoin(CycleCi, CycleCi.cycle_id == Cycle.id)
        .where(within(Cycle.at, period))
    ).all():
        if no is not None:
            out.device_no[int(cid)] = int(no)
        if read is not None:
            out.ci_read[int(cid)] = bool(read)
            out.ci_later[int(cid)] = (str(read_ci), read_type)
    return out


def cycle_rows(
    db: DbSession,
    period: Period,
    who: Who,
    bi_text: dict[int, str],
    attached: dict[tuple[str, int], list[Any]],
) -> list[CycleRow]:
    """Every cycle of the month with its packs, BI, source and status."""
    from sterilog.compliance.rules import load_status
    from sterilog.compliance.vocab import LOAD_CI_PENDING, LOAD_FAILED

    packs_of = _packs_of(db, period)
    suspects = facts.suspect_load_ids(db)
    voided_cycles = facts.voided_ids(db, "cycle")
    imp = _imported(db, period)
    cycles: list[CycleRow] = []
    for c, st_code, p_name, p_temp, p_hold, bi_id, bi_lot in db.execute(
        select(
            Cycle,
            Sterilizer.code,
            Program.name,
            Program.temp_c,
            Program.hold_min,
            BiologicalIndicator.id,
            BiologicalIndicator.lot,
        )
        .join(Sterilizer, Sterilizer.id == Cycle.sterilizer_id)
        .join(Program, Program.id == Cycle.program_id)
        .outerjoin(BiologicalIndicator, BiologicalIndicator.cycle_id == Cycle.id)
        .where(within(Cycle.at, period))
        .order_by(Cycle.at, Cycle.id)
    ).all():
        bi_label = bi_text.get(c.id) or (f"BI {bi_id} ({bi_lot}): not read" if bi_id else None)
        status = load_status(c.passed, c.ci, imp.ci_read.get(c.id))
        later = imp.ci_later.get(c.id)
        cycles.append(
            CycleRow(
                load_id=c.id,
                at=c.at,
                sterilizer=st_code,
                load_no=c.load_no,
                program=p_name,
                program_temp_c=p_temp,
                program_hold_min=p_hold,
                temp_c=c.temp_c,
                hold_min=c.hold_min,
                ci=later[0] if later else c.ci,
                ci_type=later[1] if later else c.ci_type,
                bi=bi_label,
                packs=tuple(packs_of.get(c.id, ())),
                operator=who(c.operator_id, c.at),
                passed=status != LOAD_FAILED,
                suspect=c.id in suspects,
                voided=c.id in voided_cycles,
                source="imported" if c.id in imp.device_no else "typed",
                device_cycle_no=imp.device_no.get(c.id),
                ci_pending=status == LOAD_CI_PENDING,
                attachments=tuple(a.filename for a in attached.get(("load", c.id), [])),
            )
        )
    return cycles


def air_rows(db: DbSession, period: Period, who: Who) -> list[AirRow]:
    """Every air-removal test of the month."""
    voided_air = facts.voided_ids(db, "air-removal")
    return [
        AirRow(int(i), at, str(st), str(res), who(op, at), int(i) in voided_air)
        for i, at, st, res, op in db.execute(
            select(
                AirRemovalTest.id,
                AirRemovalTest.at,
                Sterilizer.code,
                AirRemovalTest.result,
                AirRemovalTest.operator_id,
            )
            .join(Sterilizer, Sterilizer.id == AirRemovalTest.sterilizer_id)
            .where(within(AirRemovalTest.at, period))
            .order_by(AirRemovalTest.at, AirRemovalTest.id)
        ).all()
    ]


def declared_table(d: MonthlyData, table: Any) -> list[Any]:
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    return list(
        table(
            ["Sterilizer", "Week", "Declared: no load, no spore test, because"],
            [[c, w, r] for c, w, r in d.declared_weeks],
            [30 * mm, 25 * mm, pdf.CONTENT_WIDTH - 55 * mm],
            empty="No week declared without a spore test.",
        )
    )


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Sterilization."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    story: list[Any] = []
    story += pdf.landscape_pages()
    story += heading(SECTIONS[2])
    for part in (_sterilization_log, _bi_log, _documents_log, _air_removal_log):
        story += part(d, c)
    return story


def _sterilization_log(d: MonthlyData, c: Page) -> list[Any]:
    """Sterilization log."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, para

    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Sterilization log", 2)
    story.append(
        para(
            "Every cycle of the month. FAILED: mechanical or chemical monitoring failed; "
            "SUSPECT: run after the last negative spore test until a positive one was entered. "
            "Packs of failed and suspect loads are blocked at the gate. Source: imported (read "
            "from the sterilizer's own record, device cycle number; hold computed from its "
            "trace) or typed (entered by hand).",
            pdf.STYLES.small,
        )
    )
    story += tbl(
        [
            "Time",
            "Sterilizer",
            "Load",
            "Program",
            "Readings",
            "CI",
            "BI",
            "Packs",
            "Operator",
            "Source",
            "Status",
        ],
        [_cycle_cells(row, c) for row in d.cycles],
        [
            T,
            14,
            Fit("#000 (ID 0000)"),
            33,
            Fit("000.0 °C, 00.0 min"),
            Fit("pass (type 0)"),
            26,
            34,
            24,
            28,
            18,
        ],
        width,
        strike_rows=[i for i, c in enumerate(d.cycles) if c.voided],
    )
    return story


def _cycle_cells(c: CycleRow, page: Page) -> list[Any]:
    """One row of the sterilization log."""
    return [
        page.lt("cycles", c.load_id, c.at),
        c.sterilizer,
        f"#{c.load_no} (ID {c.load_id})",
        f"{c.program} (\u2265{fmt_num(c.program_temp_c)} \u00b0C, "
        f"{fmt_num(c.program_hold_min)} min)",
        (
            f"{fmt_num(c.temp_c)} \u00b0C, {fmt_num(c.hold_min)} min"
            if c.source == "typed"
            else f"min {fmt_num(c.temp_c)} \u00b0C, hold "
            f"{int(c.hold_min * 60 + 0.5) // 60}:{int(c.hold_min * 60 + 0.5) % 60:02d}"
        ),
        "not read"
        if c.ci_pending
        else DASH
        if c.ci is None
        else c.ci + (f" (type {c.ci_type})" if c.ci_type else ""),
        c.bi or DASH,
        ", ".join(c.packs) or "(test cycle)",
        c.operator,
        (f"imported, device #{c.device_cycle_no}" if c.source == "imported" else "typed")
        + "".join(f"; {name}" for name in c.attachments),
        (
            "CI not read"
            if c.ci_pending
            else status_text(c.passed, c.suspect)
            if c.voided  # struck through: the value that was voided
            else page.marks.status(c.passed, c.suspect)
        ),
    ]


def _bi_log(d: MonthlyData, c: Page) -> list[Any]:
    """Spore-test (BI) log."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    t = c.t
    lt = c.lt
    marks = c.marks
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Spore-test (BI) log", 2)
    story += tbl(
        [
            "BI",
            "Placed",
            "Sterilizer",
            "Load",
            "BI lot",
            "Read",
            "Result",
            "Control",
            "Outcome",
            "Read by",
        ],
        [
            [
                str(b.bi_id),
                t(b.placed_at),
                b.sterilizer,
                f"#{b.load_no} (ID {b.load_id})",
                b.lot,
                lt("bi_reads", b.read_id, b.read_at),
                b.result or DASH,
                b.control or DASH,
                bi_text(b) if b.voided else marks.bi(b),
                b.operator if b.read_id is not None else DASH,
            ]
            for b in d.bis
        ],
        [Fit("0000"), T, 18, 20, 20, T, 16, 16, 46, 30],
        width,
        strike_rows=[i for i, b in enumerate(d.bis) if b.voided],
    )
    return story


def _documents_log(d: MonthlyData, c: Page) -> list[Any]:
    """Documents kept with the records."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    t = c.t
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Documents kept with the records", 2)
    story += tbl(
        ["Attachment", "Record", "File", "Bytes", "SHA-256", "Note", "Attached"],
        [
            [
                str(a.attachment_id),
                a.record,
                a.filename,
                str(a.size),
                a.sha256,
                a.note or "",
                t(a.recorded_at),
            ]
            for a in d.attachments
        ],
        [Fit("Attachment"), 26, 40, Fit("00000000"), 70, 40, T],
        width,
    )
    return story


def _air_removal_log(d: MonthlyData, c: Page) -> list[Any]:
    """Air-removal (Bowie-Dick / Helix) test log."""
    from reportlab.lib.units import mm

    from sterilog.reports.pdf import heading

    lt = c.lt
    marks = c.marks
    story: list[Any] = []
    story += heading("Air-removal (Bowie-Dick / Helix) test log", 2)
    story += tbl(
        ["Time", "Sterilizer", "Result", "Operator"],
        [
            [
                lt("air_removal_tests", a.test_id, a.at),
                a.sterilizer,
                passfail_text(a.result) if a.voided else marks.passfail(a.result),
                a.operator,
            ]
            for a in d.air_tests
        ],
        [T, 40, 30, 60],
        160 * mm,
        strike_rows=[i for i, a in enumerate(d.air_tests) if a.voided],
    )
    return story
