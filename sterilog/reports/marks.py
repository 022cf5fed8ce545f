"""Coloured status cells and the monospaced body style, shared by the monthly and audit
reports (moved out of monthly.py so the audit report imports no private helper)."""

from __future__ import annotations

from typing import Any


def mono_style() -> Any:
    from reportlab.lib.styles import ParagraphStyle

    from sterilog.reports import pdf

    return ParagraphStyle(
        "sl-mono-body", parent=pdf.STYLES.body, fontName=pdf.FONT_MONO, fontSize=7.5
    )


class Marks:
    """Coloured status cells. Only the few flagged rows get a Paragraph (they are slower)."""

    def __init__(self) -> None:
        from reportlab.lib.styles import ParagraphStyle

        from sterilog.reports import pdf

        self._alert = ParagraphStyle(
            "sl-alert", parent=pdf.STYLES.cell, fontName=pdf.FONT_BOLD, textColor=pdf.ALERT
        )
        self._ok = ParagraphStyle(
            "sl-ok",
            parent=pdf.STYLES.cell,
            fontName=pdf.FONT_BOLD,
            textColor="#1E6B3A",
        )
        self._warn = ParagraphStyle(
            "sl-warn", parent=pdf.STYLES.cell, fontName=pdf.FONT_BOLD, textColor="#8A5A00"
        )
        self._void = ParagraphStyle("sl-void", parent=pdf.STYLES.cell, textColor=pdf.VOID)

    def alert(self, text: str) -> Any:
        from reportlab.platypus import Paragraph

        from sterilog.reports.pdf import esc

        return Paragraph(esc(text), self._alert)

    def ok(self, text: str) -> Any:
        from reportlab.platypus import Paragraph

        from sterilog.reports.pdf import esc

        return Paragraph(esc(text), self._ok)

    def warn(self, text: str) -> Any:
        from reportlab.platypus import Paragraph

        from sterilog.reports.pdf import esc

        return Paragraph(esc(text), self._warn)

    def struck(self, text: str) -> Any:
        from reportlab.platypus import Paragraph

        from sterilog.reports.pdf import esc

        return Paragraph(f"<strike>{esc(text)}</strike>", self._void)

    def verdict(self, verdict: str) -> Any:
        if verdict == "GAPS":
            return self.alert(verdict)
        if verdict == "ATTENTION":
            return self.warn(verdict)
        return verdict

    def status(self, passed: bool, suspect: bool) -> Any:
        text = status_text(passed, suspect)
        return text if text == "passed" else self.alert(text)

    def passfail(self, result: str) -> Any:
        return result if result == "pass" else self.alert(passfail_text(result))

    def bi(self, b: Any) -> Any:
        text = bi_text(b)
        if b.read_id is None or (b.valid and b.result != "positive"):
            return text
        return self.warn(text) if not b.valid else self.alert(text)


# The plain words of the marks above: a voided record's row shows them struck through and
# greyed (a table strikes plain text only), so what was voided stays readable.


def status_text(passed: bool, suspect: bool) -> str:
    if not passed:
        return "FAILED"
    return "SUSPECT" if suspect else "passed"


def passfail_text(result: str) -> str:
    return result if result == "pass" else result.upper()


def bi_text(b: Any) -> str:
    if b.read_id is None:
        return "not read yet"
    if not b.valid:
        return "INVALID (control did not grow)"
    if b.result == "positive":
        return "POSITIVE: sterilizer locked, loads suspect"
    return "negative: pass"
