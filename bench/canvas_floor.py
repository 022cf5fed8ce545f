#!/usr/bin/env python
"""The floor for any ReportLab monthly report: the same rows, drawn as plain text lines.

    python bench/canvas_floor.py --db month.db --month 2026-10 -o floor.pdf

Reads every row the monthly report lists for the month (cycles with their packs and BI, BI
reads, air-removal tests, room and device cleans, sessions with their packs, refusals, cartridge
receipts, incidents) with SQLAlchemy Core and draws each as one line of text with
`reportlab.pdfgen.canvas` on A4 pages (a title line on every page, "Page N" at the foot), in
the DejaVu Sans font the product embeds (the report must print any user's letters). No
platypus, no tables, no charts: what is left is the cost of reading the rows, formatting
their columns and putting glyphs on pages. `bench/run.py` divides `report monthly` by this.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

FONT_FILE = Path(__file__).resolve().parent.parent / "sterilog" / "reports" / "fonts"
SIZE = 7.0
LEADING = 9.0
MARGIN = 36.0


def _url(raw: str) -> str:
    return raw if "://" in raw else f"sqlite:///{Path(raw).absolute()}"


def _ts(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _bounds(month: str, tz: ZoneInfo) -> tuple[str, str, Any, Any]:
    year, mon = (int(x) for x in month.split("-"))
    first = dt.datetime(year, mon, 1, tzinfo=tz)
    nxt = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    a = first.astimezone(dt.UTC).replace(tzinfo=None)
    b = nxt.astimezone(dt.UTC).replace(tzinfo=None)
    return (
        f"{a:%Y-%m-%d %H:%M:%S}.000000",
        f"{b:%Y-%m-%d %H:%M:%S}.000000",
        a,
        b,
    )


QUERIES: list[tuple[str, str]] = [
    (
        "Sterilization log",
        """SELECT c.at, s.code, c.load_no, p.name, c.temp_c, c.hold_min, c.ci, c.ci_type,
                  b.lot, (SELECT group_concat(pk.code, ' ') FROM cycle_packs cp
                          JOIN packs pk ON pk.id = cp.pack_id WHERE cp.cycle_id = c.id),
                  st.name, c.passed
           FROM cycles c JOIN sterilizers s ON s.id = c.sterilizer_id
           JOIN programs p ON p.id = c.program_id
           LEFT JOIN bis b ON b.cycle_id = c.id
           LEFT JOIN staff st ON st.id = c.operator_id
           WHERE c.at >= :a AND c.at < :b ORDER BY c.at, c.id""",
    ),
    (
        "Spore tests",
        """SELECT c.at, s.code, c.load_no, b.lot, r.at, r.result, r.control, r.valid
           FROM bis b JOIN cycles c ON c.id = b.cycle_id
           JOIN sterilizers s ON s.id = c.sterilizer_id
           LEFT JOIN bi_reads r ON r.bi_id = b.id
           WHERE c.at >= :a AND c.at < :b ORDER BY c.at, b.id""",
    ),
    (
        "Air-removal tests",
        """SELECT t.at, s.code, t.result, st.name FROM air_removal_tests t
           JOIN sterilizers s ON s.id = t.sterilizer_id LEFT JOIN staff st ON st.id = t.operator_id
           WHERE t.at >= :a AND t.at < :b ORDER BY t.at, t.id""",
    ),
    (
        "Room cleaning",
        """SELECT c.at, r.code, c.kind, d.code, c.contact_min, st.name, c.note
           FROM room_cleans c JOIN rooms r ON r.id = c.room_id
           JOIN disinfectants d ON d.id = c.disinfectant_id
           LEFT JOIN staff st ON st.id = c.operator_id
           WHERE c.at >= :a AND c.at < :b ORDER BY c.at, c.id""",
    ),
    (
        "Device cleaning",
        """SELECT c.at, v.code, d.code, c.contact_min, c.barrier_lot, st.name
           FROM device_cleans c JOIN devices v ON v.id = c.device_id
           JOIN disinfectants d ON d.id = c.disinfectant_id
           LEFT JOIN staff st ON st.id = c.operator_id
           WHERE c.at >= :a AND c.at < :b ORDER BY c.at, c.id""",
    ),
    (
        "Sessions",
        """SELECT s.started_at, e.at, r.code, st.name, v.code, s.gtin, s.lot, s.serial, s.expiry,
                  (SELECT group_concat(pk.code, ' ') FROM session_packs sp
                   JOIN packs pk ON pk.id = sp.pack_id WHERE sp.session_id = s.id),
                  s.client
           FROM sessions s JOIN rooms r ON r.id = s.room_id
           JOIN staff st ON st.id = s.practitioner_id JOIN devices v ON v.id = s.device_id
           LEFT JOIN session_ends e ON e.session_id = s.id
           WHERE s.started_at >= :a AND s.started_at < :b ORDER BY s.started_at, s.id""",
    ),
    (
        "Refusals",
        """SELECT f.at, f.room, f.device, f.practitioner, f.client, f.cartridge_scan, f.reasons
           FROM refusals f WHERE f.at >= :a AND f.at < :b ORDER BY f.at, f.id""",
    ),
    (
        "Cartridge receipts",
        """SELECT c.at, l.gtin, l.lot, l.expiry, c.quantity, c.supplier, c.invoice, st.name
           FROM cartridge_receipts c JOIN cartridge_lots l ON l.id = c.lot_id
           LEFT JOIN staff st ON st.id = c.operator_id
           WHERE c.at >= :a AND c.at < :b ORDER BY c.at, c.id""",
    ),
    (
        "Incidents",
        """SELECT i.at, i.session_id, i.kind, i.severity, i.note, st.name FROM incidents i
           LEFT JOIN staff st ON st.id = i.operator_id
           WHERE i.at >= :a AND i.at < :b ORDER BY i.at, i.id""",
    ),
]


def lines(db: str, month: str) -> Iterator[tuple[str, str]]:
    """(section, text line) for every row, times in the clinic's zone."""
    from sqlalchemy import create_engine, text

    engine = create_engine(_url(db))
    try:
        with engine.connect() as conn:
            latest = text("SELECT tz FROM settings ORDER BY id DESC LIMIT 1")
            tz_name = conn.execute(latest).scalar()
            tz = ZoneInfo(str(tz_name))
            a_text, b_text, a_dt, b_dt = _bounds(month, tz)
            sqlite = engine.dialect.name == "sqlite"
            a, b = (a_text, b_text) if sqlite else (a_dt, b_dt)
            for title, sql in QUERIES:
                if not sqlite:
                    sql = sql.replace("group_concat(pk.code, ' ')", "string_agg(pk.code, ' ')")
                for row in conn.execute(text(sql), {"a": a, "b": b}):
                    yield title, _format(row, tz)
    finally:
        engine.dispose()


def _format(row: Iterable[Any], tz: ZoneInfo) -> str:
    out = []
    for i, value in enumerate(row):
        if i == 0 or (isinstance(value, str) and len(value) == 26 and value[10] == " "):
            moment = _ts(value)
            out.append(moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "")
        elif isinstance(value, dt.datetime):
            out.append(_ts(value).astimezone(tz).strftime("%Y-%m-%d %H:%M"))  # type: ignore[union-attr]
        elif value is None:
            out.append("-")
        else:
            out.append(str(value))
    return "  ".join(out)


def draw(rows: Iterable[tuple[str, str]], output: str, title: str) -> int:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont("DejaVuSans", str(FONT_FILE / "DejaVuSans.ttf")))
    width, height = A4
    c = canvas.Canvas(output, pagesize=A4)
    c.setTitle(title)
    page = 1
    y = 0.0
    section = None
    count = 0

    def new_page() -> float:
        nonlocal page
        c.setFont("DejaVuSans", SIZE)
        c.drawString(MARGIN, height - MARGIN, title)
        c.drawRightString(width - MARGIN, MARGIN / 2, f"Page {page}")
        return height - MARGIN - 2 * LEADING

    y = new_page()
    for name, line in rows:
        if name != section:
            section = name
            y -= LEADING / 2
            c.drawString(MARGIN, y, name)
            y -= LEADING
        c.drawString(MARGIN, y, line)
        count += 1
        y -= LEADING
        if y < MARGIN + LEADING:
            c.showPage()
            page += 1
            y = new_page()
    c.showPage()
    c.save()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Canvas floor for the monthly report.")
    parser.add_argument("--db", required=True)
    parser.add_argument("--month", required=True)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    n = draw(lines(args.db, args.month), args.output, f"Monthly compliance report {args.month}")
    print(f"{n} rows drawn to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
