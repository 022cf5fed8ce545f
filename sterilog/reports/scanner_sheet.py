"""The scanner test sheet (`sterilog scanner sheet`): one GS1-128 code whose lot is followed
by a GS separator (FNC1), so a scan shows whether the scanner delivers GS."""

from __future__ import annotations

import io

MM = 72 / 25.4


def render(data: str, hri: str) -> bytes:
    """A4, one code and how to use it. `data` is the element string, GS where FNC1 goes."""
    from reportlab.graphics.barcode.code128 import Code128
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1)
    canvas.setTitle("sterilog scanner test")
    canvas.setCreator("sterilog")
    height = A4[1]
    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(20 * MM, height - 30 * MM, "sterilog scanner test")
    canvas.setFont("Helvetica", 10)
    lines = [
        "1. Run: sterilog scanner test",
        "2. Scan the code below when asked.",
        "sterilog says whether the scanner delivers the GS separator after the lot.",
        "If it does not: set the scanner to send GS, or a substitute such as '~', and record it",
        "with: sterilog settings scanner-gs '~'   (a manager), then test again.",
    ]
    for n, line in enumerate(lines):
        canvas.drawString(20 * MM, height - (42 + 6 * n) * MM, line)
    code = Code128("\xf1" + data.replace("\x1d", "\xf1"), barHeight=18 * MM, barWidth=0.33 * MM)
    code.drawOn(canvas, 20 * MM, height - 100 * MM)
    canvas.setFont("Helvetica", 9)
    canvas.drawString(20 * MM, height - 106 * MM, hri)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
