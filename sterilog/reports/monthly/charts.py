"""Section 2, Charts: sessions and refusals per day, cycles per ISO week. Data (`per_day`,
`per_week`), then layout (`render`)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sterilog.reports.common import (
    Period,
    iso_week,
    weeks,
)
from sterilog.reports.monthly.layout import (
    SECTIONS,
    Page,
)
from sterilog.reports.monthly.model import (
    CycleRow,
    MonthlyData,
    RefusalRow,
    SessionRow,
)


def per_day(
    period: Period, tz: ZoneInfo, sessions: Sequence[SessionRow], refusals: Sequence[RefusalRow]
) -> list[tuple[dt.date, int, int]]:
    """(day, sessions, refusals) for every day of the period."""
    days: dict[dt.date, list[int]] = {}
    day = period.first_day
    while day <= period.last_day:
        days[day] = [0, 0]
        day += dt.timedelta(days=1)
    for s in sessions:
        days[s.at.astimezone(tz).date()][0] += 1
    for r in refusals:
        days[r.at.astimezone(tz).date()][1] += 1
    return [(d, v[0], v[1]) for d, v in days.items()]


def per_week(
    period: Period, tz: ZoneInfo, cycles: Sequence[CycleRow]
) -> tuple[list[tuple[str, int, int]], dict[str, int]]:
    """(ISO week, passed, failed) for every week of the period, and per week the passed loads
    later made suspect by a positive BI (their own series: never counted as passed)."""
    weekly: dict[str, list[int]] = {iso_week(monday): [0, 0] for monday in weeks(period)}
    suspect: Counter[str] = Counter()
    for one in cycles:
        if one.voided:
            continue
        label = iso_week(one.at.astimezone(tz).date())
        weekly[label][0 if one.passed else 1] += 1
        if one.passed and one.suspect:
            suspect[label] += 1
    return [(w, v[0], v[1]) for w, v in weekly.items()], dict(suspect)


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Charts."""
    from reportlab.platypus import KeepTogether

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    story: list[Any] = []
    story.append(  # the section's title stays with its first chart (never alone at a page foot)
        KeepTogether(
            [
                *heading(SECTIONS[1]),
                *heading("Sessions and refusals per day", 2),
                _day_chart(d, pdf.CONTENT_WIDTH),
            ]
        )
    )
    story.append(
        KeepTogether(
            [
                *heading("Cycles passed, suspect and failed per ISO week", 2),
                _week_chart(d, pdf.CONTENT_WIDTH),
            ]
        )
    )
    return story


def _day_chart(d: MonthlyData, width: float) -> Any:
    """Sessions per day, and under them refusals per day on their own scale (next to hundreds
    of sessions a handful of refusals would be a pixel high)."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors

    from sterilog.reports import pdf

    height = 250.0
    drawing = Drawing(width, height)
    names = [str(day.day) for day, _, _ in d.sessions_per_day]
    grey = colors.HexColor("#5B6573")
    for series, colour, y, h, label in (
        ([n for _, n, _ in d.sessions_per_day], pdf.ACCENT, 120, 110, "Sessions per day"),
        ([r for _, _, r in d.sessions_per_day], pdf.ALERT, 30, 60, "Refusals per day"),
    ):
        chart = VerticalBarChart()
        chart.x, chart.y = 30, y
        chart.width, chart.height = width - 40, h
        chart.data = [series]
        chart.categoryAxis.categoryNames = names
        _style_chart(chart, max([*series, 1]))
        chart.bars[0].fillColor = colour
        chart.groupSpacing = 2
        drawing.add(chart)
        drawing.add(
            String(
                30,
                y + h + 4,
                f"{label} (total {sum(series)})",
                fontName=pdf.FONT,
                fontSize=7.5,
                fillColor=colour,
            )
        )
    drawing.add(String(30, 8, "Day of the month", fontName=pdf.FONT, fontSize=7, fillColor=grey))
    return drawing


def _week_chart(d: MonthlyData, width: float) -> Any:
    """Passed, suspect (passed, then made suspect by a positive BI) and failed loads per week,
    stacked: a suspect load is never counted as passed."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.legends import Legend
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors

    from sterilog.reports import pdf

    height = 170.0
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y = 30, 25
    chart.width, chart.height = width - 40, height - 50
    suspect = [d.suspect_per_week.get(w, 0) for w, _, _ in d.cycles_per_week]
    passed = [p - s for (_, p, _), s in zip(d.cycles_per_week, suspect, strict=True)]
    failed = [f for _, _, f in d.cycles_per_week]
    chart.data = [passed, suspect, failed]
    chart.categoryAxis.categoryNames = [w for w, _, _ in d.cycles_per_week]
    chart.categoryAxis.style = "stacked"
    totals = [p + s + f for p, s, f in zip(passed, suspect, failed, strict=True)]
    _style_chart(chart, max([*totals, 1]))
    amber = colors.HexColor("#C77700")
    chart.bars[0].fillColor = pdf.ACCENT
    chart.bars[1].fillColor = amber
    chart.bars[2].fillColor = pdf.ALERT
    chart.barWidth = 18
    drawing.add(chart)
    drawing.add(
        _legend(
            Legend,
            [(pdf.ACCENT, "Passed"), (amber, "Suspect"), (pdf.ALERT, "Failed")],
            width - 230,
            height - 8,
        )
    )
    return drawing


def _style_chart(chart: Any, top: int) -> None:
    from reportlab.lib import colors

    from sterilog.reports import pdf

    step = max(1, -(-top // 5))
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = step * 5 if top > 0 else 5
    chart.valueAxis.valueStep = step
    chart.valueAxis.labels.fontName = pdf.FONT
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.gridStrokeColor = colors.HexColor("#E2E6EC")
    chart.valueAxis.visibleGrid = True
    chart.categoryAxis.labels.fontName = pdf.FONT
    chart.categoryAxis.labels.fontSize = 6.5
    chart.categoryAxis.labels.boxAnchor = "n"
    chart.bars.strokeColor = None


def _legend(legend_cls: Any, items: Iterable[tuple[Any, str]], x: float, y: float) -> Any:
    from sterilog.reports import pdf

    legend = legend_cls()
    legend.x, legend.y = x, y
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.deltax = 70
    legend.fontName = pdf.FONT
    legend.fontSize = 7.5
    legend.colorNamePairs = list(items)
    legend.boxAnchor = "nw"
    return legend
