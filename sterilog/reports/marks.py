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
        if not passed:
            return self.alert("FAILED")
        if suspect:
            return self.alert("SUSPECT")
        return "passed"

    def passfail(self, result: str) -> Any:
        return result if result == "pass" else self.alert(result.upper())

    def bi(self, b: Any) -> Any:
        if b.read_id is None:
            return "not read yet"
        if not b.valid:
            return self.warn("INVALID (control did not grow)")
        if b.result == "positive":
            return self.alert("POSITIVE: sterilizer locked, loads suspect")
        return "negative: pass"
