"""The PDF plumbing every report is built on (sterilog/reports/pdf.py), read back with pypdf."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth

from sterilog.reports import pdf

GENERATED_AT = datetime(2026, 11, 24, 9, 15, 30, tzinfo=UTC)
TRICKY = [
    "a < b & c > d",
    'He said "sterile" and it\'s fine',
    "Zoë Ångström",
    "Ясна Петрова",
    "Δημήτρης Παπαδόπουλος",
    "<b>not bold</b> &amp; <br/> <font color=red>x</font>",
]


def build(story: list[Any], **overrides: Any) -> bytes:
    kwargs: dict[str, Any] = {
        "title": "Monthly compliance report",
        "clinic": "Zoë's Skin & Laser <Clinic>",
        "period": "November 2026",
        "subject": "Sterilization and equipment compliance",
        "author": "Ada Manager",
        "generated_at": GENERATED_AT,
        "tz_name": "Europe/London",
    }
    kwargs.update(overrides)
    return pdf.build_pdf(None, story, **kwargs)


def pages_text(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def flat(text: str) -> str:
    return " ".join(text.split())


def long_story(rows: int = 400) -> list[Any]:
    return [
        *pdf.heading("Sessions"),
        pdf.para("Every session in the period."),
        *pdf.table(
            ["Ref", "Time", "Practitioner", "Note"],
            (
                [f"R{i:05d}", f"2026-11-{1 + i % 30:02d} 10:00", "Zoë Ångström", "ok"]
                for i in range(rows)
            ),
            [25 * mm, 35 * mm, 50 * mm, 60 * mm],
        ),
    ]


def test_every_page_of_a_multi_page_report_says_page_x_of_y() -> None:
    texts = pages_text(build(long_story()))

    assert len(texts) > 3
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {len(texts)}" in text


def test_every_page_carries_the_header_and_the_generation_time_with_its_zone() -> None:
    texts = pages_text(build(long_story()))

    for text in texts:
        assert "Zoë's Skin & Laser <Clinic>" in text
        assert "Monthly compliance report" in text
        assert "Period: November 2026" in text
        assert "Times in Europe/London" in text
        assert "Generated 2026-11-24 09:15 Europe/London" in text


def test_generation_time_is_printed_in_the_clinic_zone() -> None:
    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)

    (text,) = pages_text(build([pdf.para("x")], generated_at=summer))

    assert "Generated 2026-07-02 00:30 Europe/London" in text


def test_user_text_is_printed_literally_in_paragraphs_cells_struck_rows_and_the_header() -> None:
    story = [
        *(pdf.para(text) for text in TRICKY),
        *pdf.table(
            ["Who", "Note"],
            [[text, text] for text in TRICKY],
            [60 * mm, 110 * mm],
            strike_rows={0, 5},
        ),
    ]

    (text,) = pages_text(build(story, clinic="Zoë & <Ångström> \"Клиника\" 'Ω'"))

    assert "Zoë & <Ångström> \"Клиника\" 'Ω'" in text
    for tricky in TRICKY:
        assert flat(text).count(tricky) == 3  # paragraph, who, note


def test_newlines_in_user_text_become_line_breaks() -> None:
    (text,) = pages_text(build([pdf.para("first line\nsecond line")]))

    assert "first line\nsecond line" in text


def test_control_characters_and_lone_surrogates_cannot_break_the_pdf() -> None:
    nasty = "bell\x07 nul\x00 esc\x1b del\x7f bad-byte\udc80 end"
    story = [
        pdf.para(nasty),
        *pdf.table(["Note"], [[nasty]], [100 * mm], strike_rows={0}),
        *pdf.table(["Note"], [[nasty]], [100 * mm]),
    ]

    (text,) = pages_text(build(story, clinic=nasty))

    assert text.count("bell\ufffd nul\ufffd esc\ufffd del\ufffd bad-byte\ufffd end") == 4


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a<b>&c", "a&lt;b&gt;&amp;c"),
        ("\"q\" 'a'", "&quot;q&quot; &#39;a&#39;"),
        ("&amp;", "&amp;amp;"),
        ("one\r\ntwo\rthree\nfour", "one<br/>two<br/>three<br/>four"),
        ("tab\there", "tab here"),
        ("nul\x00", "nul\ufffd"),
        ("Zoë", "Zoë"),
        (None, ""),
        (42, "42"),
    ],
)
def test_esc_turns_user_text_into_inert_markup(raw: object, escaped: str) -> None:
    assert pdf.esc(raw) == escaped


@pytest.mark.parametrize("incomplete", [True, False])
def test_the_incomplete_stamp_is_on_every_page_exactly_when_the_report_is_incomplete(
    incomplete: bool,
) -> None:
    texts = pages_text(build(long_story(), incomplete=incomplete))

    assert len(texts) > 1
    for text in texts:
        assert ("INCOMPLETE" in text) is incomplete


def test_the_same_data_and_generation_time_give_identical_bytes() -> None:
    first = build(long_story(), incomplete=True, anchor="17:" + "a" * 64)
    second = build(long_story(), incomplete=True, anchor="17:" + "a" * 64)

    assert first == second
    assert first != build(long_story(), generated_at=datetime(2026, 11, 25, tzinfo=UTC))


def test_metadata_names_title_author_subject_creator_and_the_generation_time() -> None:
    meta = PdfReader(io.BytesIO(build([pdf.para("x")]))).metadata

    assert meta is not None
    assert meta.title == "Monthly compliance report"
    assert meta.author == "Ada Manager"
    assert meta.subject == "Sterilization and equipment compliance"
    assert meta.creator == "sterilog"
    assert meta.creation_date == GENERATED_AT


def test_a_64_hex_hash_in_a_mono_column_is_extracted_unbroken() -> None:
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(30)]
    hash_width = pdf.fit_width("0" * 64, mono=True)
    story = pdf.table(
        ["Seq", "Action", "Hash"],
        [[i + 1, "cycle.record", h] for i, h in enumerate(hashes)],
        [12 * mm, pdf.CONTENT_WIDTH - 12 * mm - hash_width, hash_width],
        mono_cols={2},
        align=["RIGHT", "LEFT", "LEFT"],
    )

    (text,) = pages_text(build(story))

    assert hash_width <= 92 * mm
    lines = text.splitlines()
    for h in hashes:
        assert any(h in line for line in lines), h


def test_the_audit_anchor_is_printed_whole_on_every_page() -> None:
    anchor = "1234:" + hashlib.sha256(b"head").hexdigest()

    texts = pages_text(build(long_story(), anchor=anchor))

    for text in texts:
        assert f"Audit anchor {anchor}" in text


def test_a_5000_row_table_repeats_its_header_once_on_every_page_and_keeps_every_row() -> None:
    rows = (
        [f"R{i:05d}", "2026-11-03 10:00", "Zoë Ångström", "09506000134352", f"LOT{i % 9}"]
        for i in range(5000)
    )
    story = pdf.table(
        ["Ref", "Time", "Practitioner", "Cartridge GTIN", "Lot"],
        rows,
        [25 * mm, 35 * mm, 45 * mm, 40 * mm, 25 * mm],
    )
    progress: list[int] = []

    texts = pages_text(build(story, progress=progress.append))

    assert len(texts) > 50
    assert progress == list(range(1, len(texts) + 1))
    for text in texts:
        assert text.count("Cartridge GTIN") == 1
    everything = "\n".join(texts)
    assert all(f"R{i:05d}" in everything for i in range(5000))


def test_a_long_table_is_wrapped_once_and_never_laid_out_as_a_platypus_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tables: list[int] = []
    wrapped: list[str] = []
    original_table = pdf.Table.__init__
    original_lines = pdf._Layout.lines

    def spy_table(self: Any, data: list[Any], *args: Any, **kwargs: Any) -> None:
        tables.append(len(data))
        original_table(self, data, *args, **kwargs)

    def spy_lines(self: Any, text: str, column: int) -> tuple[str, ...]:
        wrapped.append(text)
        return original_lines(self, text, column)

    monkeypatch.setattr(pdf.Table, "__init__", spy_table)
    monkeypatch.setattr(pdf._Layout, "lines", spy_lines)

    texts = pages_text(build(long_story(rows=3000)))

    assert len(texts) > 20
    assert tables == []  # rows are drawn by _RowsBlock with canvas operators
    assert len(wrapped) == 3000 * 4  # every cell measured once, however many pages


def test_struck_rows_keep_their_text_and_get_a_strike_line_in_grey() -> None:
    story = pdf.table(
        ["Ref", "Note"], [["R1", "kept"], ["R2", "voided"]], [30 * mm, 60 * mm], strike_rows={1}
    )

    data = build(story)
    (text,) = pages_text(data)
    content = PdfReader(io.BytesIO(data)).pages[0].get_contents()
    assert content is not None
    ops = content.get_data().decode("latin-1")

    assert "R2" in text
    assert "voided" in text
    assert f"{pdf._VOID_RGB} rg" in ops  # grey text
    assert f"{pdf._VOID_RGB} RG" in ops  # a grey stroke: the strike line


def test_every_row_of_a_long_table_is_drawn_once_in_order() -> None:
    texts = pages_text(build(long_story(rows=1500)))

    refs = [word for text in texts for word in text.split() if word.startswith("R0")]
    assert refs == [f"R{i:05d}" for i in range(1500)]


def test_long_text_and_unbreakable_tokens_wrap_inside_their_column() -> None:
    token = "01095060001343521727053110LOT-" + "X" * 120
    note = "The cartridge blister was torn on opening; replaced and discarded. " * 4
    width = 40 * mm - 6

    for text in (token, note):
        lines = pdf._wrap_lines(text, pdf.FONT, 7.5, width)
        assert len(lines) > 1
        assert all(stringWidth(line, pdf.FONT, 7.5) <= width for line in lines)
        assert "".join(lines).replace(" ", "") == text.replace(" ", "")

    story = pdf.table(["Scan", "Note"], [[token, note]], [40 * mm, 40 * mm])
    (text,) = pages_text(build(story))
    assert "X" * 20 in text


def test_a_row_taller_than_a_page_is_split_instead_of_failing() -> None:
    story = pdf.table(["Note"], [["short"], ["line\n" * 400], ["after"]], [80 * mm])

    texts = pages_text(build(story))

    assert len(texts) >= 3
    assert "after" in texts[-1]


def test_an_empty_table_says_so() -> None:
    (text,) = pages_text(build(pdf.table(["Time", "Reason"], [], [40 * mm, 60 * mm])))

    assert "None recorded." in text


def test_a_table_wider_than_the_page_is_a_programming_error() -> None:
    story = pdf.table(["A", "B"], [["x", "y"]], [150 * mm, 150 * mm])

    with pytest.raises(ValueError, match="frame is"):
        build(story)


def test_a_row_with_the_wrong_number_of_cells_is_rejected() -> None:
    with pytest.raises(ValueError, match="row 1 has 1 cells"):
        pdf.table(["A", "B"], [["x", "y"], ["z"]], [50 * mm, 50 * mm])


def test_landscape_pages_can_follow_portrait_pages() -> None:
    story = [pdf.para("portrait"), *pdf.landscape_pages(), pdf.para("landscape")]

    reader = PdfReader(io.BytesIO(build(story)))

    first, second = reader.pages
    assert first.mediabox.width < first.mediabox.height
    assert second.mediabox.width > second.mediabox.height
    assert "Page 2 of 2" in second.extract_text()


def test_a_naive_generation_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build([pdf.para("x")], generated_at=datetime(2026, 11, 24, 9, 15))  # noqa: DTZ001


def test_the_pdf_is_written_to_a_path_or_a_binary_file(tmp_path: Path) -> None:
    target = tmp_path / "report.pdf"
    buffer = io.BytesIO()

    written = build([pdf.para("x")])
    pdf.build_pdf(
        target,
        [pdf.para("x")],
        title="Monthly compliance report",
        clinic="Zoë's Skin & Laser <Clinic>",
        period="November 2026",
        subject="Sterilization and equipment compliance",
        author="Ada Manager",
        generated_at=GENERATED_AT,
        tz_name="Europe/London",
    )
    pdf.build_pdf(
        buffer,
        [pdf.para("x")],
        title="Monthly compliance report",
        clinic="Zoë's Skin & Laser <Clinic>",
        period="November 2026",
        subject="Sterilization and equipment compliance",
        author="Ada Manager",
        generated_at=GENERATED_AT,
        tz_name="Europe/London",
    )

    assert target.read_bytes() == written == buffer.getvalue()


def test_local_time_prints_clinic_time_and_refuses_naive_datetimes() -> None:
    assert pdf.local_time(GENERATED_AT, "Europe/Berlin") == "2026-11-24 10:15"
    assert pdf.local_time(GENERATED_AT, "Europe/Berlin", seconds=True) == "2026-11-24 10:15:30"
    with pytest.raises(ValueError, match="naive"):
        pdf.local_time(datetime(2026, 1, 1), "Europe/Berlin")  # noqa: DTZ001


def _decode(modules: list[list[Any]], *, quiet: int, top_row_first: bool) -> list[str]:
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    rows = modules if top_row_first else list(reversed(modules))
    scale = 4
    size = (len(rows) + 2 * quiet) * scale
    image = Image.new("L", (size, size), 255)
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark:
                left, top = (x + quiet) * scale, (y + quiet) * scale
                image.paste(0, (left, top, left + scale, top + scale))
    return [result.text for result in zxingcpp.read_barcodes(image)]


@pytest.mark.parametrize(
    "value", ["PACK-000123", "PACK-1", "1234:" + "ab" * 32, "pk:7;<=>?@ `~{|}", "Z"]
)
def test_data_matrix_codes_read_back_as_the_value(value: str) -> None:
    assert _decode(pdf._datamatrix_modules(value), quiet=2, top_row_first=False) == [value]


def test_data_matrix_refuses_what_it_cannot_encode() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        pdf.datamatrix_flowable("Zoë", 20)
    with pytest.raises(ValueError, match="do not fit"):
        pdf.datamatrix_flowable("x" * 200, 20)


def test_qr_codes_read_back_as_the_value_and_have_the_requested_size() -> None:
    value = "1234:" + hashlib.sha256(b"head").hexdigest()

    drawing = pdf.qr_flowable(value, 30)
    widget = drawing.contents[0]
    widget.qr.make()

    assert _decode(widget.qr.modules, quiet=4, top_row_first=True) == [value]
    assert drawing.width == pytest.approx(30 * mm)
    assert drawing.height == pytest.approx(30 * mm)


def test_2d_codes_can_be_placed_in_a_story() -> None:
    story = [pdf.qr_flowable("PACK-000123", 25), pdf.datamatrix_flowable("PACK-000123", 20)]

    (text,) = pages_text(build(story))

    assert "Page 1 of 1" in text


REPO = Path(__file__).resolve().parents[1]


def test_importing_the_reports_package_does_not_import_reportlab() -> None:
    code = "import sys, sterilog.reports; assert 'reportlab' not in sys.modules"

    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_the_bytes_do_not_depend_on_the_process_that_made_them() -> None:
    code = (
        "import sys, hashlib; sys.path.insert(0, 'tests');"
        "from test_pdf_plumbing import build, long_story;"
        "print(hashlib.sha256(build(long_story(), incomplete=True)).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }

    assert digests == {hashlib.sha256(build(long_story(), incomplete=True)).hexdigest()}
