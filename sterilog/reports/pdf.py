"""Shared ReportLab plumbing for every sterilog PDF.

One A4 page template (header with clinic, title and period; footer with the generation time and
"Page X of Y"; an optional INCOMPLETE stamp), bundled Unicode fonts, one escaping helper for user
text, a small set of styles, a table helper that stays linear for tens of thousands of rows, and
2-D codes. Reports build a story of flowables with these helpers and hand it to `build_pdf`.

Importing this module imports ReportLab: never import it on the CLI's interactive path.
"""

from __future__ import annotations

import bisect
import io
import math
import os
import re
import weakref
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias
from zoneinfo import ZoneInfo

from reportlab import rl_config
from reportlab.graphics.barcode.ecc200datamatrix import ECC200DataMatrix
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing, Rect
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Table,
    TableStyle,
)

__all__ = [
    "CONTENT_WIDTH",
    "FONT",
    "FONT_BOLD",
    "FONT_MONO",
    "LANDSCAPE_CONTENT_WIDTH",
    "STYLES",
    "Cell",
    "Styles",
    "build_pdf",
    "datamatrix_flowable",
    "esc",
    "fit_width",
    "heading",
    "key_values",
    "landscape_pages",
    "local_time",
    "para",
    "portrait_pages",
    "qr_flowable",
    "table",
]

# --- fonts ------------------------------------------------------------------------------------

FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
FONT_MONO = "DejaVuSansMono"
_FONT_DIR = Path(__file__).with_name("fonts")


def _register_fonts() -> None:
    # The 14 standard PDF fonts cover Latin-1 only; a client called "Zoë" or "Ясна" needs an
    # embedded Unicode font. DejaVu is bundled (with its licence) so no system font is assumed.
    registered = set(pdfmetrics.getRegisteredFontNames())
    for name in (FONT, FONT_BOLD, FONT_MONO):
        if name not in registered:
            pdfmetrics.registerFont(TTFont(name, str(_FONT_DIR / f"{name}.ttf")))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD
    )
    pdfmetrics.registerFontFamily(
        FONT_MONO, normal=FONT_MONO, bold=FONT_MONO, italic=FONT_MONO, boldItalic=FONT_MONO
    )


_register_fonts()

# --- page geometry and palette ----------------------------------------------------------------

PAGE_SIZE: tuple[float, float] = A4
_MARGIN_X = 15 * mm
_HEADER_TOP = 11 * mm  # page top to the clinic name's cap line
_FRAME_TOP = 24 * mm  # page top to the content frame (the header above it)
_BANNER_SPACE = 6 * mm  # extra room for the INCOMPLETE banner
_FRAME_BOTTOM = 19 * mm  # page bottom to the content frame (footer below it)
CONTENT_WIDTH: float = A4[0] - 2 * _MARGIN_X
LANDSCAPE_CONTENT_WIDTH: float = A4[1] - 2 * _MARGIN_X

INK = colors.HexColor("#1D2430")
MUTED = colors.HexColor("#5B6573")
ACCENT = colors.HexColor("#1F3A5F")
RULE = colors.HexColor("#C5CCD6")
ZEBRA = colors.HexColor("#F3F5F8")
VOID = colors.HexColor("#8C939D")
ALERT = colors.HexColor("#B3261E")

# --- text -------------------------------------------------------------------------------------

# C0 and C1 controls, DEL, lone surrogates (from undecodable bytes) and the two non-characters
# U+FFFE/U+FFFF. Tab and newline are handled separately; everything else unprintable becomes
# U+FFFD so a reader can see that something was there instead of it silently vanishing.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    if text.isprintable():  # no tab, newline, control, surrogate or non-character: as is
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _UNPRINTABLE.sub("\ufffd", text)


def _one_line(text: str) -> str:
    return " ".join(_clean(text).split("\n"))


# Scripts DejaVu lacks (Chinese, Japanese kana, Korean hangul) print in WenQuanYi Micro Hei
# (Apache-2.0, bundled, see fonts/LICENSE), chosen per character: a run of characters DejaVu has
# no glyph for is wrapped in a <font> tag. The 5 MB font is parsed only when first needed.
FALLBACK_FONT = "WenQuanYiMicroHei"
_FALLBACK_FILE = "wqy-microhei.ttc"
_COVERED: frozenset[int] = frozenset(pdfmetrics.getFont(FONT).face.charToGlyph)


def _fallback_ready() -> None:
    if FALLBACK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(
            TTFont(FALLBACK_FONT, str(_FONT_DIR / _FALLBACK_FILE), subfontIndex=0)
        )


def _needs_fallback(text: str) -> bool:
    covered = _COVERED
    return any(ord(ch) not in covered for ch in text)


def _with_fallback(markup: str) -> str:
    """Escaped markup with each run of characters DejaVu lacks set in the fallback font."""
    if markup.isascii():
        return markup
    out: list[str] = []
    run: list[str] = []
    wrapped = False

    def flush() -> None:
        nonlocal wrapped
        if run:
            out.append(f'<font face="{FALLBACK_FONT}">{"".join(run)}</font>')
            run.clear()
            wrapped = True

    for ch in markup:
        if ord(ch) in _COVERED:
            flush()
            out.append(ch)
        else:
            run.append(ch)
    flush()
    if wrapped:
        _fallback_ready()
    return "".join(out)


def esc(text: object) -> str:
    """User text as Paragraph markup that prints exactly as typed.

    `<`, `>`, `&` and quotes become entities, so user text can never open a tag; newlines become
    `<br/>`; control characters and other unprintable code points become U+FFFD. `None` is "".
    """
    if text is None:
        return ""
    cleaned = _clean(str(text))
    escaped = (
        cleaned.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )
    return _with_fallback(escaped).replace("\n", "<br/>")


def para(text: object, style: ParagraphStyle | None = None) -> Paragraph:
    """A Paragraph of user text, escaped (see `esc`). Default style: body."""
    return Paragraph(esc(text), style if style is not None else STYLES.body)


def local_time(moment: datetime, tz_name: str, *, seconds: bool = False) -> str:
    """An aware datetime as clinic-local "YYYY-MM-DD HH:MM[:SS]" (the zone is in the header)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass an aware one")
    local = moment.astimezone(ZoneInfo(tz_name))
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


# --- styles -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Styles:
    title: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    mono: ParagraphStyle
    th: ParagraphStyle


_CELL_SIZE = 7.5
_MONO_SIZE = 6.5
_CELL_LEADING = 9.2
_PAD_X = 3.0
_PAD_TOP = 2.0
_PAD_BOTTOM = 2.5

STYLES = Styles(
    title=ParagraphStyle(
        "sl-title", fontName=FONT_BOLD, fontSize=17, leading=21, textColor=ACCENT, spaceAfter=4
    ),
    h1=ParagraphStyle(
        "sl-h1",
        fontName=FONT_BOLD,
        fontSize=12.5,
        leading=16,
        textColor=ACCENT,
        spaceBefore=12,
        spaceAfter=5,
    ),
    h2=ParagraphStyle(
        "sl-h2",
        fontName=FONT_BOLD,
        fontSize=10,
        leading=13,
        textColor=INK,
        spaceBefore=8,
        spaceAfter=4,
    ),
    body=ParagraphStyle(
        "sl-body", fontName=FONT, fontSize=9, leading=12.5, textColor=INK, spaceAfter=4
    ),
    small=ParagraphStyle(
        "sl-small", fontName=FONT, fontSize=7, leading=9, textColor=MUTED, spaceAfter=3
    ),
    cell=ParagraphStyle(
        "sl-cell", fontName=FONT, fontSize=_CELL_SIZE, leading=_CELL_LEADING, textColor=INK
    ),
    mono=ParagraphStyle(
        "sl-mono", fontName=FONT_MONO, fontSize=_MONO_SIZE, leading=_CELL_LEADING, textColor=INK
    ),
    th=ParagraphStyle(
        "sl-th",
        fontName=FONT_BOLD,
        fontSize=_CELL_SIZE,
        leading=_CELL_LEADING,
        textColor=colors.white,
    ),
)


def heading(text: str, level: Literal[1, 2] = 1) -> list[Flowable]:
    """A section heading that never sits alone at the foot of a page."""
    style = STYLES.h1 if level == 1 else STYLES.h2
    # CondPageBreak rather than keepWithNext: keepWithNext would push a heading followed by a long
    # table to a new page whenever the whole table does not fit on the current one.
    return [CondPageBreak(34 * mm if level == 1 else 26 * mm), Paragraph(esc(text), style)]


def fit_width(sample: str, *, mono: bool = False) -> float:
    """Column width (points) in which `sample` fits on one line in a `table` cell."""
    font, size = (FONT_MONO, _MONO_SIZE) if mono else (FONT, _CELL_SIZE)
    width: float = pdfmetrics.stringWidth(sample, font, size)
    return float(math.ceil(width + 2 * _PAD_X + 0.5))


# --- tables -----------------------------------------------------------------------------------

Cell: TypeAlias = str | int | float | Flowable | None
_Align = Literal["LEFT", "RIGHT", "CENTER"]
_ALIGN_ENUM = {"LEFT": TA_LEFT, "RIGHT": TA_RIGHT, "CENTER": TA_CENTER}
_CellValue: TypeAlias = str | Flowable


def _wrap_lines(text: str, font: str, size: float, width: float) -> list[str]:
    """Lines of `text` no wider than `width`; a token wider than the column is broken."""
    lines: list[str] = []
    for line in simpleSplit(text, font, size, width):
        while pdfmetrics.stringWidth(line, font, size) > width and len(line) > 1:
            cut, used = 1, pdfmetrics.stringWidth(line[0], font, size)
            while cut < len(line):
                used += pdfmetrics.stringWidth(line[cut], font, size)
                if used > width:
                    break
                cut += 1
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def _base_table_style(ncols: int, aligns: Sequence[str]) -> list[Any]:
    """TableStyle commands for the one-row "empty" table (rows go through `_RowsBlock`)."""
    cmds: list[Any] = [
        ("FONT", (0, 0), (-1, -1), FONT, _CELL_SIZE, _CELL_LEADING),
        ("TEXTCOLOR", (0, 1), (-1, -1), INK),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), _PAD_X),
        ("RIGHTPADDING", (0, 0), (-1, -1), _PAD_X),
        ("TOPPADDING", (0, 0), (-1, -1), _PAD_TOP),
        ("BOTTOMPADDING", (0, 0), (-1, -1), _PAD_BOTTOM),
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("BOX", (0, 0), (-1, -1), 0.5, RULE),
    ]
    for col, align in enumerate(aligns):
        if align != "LEFT":
            cmds.append(("ALIGN", (col, 0), (col, -1), align))
    return cmds


def _rgb(color: Any) -> str:
    return f"{color.red:.3f} {color.green:.3f} {color.blue:.3f}"


# Encoded text per PDF document: font name and text -> [(subset, escaped bytes)]. A glyph keeps
# its subset and code for the whole document once `splitString` has assigned them, so encoding
# the same text again ("passed", a practitioner's name, a room code) can reuse the first result.
_ENCODED: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], list[tuple[int, str]]]] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class _Fitted:
    """A flowable cell, wrapped to its column once."""

    flowable: Flowable
    width: float
    height: float


# A cell is its lines of text (already wrapped to the column) or a wrapped flowable.
_RowCell: TypeAlias = "tuple[str, ...] | _Fitted"


@dataclass
class _Row:
    cells: list[_RowCell]
    height: float
    struck: bool


class _Layout:
    """What every block of one table shares: columns, header, fonts and a width cache."""

    def __init__(
        self,
        header: list[str],
        widths: list[float],
        aligns: list[str],
        fonts: list[tuple[str, float]],
    ) -> None:
        self.widths = widths
        self.lefts = [sum(widths[:c]) for c in range(len(widths))]
        self.width = sum(widths)
        self.inner = [w - 2 * _PAD_X for w in widths]
        self.aligns = aligns
        self.fonts = fonts
        self._measured: dict[tuple[str, float, str], float] = {}
        self.header = [
            tuple(_wrap_lines(text, FONT_BOLD, _CELL_SIZE, self.inner[c]))
            for c, text in enumerate(header)
        ]
        self.header_height = self.height_of(self.header)

    def string_width(self, text: str, font: str, size: float) -> float:
        key = (font, size, text)
        width = self._measured.get(key)
        if width is None:
            width = self._measured[key] = pdfmetrics.stringWidth(text, font, size)
        return width

    def lines(self, text: str, column: int) -> tuple[str, ...]:
        font, size = self.fonts[column]
        if "\n" not in text and self.string_width(text, font, size) <= self.inner[column]:
            return (text,)
        return tuple(_wrap_lines(text, font, size, self.inner[column]))

    @staticmethod
    def height_of(cells: Sequence[_RowCell]) -> float:
        tallest = 0.0
        for cell in cells:
            h = cell.height if isinstance(cell, _Fitted) else _CELL_LEADING * len(cell)
            tallest = max(tallest, h)
        return tallest + _PAD_TOP + _PAD_BOTTOM


class _Rows:
    """Prepared rows and their running heights (`tops[i]` = height of the rows before row i)."""

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows
        tops = [0.0]
        for row in rows:
            tops.append(tops[-1] + row.height)
        self.tops = tops


class _RowsBlock(Flowable):  # type: ignore[misc]
    """Rows `start` to `stop` of a table under its header, drawn with direct canvas operators.

    Rows are wrapped once (in `table`); the block knows its height from running sums, so
    `wrap` and `split` cost a bisection, not a re-measurement of the remaining rows, and a
    split happens at a row boundary with the header repeated on top of every part. A row
    taller than a whole page is split between its lines.
    """

    def __init__(self, layout: _Layout, rows: _Rows, start: int, stop: int) -> None:
        super().__init__()
        self._layout = layout
        self._rows = rows
        self._start = start
        self._stop = stop
        self.width = layout.width
        self.height = layout.header_height + rows.tops[stop] - rows.tops[start]
        self.hAlign = "LEFT"
        self.spaceAfter = 8

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        if self.width > avail_width + 0.5:
            raise ValueError(
                f"table columns add up to {self.width:.0f} pt; the frame is {avail_width:.0f} pt"
            )
        return self.width, self.height

    def split(self, avail_width: float, avail_height: float) -> list[Flowable]:
        layout, rows, start = self._layout, self._rows, self._start
        room = avail_height - layout.header_height
        stop = bisect.bisect_right(rows.tops, rows.tops[start] + room, start, self._stop + 1)
        fits = stop - 1 - start  # rows start .. start+fits-1 fit in the room
        if fits >= self._stop - start:
            return [self]
        if fits > 0:
            return [
                _RowsBlock(layout, rows, start, start + fits),
                _RowsBlock(layout, rows, start + fits, self._stop),
            ]
        frame = getattr(self, "_frame", None)
        if frame is None or not getattr(frame, "_atTop", False):
            return []  # try again at the top of the next frame
        # A single row taller than a whole page (a very long note): split inside that row.
        pieces = self._split_row(rows.rows[start], room - _PAD_TOP - _PAD_BOTTOM)
        if pieces is None:  # never drop a record silently
            raise ValueError(f"table row {start} cannot be laid out on an empty page")
        head, rest = pieces
        first = _RowsBlock(layout, _Rows([head]), 0, 1)
        tail = [rest, *rows.rows[start + 1 : self._stop]]
        return [first, _RowsBlock(layout, _Rows(tail), 0, len(tail))]

    def _split_row(self, row: _Row, room: float) -> tuple[_Row, _Row] | None:
        head: list[_RowCell] = []
        rest: list[_RowCell] = []
        for c, cell in enumerate(row.cells):
            if isinstance(cell, _Fitted):
                inner = self._layout.inner[c]
                parts = cell.flowable.split(inner, room) if cell.height > room else []
                if cell.height <= room:
                    head.append(cell)
                    rest.append(())
                elif len(parts) == 2:
                    head.append(_fitted(parts[0], inner))
                    rest.append(_fitted(parts[1], inner))
                else:
                    head.append(())
                    rest.append(cell)
            else:
                keep = max(0, int((room + 1e-6) // _CELL_LEADING))
                head.append(cell[:keep])
                rest.append(cell[keep:])
        if not any(head):
            return None
        return (
            _Row(head, _Layout.height_of(head), row.struck),
            _Row(rest, _Layout.height_of(rest), row.struck),
        )

    def draw(self) -> None:
        layout = self._layout
        rows = self._rows.rows[self._start : self._stop]
        width, top = self.width, self.height
        paint = _Painter(self.canv, layout)
        fills = paint.fills
        fills.append(f"{_ACCENT_RGB} rg")
        hh = layout.header_height
        fills.append(f"0 {top - hh:.2f} {width:.2f} {hh:.2f} re f")
        paint.cells(layout.header, top, head=True, struck=False)
        y = top - hh
        zebra: list[str] = []
        rules = paint.rules
        for index, row in enumerate(rows):
            h = row.height
            if index % 2:
                zebra.append(f"0 {y - h:.2f} {width:.2f} {h:.2f} re")
            paint.cells(row.cells, y, head=False, struck=row.struck)
            y -= h
            rules.append(f"0 {y:.2f} m {width:.2f} {y:.2f} l")
        if zebra:
            fills.append(f"{_ZEBRA_RGB} rg")
            fills.extend(zebra)
            fills.append("f")
        paint.text.append("ET")
        paint.finish(width, top)


class _Painter:
    """The raw content of one table slice: backgrounds, text, rules, strike lines, and the
    flowable cells drawn through the canvas."""

    def __init__(self, canv: Any, layout: _Layout) -> None:
        self.canv = canv
        self.layout = layout
        lefts, widths = layout.lefts, layout.widths
        self.anchors = [
            lefts[c] + _PAD_X
            if align == "LEFT"
            else lefts[c] + widths[c] - _PAD_X
            if align == "RIGHT"
            else lefts[c] + widths[c] / 2
            for c, align in enumerate(layout.aligns)
        ]
        doc = canv._doc
        encoded = _ENCODED.get(doc)
        if encoded is None:
            encoded = _ENCODED[doc] = {}
        self.encoded: dict[tuple[str, str], list[tuple[int, str]]] = encoded
        self.fills: list[str] = []  # backgrounds
        self.text: list[str] = ["BT"]
        self.rules: list[str] = []  # row rules
        self.strikes: list[str] = []
        self.flowables: list[tuple[Flowable, float, float]] = []
        self.current_font: tuple[str, float, int] | None = None
        self.current_color = ""

    def cells(
        self, values: Sequence[_RowCell], row_top: float, *, head: bool, struck: bool
    ) -> None:
        layout = self.layout
        lefts, widths, aligns, anchors = layout.lefts, layout.widths, layout.aligns, self.anchors
        string_width = layout.string_width
        doc = self.canv._doc
        escape = self.canv._escape
        encoded = self.encoded
        emit = self.text.append
        strikes = self.strikes
        current_font, current_color = self.current_font, self.current_color
        color = _WHITE_RGB if head else _VOID_RGB if struck else _INK_RGB
        for c, cell in enumerate(values):
            align = aligns[c]
            if isinstance(cell, _Fitted):
                x = lefts[c] + _PAD_X
                if align == "RIGHT":
                    x = lefts[c] + widths[c] - _PAD_X - cell.width
                elif align == "CENTER":
                    x = lefts[c] + (widths[c] - cell.width) / 2
                self.flowables.append((cell.flowable, x, row_top - _PAD_TOP - cell.height))
                continue
            if not cell:
                continue
            font, size = (FONT_BOLD, _CELL_SIZE) if head else layout.fonts[c]
            y = row_top - _PAD_TOP - size
            for line in cell:
                if not line:
                    y -= _CELL_LEADING
                    continue
                x = anchors[c]
                if align != "LEFT":
                    shown = string_width(line, font, size)
                    x -= shown if align == "RIGHT" else shown / 2
                if color != current_color:
                    emit(f"{color} rg")
                    current_color = color
                emit(f"1 0 0 1 {x:.2f} {y:.2f} Tm")
                pieces = encoded.get((font, line))
                if pieces is None:
                    pieces = encoded[(font, line)] = [
                        (subset, f"({escape(chunk)}) Tj")
                        for subset, chunk in pdfmetrics.getFont(font).splitString(line, doc)
                    ]
                for subset, shown_text in pieces:
                    if current_font != (font, size, subset):
                        name = pdfmetrics.getFont(font).getSubsetInternalName(subset, doc)
                        emit(f"{name} {size:.2f} Tf")
                        current_font = (font, size, subset)
                    emit(shown_text)
                if struck:
                    sy = y + 0.25 * size
                    end = x + string_width(line, font, size)
                    strikes.append(f"{x:.2f} {sy:.2f} m {end:.2f} {sy:.2f} l")
                y -= _CELL_LEADING
        self.current_font, self.current_color = current_font, current_color

    def finish(self, width: float, top: float) -> None:
        """Raw content, each part inside saveState/restoreState (q/Q) so nothing leaks into the
        canvas' graphics state; flowable cells are drawn through the canvas in between."""
        canv = self.canv
        code = canv._code
        canv.saveState()
        code.append("\n".join(self.fills))
        code.append("\n".join(self.text))
        if self.strikes:
            code.append(f"{_VOID_RGB} RG 0.5 w\n" + "\n".join(self.strikes) + "\nS")
        canv.restoreState()
        for flowable, x, fy in self.flowables:
            flowable.drawOn(canv, x, fy)
        canv.saveState()
        code.append(f"{_RULE_RGB} RG 0.25 w\n" + "\n".join(self.rules) + "\nS")
        code.append(f"0.5 w 0 0 {width:.2f} {top:.2f} re S")
        canv.restoreState()


_INK_RGB = _rgb(INK)
_VOID_RGB = _rgb(VOID)
_RULE_RGB = _rgb(RULE)
_ZEBRA_RGB = _rgb(ZEBRA)
_ACCENT_RGB = _rgb(ACCENT)
_WHITE_RGB = _rgb(colors.white)


def _fitted(flowable: Flowable, width: float) -> _Fitted:
    w, h = flowable.wrap(width, 0x7FFFFFFF)
    return _Fitted(flowable, float(w), float(h))


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    col_widths: Sequence[float],
    *,
    strike_rows: Collection[int] = frozenset(),
    mono_cols: Collection[int] = frozenset(),
    align: Sequence[_Align] | None = None,
    empty: str = "None recorded.",
) -> list[Flowable]:
    """A data table whose header row repeats on every page.

    `rows` holds plain values (str, int, float, None) or ready flowables. Plain values are user
    text, printed literally (never parsed as markup). Text wider than its column is wrapped at
    spaces, and a token wider than its column is broken, so no cell overflows the page. Rows
    are wrapped once here and drawn with direct canvas operators (`_RowsBlock`): a platypus
    Table, or a Paragraph per cell, makes a 20 000-row report several times slower.
    `strike_rows` (indexes into `rows`) are voided records: struck through and greyed.
    `mono_cols` use the monospaced cell font (hashes, GS1 strings); size them with
    `fit_width(sample, mono=True)` so the token stays on one line.
    """
    ncols = len(header)
    if len(col_widths) != ncols:
        raise ValueError(f"{ncols} header cells but {len(col_widths)} column widths")
    aligns: list[str] = list(align) if align is not None else ["LEFT"] * ncols
    if len(aligns) != ncols:
        raise ValueError(f"{ncols} header cells but {len(aligns)} alignments")
    mono = frozenset(mono_cols)
    widths = [float(w) for w in col_widths]
    fonts = [(FONT_MONO, _MONO_SIZE) if c in mono else (FONT, _CELL_SIZE) for c in range(ncols)]
    struck_set = set(strike_rows)
    layout = _Layout([_one_line(h) for h in header], widths, aligns, fonts)

    prepared: list[_Row] = []
    height_of = _Layout.height_of
    for index, row in enumerate(rows):
        if len(row) != ncols:
            raise ValueError(f"row {index} has {len(row)} cells, the header {ncols}")
        out: list[_RowCell] = []
        for c, value in enumerate(row):
            if isinstance(value, Flowable):
                out.append(_fitted(value, layout.inner[c]))
            elif isinstance(value, str) and not value.isascii() and _needs_fallback(value):
                # Drawn by the fast path in DejaVu only: a cell DejaVu cannot print goes through
                # a Paragraph, whose markup falls back per character (rare, so no cost).
                out.append(_fitted(Paragraph(esc(value), STYLES.cell), layout.inner[c]))
            else:
                out.append(layout.lines("" if value is None else _clean(str(value)), c))
        prepared.append(_Row(out, height_of(out), index in struck_set))

    if not prepared:
        th_styles = {
            a: ParagraphStyle(f"sl-th-{a}", parent=STYLES.th, alignment=_ALIGN_ENUM[a])
            for a in aligns
        }
        head: list[_CellValue] = [
            Paragraph(esc(text), th_styles[aligns[c]]) for c, text in enumerate(header)
        ]
        note = Paragraph(
            esc(empty), ParagraphStyle("sl-empty", parent=STYLES.cell, textColor=MUTED)
        )
        empty_row: list[_CellValue] = [note] + [""] * (ncols - 1)
        style = _base_table_style(ncols, aligns)
        style.append(("SPAN", (0, 1), (-1, 1)))
        return [
            Table(
                [head, empty_row],
                colWidths=widths,
                style=TableStyle(style),
                repeatRows=1,
                hAlign="LEFT",
                spaceAfter=8,
            )
        ]
    return [_RowsBlock(layout, _Rows(prepared), 0, len(prepared))]


def key_values(
    items: Iterable[tuple[str, Cell]], *, key_width: float = 45 * mm, width: float = CONTENT_WIDTH
) -> Table:
    """A two-column label/value block (summary facts); values are escaped user text."""
    data = [
        [Paragraph(esc(key), STYLES.h2), value if isinstance(value, Flowable) else para(value)]
        for key, value in items
    ]
    return Table(
        data,
        colWidths=[key_width, width - key_width],
        hAlign="LEFT",
        spaceAfter=8,
        style=TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
            ]
        ),
    )


# --- 2-D codes --------------------------------------------------------------------------------


def qr_flowable(data: str, size_mm: float, *, level: Literal["L", "M", "Q", "H"] = "M") -> Drawing:
    """A square QR code `size_mm` wide, quiet zone included (a Drawing: a flowable that can also
    be placed on a canvas with `.drawOn(canvas, x, y)`)."""
    widget = QrCodeWidget(data, barLevel=level)
    x0, y0, x1, y1 = widget.getBounds()
    size = size_mm * mm
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


class _DataMatrix(ECC200DataMatrix):  # type: ignore[misc]
    """ReportLab's ECC 200 symbol with its C40 data encoding corrected.

    ReportLab (5.x) maps `:;<=>?@` to the wrong C40 shift-2 values, pads a final lone C40 value
    with shift codes that decode as an extra NUL character, and can emit a 0 pad codeword; all
    three make scanners read something other than the pack ID. The symbol layout and the
    Reed-Solomon code are ReportLab's and are left alone.
    """

    def _encode_c40_char(self, char: str) -> list[int]:
        o = ord(char)
        if o == 32:
            return [3]
        if 48 <= o <= 57:
            return [o - 44]
        if 65 <= o <= 90:
            return [o - 51]
        if 33 <= o <= 47:
            return [1, o - 33]
        if 58 <= o <= 64:
            return [1, o - 43]
        if 91 <= o <= 95:
            return [1, o - 69]
        if 96 <= o <= 127:
            return [2, o - 96]
        raise ValueError(f"cannot encode {char!r} in a Data Matrix here (printable ASCII only)")

    def _encode_c40(self, value: str) -> list[int]:
        per_char = [self._encode_c40_char(ch) for ch in value]
        # C40 packs three values into two codewords. A final pair is padded with a shift value;
        # a final single value is not allowed, so the last character goes out in ASCII mode.
        split = len(value)
        if sum(len(v) for v in per_char) % 3 == 1:
            split -= 1
        c40 = [x for v in per_char[:split] for x in v]
        if len(c40) % 3:
            c40.append(0)
        codewords = [230]
        for i in range(0, len(c40), 3):
            packed = c40[i] * 1600 + c40[i + 1] * 40 + c40[i + 2] + 1
            codewords += [packed // 256, packed % 256]
        codewords.append(254)
        codewords += [ord(ch) + 1 for ch in value[split:]]
        if len(codewords) > self.cw_data:
            raise ValueError(f"{len(value)} characters do not fit in a 44x44 Data Matrix")
        if len(codewords) < self.cw_data:
            codewords.append(129)
        while len(codewords) < self.cw_data:
            pad = 129 + (149 * (len(codewords) + 1)) % 253 + 1
            codewords.append(pad - 254 if pad > 254 else pad)
        return codewords


def _datamatrix_modules(data: str) -> list[list[int]]:
    """Rows of the symbol, bottom row first (1 = dark)."""
    if not data:
        raise ValueError("nothing to encode")
    symbol = _DataMatrix(value=data)
    symbol.validated = data
    encoded: list[list[int]] = symbol.encode()
    return encoded


def datamatrix_flowable(data: str, size_mm: float) -> Drawing:
    """A square Data Matrix (ECC 200) `size_mm` wide, with its one-module quiet zone.

    ReportLab draws one symbol size (44 x 44 modules): enough for a pack ID or a short printable
    ASCII reference (up to about 140 upper-case characters or digits, fewer in lower case). QR
    holds more and is the default; use Data Matrix where scanners or label habits expect it.
    """
    modules = _datamatrix_modules(data)
    size = size_mm * mm
    scale = size / (len(modules) + 2)
    drawing = Drawing(size, size)
    drawing.add(Rect(0, 0, size, size, fillColor=colors.white, strokeColor=None))
    for y, line in enumerate(modules):
        for x, dark in enumerate(line):
            if dark:
                drawing.add(
                    Rect(
                        (x + 1) * scale,
                        (y + 1) * scale,
                        scale,
                        scale,
                        fillColor=colors.black,
                        strokeColor=None,
                    )
                )
    return drawing


# --- page template ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Furniture:
    clinic: str
    title: str
    period: str
    tz_name: str
    generated: str
    incomplete: bool
    anchor: str | None
    training: bool = False


TRAINING_MARK = "TRAINING \u2014 NOT A CLINICAL RECORD"


def _fit(text: str, font: str, size: float, width: float) -> str:
    if _width(text, font, size) <= width:
        return text
    while text and _width(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def _font_runs(text: str, font: str) -> list[tuple[str, str]]:
    """(font, run) pieces of a line: each run of characters DejaVu lacks in the fallback font
    (the header and footer draw on the canvas, not through Paragraph markup)."""
    if text.isascii() or not _needs_fallback(text):
        return [(font, text)]
    _fallback_ready()
    out: list[tuple[str, str]] = []
    for ch in text:
        want = font if ord(ch) in _COVERED else FALLBACK_FONT
        if out and out[-1][0] == want:
            out[-1] = (want, out[-1][1] + ch)
        else:
            out.append((want, ch))
    return out


def _width(text: str, font: str, size: float) -> float:
    return float(sum(pdfmetrics.stringWidth(run, f, size) for f, run in _font_runs(text, font)))


class _NumberedCanvas(Canvas):  # type: ignore[misc]
    """Defers every page until the end so each can say "Page X of Y"."""

    def __init__(self, *args: Any, furniture: _Furniture, pdf_date: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._furniture = furniture
        self._pages: list[dict[str, Any]] = []
        self.setDateFormatter(lambda *_: pdf_date)

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._draw_furniture(number, total)
            Canvas.showPage(self)
        Canvas.save(self)

    def _draw_text(self, x: float, y: float, text: str, font: str, size: float, align: str) -> None:
        """A line in `font`, per character falling back for scripts DejaVu lacks; `align` is
        "left", "right" (x is the right end) or "centre"."""
        runs = _font_runs(text, font)
        if len(runs) == 1 and runs[0][0] == font:  # the common case, drawn as it always was
            self.setFont(font, size)
            if align == "left":
                self.drawString(x, y, text)
            elif align == "right":
                self.drawRightString(x, y, text)
            else:
                self.drawCentredString(x, y, text)
            return
        total = sum(pdfmetrics.stringWidth(run, f, size) for f, run in runs)
        x -= total if align == "right" else total / 2 if align == "centre" else 0
        line = self.beginText(x, y)  # one text object: the line reads back as one line
        for f, run in runs:
            line.setFont(f, size)
            line.textOut(run)
        self.drawText(line)
        self.setFont(font, size)

    def _draw_furniture(self, number: int, total: int) -> None:
        f = self._furniture
        width, height = self._pagesize
        left, right = _MARGIN_X, width - _MARGIN_X
        self.saveState()

        if f.incomplete:
            # A faint diagonal stamp over the content, so a cropped or printed page still shows it.
            self.saveState()
            self.setFillColor(ALERT)
            self.setFillAlpha(0.07)
            self.translate(width / 2, (height - _FRAME_TOP + _FRAME_BOTTOM) / 2)
            self.rotate(math.degrees(math.atan2(height, width)))
            self.setFont(FONT_BOLD, 84)
            self.drawCentredString(0, -30, "INCOMPLETE")
            self.restoreState()

        top = height - _HEADER_TOP
        half = (right - left) / 2 - 4 * mm
        self.setFillColor(INK)
        self._draw_text(
            left, top - 9, _fit(f.clinic, FONT_BOLD, 10.5, half), FONT_BOLD, 10.5, "left"
        )
        self.setFillColor(ACCENT)
        self._draw_text(left, top - 21, _fit(f.title, FONT_BOLD, 9, half), FONT_BOLD, 9, "left")
        self.setFillColor(INK)
        self._draw_text(
            right, top - 9, _fit(f"Period: {f.period}", FONT, 9, half), FONT, 9, "right"
        )
        self.setFillColor(MUTED)
        self.setFont(FONT, 7.5)
        self.drawRightString(right, top - 21, f"Times in {f.tz_name}")
        self.setStrokeColor(ACCENT)
        self.setLineWidth(0.8)
        rule_y = top - 26
        self.line(left, rule_y, right, rule_y)

        if f.incomplete:
            banner_h = 6.5 * mm
            banner_y = rule_y - 2 - banner_h
            self.setFillColor(ALERT)
            self.rect(left, banner_y, right - left, banner_h, stroke=0, fill=1)
            self.setFillColor(colors.white)
            self.setFont(FONT_BOLD, 9)
            self.drawCentredString(
                (left + right) / 2,
                banner_y + banner_h / 2 - 3.2,
                "INCOMPLETE \u2014 this record has gaps; see the report for details",
            )

        foot = _FRAME_BOTTOM - 8 * mm
        self.setStrokeColor(RULE)
        self.setLineWidth(0.5)
        self.line(left, foot + 10, right, foot + 10)
        self.setFillColor(MUTED)
        self.setFont(FONT, 7.5)
        self.drawString(left, foot, f"Generated {f.generated} {f.tz_name}")
        if f.training:
            # A training database's pages can never pass for a clinic's records.
            self.setFillColor(ALERT)
            self.setFont(FONT_BOLD, 7.5)
            self.drawCentredString((left + right) / 2, foot, TRAINING_MARK)
            self.setFillColor(MUTED)
            self.setFont(FONT, 7.5)
        else:
            self.drawCentredString((left + right) / 2, foot, "sterilog")
        self.setFillColor(INK)
        self.setFont(FONT_BOLD, 7.5)
        self.drawRightString(right, foot, f"Page {number} of {total}")
        if f.anchor:
            self.setFillColor(MUTED)
            self.setFont(FONT, 6.5)
            self.drawString(left, foot - 9, f"Audit anchor {f.anchor}")
        self.restoreState()


def landscape_pages() -> list[Flowable]:
    """Insert in a story to continue on landscape A4 pages (wide tables)."""
    return [NextPageTemplate("landscape"), PageBreak()]


def portrait_pages() -> list[Flowable]:
    """Insert in a story to return to portrait A4 pages."""
    return [NextPageTemplate("portrait"), PageBreak()]


def _page_template(
    name: str, pagesize: tuple[float, float], top: float, on_end: Callable[..., None]
) -> Any:
    width, height = pagesize
    frame = Frame(
        _MARGIN_X,
        _FRAME_BOTTOM,
        width - 2 * _MARGIN_X,
        height - top - _FRAME_BOTTOM,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id=f"{name}-body",
    )
    return PageTemplate(id=name, frames=[frame], pagesize=pagesize, onPageEnd=on_end)


def build_pdf(
    target: str | os.PathLike[str] | IO[bytes] | None,
    story: Iterable[Flowable],
    *,
    title: str,
    clinic: str,
    period: str,
    subject: str,
    author: str,
    generated_at: datetime,
    tz_name: str,
    incomplete: bool = False,
    anchor: str | None = None,
    progress: Callable[[int], None] | None = None,
    training: bool = False,
) -> bytes:
    """Lay out `story` on sterilog's A4 page template; write the PDF to `target`; return it.

    `target` is a path, a binary file object, or None (only return the bytes). The output is
    byte-for-byte reproducible: the same story and `generated_at` give the same bytes (the PDF
    creation date is `generated_at`, not the clock). `anchor` ("SEQ:HASH") is printed in every
    page's footer. `progress(pages_done)` is called as each page is laid out.
    """
    local, pdf_date = _pdf_date(generated_at, tz_name)
    furniture = _Furniture(
        clinic=_one_line(clinic),
        title=_one_line(title),
        period=_one_line(period),
        tz_name=tz_name,
        generated=local.strftime("%Y-%m-%d %H:%M"),
        incomplete=incomplete,
        anchor=_one_line(anchor) if anchor else None,
        training=training,
    )

    def page_done(canvas: Any, doc: Any) -> None:
        if progress is not None:
            progress(doc.page)

    top = _FRAME_TOP + (_BANNER_SPACE if incomplete else 0)
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=PAGE_SIZE,
        leftMargin=_MARGIN_X,
        rightMargin=_MARGIN_X,
        topMargin=top,
        bottomMargin=_FRAME_BOTTOM,
        title=_one_line(title),
        author=_one_line(author),
        subject=_one_line(subject),
        creator="sterilog",
        invariant=1,
        pageTemplates=[
            _page_template("portrait", PAGE_SIZE, top, page_done),
            _page_template("landscape", landscape(PAGE_SIZE), top, page_done),
        ],
    )
    # Flate-only (binary) streams: ReportLab's default wraps every stream in ASCII85 as well,
    # which costs a pure-Python pass over every page (10% of a long report) and makes the file
    # a quarter larger, for 7-bit-clean output nobody needs. rl_config is process-wide, so the
    # setting is restored after this build.
    use_a85 = rl_config.useA85
    rl_config.useA85 = 0
    try:
        doc.build(
            list(story),
            canvasmaker=partial(_NumberedCanvas, furniture=furniture, pdf_date=pdf_date),
        )
    finally:
        rl_config.useA85 = use_a85
    data = buffer.getvalue()
    _write(target, data)
    return data


def _pdf_date(generated_at: datetime, tz_name: str) -> tuple[datetime, str]:
    """The generation time in the clinic's zone, and as a PDF date string."""
    if generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise ValueError("generated_at must be timezone-aware")
    local = generated_at.astimezone(ZoneInfo(tz_name))
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    pdf_date = (
        local.strftime("D:%Y%m%d%H%M%S")
        + f"{sign}{abs(minutes) // 60:02d}'{abs(minutes) % 60:02d}'"
    )
    return local, pdf_date


def _write(target: str | os.PathLike[str] | IO[bytes] | None, data: bytes) -> None:
    if target is None:
        pass
    elif isinstance(target, (str, os.PathLike)):
        Path(target).write_bytes(data)
    else:
        target.write(data)
