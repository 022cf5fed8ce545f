"""Pack labels for one sterilizer load (SPEC §8): `rows` checks and gathers, `render` draws.

Sheet: A4 with 3 x 8 labels of 63.5 x 33.9 mm (the common 24-up sheet, Avery L7159 and its
equivalents: 7.2 mm left margin, 12.9 mm top margin, 2.5 mm between columns, none between
rows). One label per pack, filled left to right, top to bottom; a load with more than 24 packs
continues on the next sheet. Each label carries a QR code that encodes exactly the pack ID and
nothing else, so a keyboard-wedge scanner at the treatment room types it back as the `--pack`
value.

Only the packs of a passed load are labelled: a failed, suspect or voided load is refused, so
a sterile-looking label never goes on a pack that is not sterile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.errors import UnknownRecord, UserError
from sterilog.models import Cycle, CyclePack, Pack, Program, Staff, Sterilizer
from sterilog.rulepack import RulePack

MM = 72 / 25.4
COLUMNS, ROWS = 3, 8
LABEL_W, LABEL_H = 63.5 * MM, 33.9 * MM
LEFT, TOP = 7.2 * MM, 12.9 * MM
PITCH_X, PITCH_Y = 66.0 * MM, 33.9 * MM
QR_MM = 24.0
PER_SHEET = COLUMNS * ROWS


@dataclass(frozen=True)
class LabelPack:
    code: str
    contents: str


@dataclass(frozen=True)
class LabelData:
    load_id: int
    load_no: int
    sterilizer: str
    program: str
    at: dt.datetime
    operator: str
    use_by: dt.date | None  # None: event-related shelf life
    packs: list[LabelPack]


def rows(db: DbSession, load_id: int, *, tz: ZoneInfo, rules: RulePack) -> LabelData:
    """The load's packs, or UserError when its packs must not be labelled as sterile."""
    from sterilog.compliance.facts import is_load_suspect, is_voided

    cycle = db.get(Cycle, load_id)
    if cycle is None:
        raise UnknownRecord("load", load_id)
    if is_voided(db, "cycle", cycle.id):
        raise UserError(f"load {load_id} has been voided; there is nothing to label")
    if not cycle.passed:
        raise UserError(
            f"load {load_id} failed: its packs are not sterile and must not be labelled; "
            "reprocess them in a new load"
        )
    # Issue 15: an imported load's CI is read later (`cycle ci`); until then, or if it failed,
    # its packs are not sterile.
    from sterilog.compliance.rules import load_status
    from sterilog.compliance.vocab import LOAD_CI_PENDING, LOAD_FAILED
    from sterilog.models import CycleCi

    ci_read = db.execute(
        select(CycleCi.passed).where(CycleCi.cycle_id == cycle.id)
    ).scalar_one_or_none()
    state = load_status(cycle.passed, cycle.ci, ci_read)
    if state == LOAD_CI_PENDING:
        raise UserError(
            f"load {load_id}'s chemical indicator has not been read: record it with "
            f"`sterilog cycle ci {load_id} --ci pass|fail` before labelling its packs"
        )
    if state == LOAD_FAILED:
        raise UserError(
            f"load {load_id} failed its chemical indicator reading: its packs are not sterile "
            "and must not be labelled; reprocess them in a new load"
        )
    if is_load_suspect(db, cycle.id):
        raise UserError(
            f"load {load_id} is suspect after a positive spore test: its packs are not "
            "sterile and must not be labelled; reprocess them in a new load"
        )
    packs = [
        LabelPack(code, contents)
        for code, contents in db.execute(
            select(Pack.code, Pack.contents)
            .join(CyclePack, CyclePack.pack_id == Pack.id)
            .where(CyclePack.cycle_id == cycle.id)
            .order_by(CyclePack.id)
        ).all()
    ]
    if not packs:
        raise UserError(f"load {load_id} is a test cycle with no packs; there is nothing to label")
    sterilizer = db.execute(
        select(Sterilizer.code).where(Sterilizer.id == cycle.sterilizer_id)
    ).scalar_one()
    program = db.execute(select(Program.name).where(Program.id == cycle.program_id)).scalar_one()
    operator = "-"
    if cycle.operator_id is not None:
        staff = db.get(Staff, cycle.operator_id)
        operator = staff.name if staff is not None else "-"
    days = rules.pack_shelf_life_days
    use_by = cycle.at.astimezone(tz).date() + dt.timedelta(days=days) if days else None
    return LabelData(
        load_id=cycle.id,
        load_no=cycle.load_no,
        sterilizer=sterilizer,
        program=program,
        at=cycle.at,
        operator=operator,
        use_by=use_by,
        packs=packs,
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def code_drawing(pack_id: str) -> Any:
    """The 2-D code printed on a label: a QR code of exactly the pack ID (quiet zone
    included). Tests decode this very drawing."""
    from sterilog.reports.pdf import qr_flowable

    return qr_flowable(pack_id, QR_MM, level="M")


def _training_mark(canvas: Any, training: bool) -> None:
    """A training database's label sheets say so, below the labels."""
    if training:
        from sterilog.reports.pdf import FONT_BOLD, TRAINING_MARK

        canvas.setFont(FONT_BOLD, 8)
        canvas.drawCentredString(105 * 72 / 25.4, 5 * 72 / 25.4, TRAINING_MARK)


def render(
    data: LabelData,
    *,
    generated_at: dt.datetime,
    clinic: str,
    tz_name: str,
    target: Any = None,
    training: bool = False,
) -> bytes:
    """Label sheets as PDF bytes (also written to `target`, a path or file, if given).

    No page header or footer: the sheet is die-cut into labels.
    """
    import io
    from pathlib import Path

    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1)
    canvas.setTitle(f"Pack labels, load {data.load_id}")
    canvas.setAuthor(_one_line(clinic))
    canvas.setSubject(
        f"Sterile pack labels for load {data.load_id} (#{data.load_no} on {data.sterilizer})"
    )
    canvas.setCreator("sterilog")
    utc = generated_at.astimezone(dt.UTC)
    canvas.setDateFormatter(lambda *_: utc.strftime("D:%Y%m%d%H%M%S") + "+00'00'")
    _, page_h = A4
    for index, pack in enumerate(data.packs):
        slot = index % PER_SHEET
        if slot == 0 and index:
            _training_mark(canvas, training)
            canvas.showPage()
        col, row = slot % COLUMNS, slot // COLUMNS
        x = LEFT + col * PITCH_X
        y = page_h - TOP - (row + 1) * PITCH_Y
        _draw_label(canvas, x, y, pack, data, clinic, tz_name)
    _training_mark(canvas, training)
    canvas.showPage()
    canvas.save()
    out = buffer.getvalue()
    if isinstance(target, (str, Path)):
        Path(target).write_bytes(out)
    elif target is not None:
        target.write(out)
    return out


def _draw_label(
    canvas: Any, x: float, y: float, pack: LabelPack, data: LabelData, clinic: str, tz_name: str
) -> None:
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from sterilog.reports import pdf

    pad = 2.2 * MM
    qr = code_drawing(pack.code)
    qr.drawOn(canvas, x + 1.2 * MM, y + (LABEL_H - QR_MM * MM) / 2)
    tx = x + 1.2 * MM + QR_MM * MM + 1.0 * MM
    width = x + LABEL_W - pad - tx
    top = y + LABEL_H - pad

    def fit(text: str, font: str, size: float) -> str:
        text = _one_line(text)
        if stringWidth(text, font, size) <= width:
            return text
        while text and stringWidth(text + "\u2026", font, size) > width:
            text = text[:-1]
        return text + "\u2026"

    canvas.saveState()
    canvas.setFillColor(pdf.MUTED)
    canvas.setFont(pdf.FONT, 5.5)
    canvas.drawString(tx, top - 5, fit(clinic, pdf.FONT, 5.5))
    # The pack ID is what a person reads if the scanner fails: as large as fits.
    size = 11.0
    while size > 6 and stringWidth(pack.code, pdf.FONT_BOLD, size) > width:
        size -= 0.5
    canvas.setFillColor(pdf.INK)
    canvas.setFont(pdf.FONT_BOLD, size)
    canvas.drawString(tx, top - 6 - size, fit(pack.code, pdf.FONT_BOLD, size))
    line_y = top - 8.5 - size - 6
    canvas.setFont(pdf.FONT, 6)
    for line in simpleSplit(_one_line(pack.contents), pdf.FONT, 6, width)[:2]:
        canvas.drawString(tx, line_y, fit(line, pdf.FONT, 6))
        line_y -= 7
    when = pdf.local_time(data.at, tz_name)
    facts = [
        f"{data.sterilizer} load #{data.load_no} (ID {data.load_id}), {data.program}",
        f"Sterilized {when}",
        f"By {data.operator}",
        f"Use by {data.use_by.isoformat()}" if data.use_by else "Event-related shelf life",
    ]
    canvas.setFillColor(pdf.INK)
    canvas.setFont(pdf.FONT, 5.6)
    line_y = y + pad + 3 * 6.6
    for fact in facts:
        canvas.drawString(tx, line_y, fit(fact, pdf.FONT, 5.6))
        line_y -= 6.6
    canvas.restoreState()
