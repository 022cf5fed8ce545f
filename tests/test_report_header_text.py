"""Text as typed in the page header (issue 13): a clinic name or a client reference in a script
DejaVu lacks (CJK) prints in the bundled fallback font, per character, as in the body; read back
with pypdf, glyph font included (a missing glyph would extract but print as an empty box)."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from conftest import Cli
from pypdf import PdfReader
from test_reports import at, hri, registers

CLINIC = "王氏皮肤诊所 Clinic"
CLIENT = "客户-김민준-7"


def _runs_with_fonts(data: bytes) -> list[tuple[str, str]]:
    """(text, font name) of every text run on every page."""
    seen: list[tuple[str, str]] = []

    def visit(text: str, cm: object, tm: object, font: object, size: object) -> None:
        if text.strip():
            name = str(font.get("/BaseFont", "")) if isinstance(font, dict) else ""
            seen.append((text.strip(), name))

    for page in PdfReader(io.BytesIO(data)).pages:
        page.extract_text(visitor_text=visit)
    return seen


def test_the_page_header_prints_cjk_clinic_and_title_in_the_fallback_font() -> None:
    from sterilog.reports import pdf

    data = pdf.build_pdf(
        None,
        [pdf.para("plain body")],
        title=f"Trace \u2014 client {CLIENT}",
        clinic=CLINIC,
        period="2026年10月",
        subject="s",
        author="a",
        generated_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        tz_name="Europe/London",
    )
    runs = _runs_with_fonts(data)
    cjk = [(t, f) for t, f in runs if any(ord(c) > 0x2E80 for c in t)]
    assert {t for t, _ in cjk} >= {"王氏皮肤诊所", "客户", "김민준", "年", "月"}
    assert all("WenQuanYi" in f for _, f in cjk), cjk
    latin = {t: f for t, f in runs}
    assert "DejaVu" in latin["Clinic"] and "DejaVu" in latin["Page 1 of 1"]
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert CLINIC in text and f"client {CLIENT}" in text and "Period: 2026年10月" in text


def test_a_trace_of_a_cjk_client_has_it_in_every_page_header(cli: Cli, tmp_path: Path) -> None:
    registers(cli)
    cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
           now=at(6, 8))  # fmt: skip
    cli.ok("clean", "device", "SN-1", "--disinfectant", "Clinell", now=at(6, 8))
    cli.ok("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
           hri("LOTA", "0001"), "--client", CLIENT, operator="ann", now=at(6, 9))  # fmt: skip
    out = tmp_path / "client.pdf"
    cli.ok("report", "trace", "client", CLIENT, "-o", str(out))
    data = out.read_bytes()
    pages = PdfReader(io.BytesIO(data)).pages
    title = f"Trace-back: client \u2014 client {CLIENT}"  # the header's title line
    texts = [page.extract_text() for page in pages]
    assert texts[0].count(title) == 2  # the body's title and the header's
    assert all(title in text and "\x00" not in text for text in texts)  # no missing glyph
    cjk = [(t, f) for t, f in _runs_with_fonts(data) if any(ord(c) > 0x2E80 for c in t)]
    assert all("WenQuanYi" in f for _, f in cjk), cjk  # never an empty box in DejaVu
