"""Section 1, Summary (page 1 decides): verdicts per area (`verdicts`, data), then the layout
(`render`): overall verdict, decision items, late entries, verdicts, gaps, episodes, exceptions."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from sterilog.reports import decision
from sterilog.reports.common import (
    plural,
)
from sterilog.reports.marks import Marks
from sterilog.reports.monthly import sterilization
from sterilog.reports.monthly.layout import (
    SECTIONS,
    Page,
)
from sterilog.reports.monthly.model import (
    MonthlyData,
    Verdict,
)


def verdicts(d: MonthlyData) -> list[Verdict]:
    by_area = Counter(g.area for g in d.gaps)

    def verdict(area: str, detail: str, attention: bool = False) -> Verdict:
        if by_area[area]:
            return Verdict(area, "GAPS", f"{plural(by_area[area], 'gap')}. {detail}")
        return Verdict(area, "ATTENTION" if attention else "OK", detail)

    live = [c for c in d.cycles if not c.voided]
    failed = sum(1 for c in live if not c.passed)
    suspect = sum(1 for c in live if c.suspect)
    reads = [b for b in d.bis if b.read_id is not None and not b.voided]
    positive = sum(1 for b in reads if b.valid and b.result == "positive")
    invalid = sum(1 for b in reads if not b.valid)
    placed = len({b.bi_id for b in d.bis if d.period.start <= b.placed_at < d.period.end})
    air = [a for a in d.air_tests if not a.voided]
    air_failed = sum(1 for a in air if a.result != "pass")
    cleans = [c for c in d.cleans if not c.voided]
    recalls = [r for r in d.recalls if not r.voided]
    open_now = sum(1 for s in d.sessions if s.ended_at is None)
    return [
        verdict(
            "sterilization",
            f"{plural(len(live), 'cycle')}: {failed} failed, {suspect} suspect"
            + (" (their packs are blocked at the gate); " if suspect else "; ")
            + f"{sum(1 for c in live if c.source == 'imported')} imported from the sterilizers' "
            f"records, {sum(1 for c in live if c.source == 'typed')} typed"
            + (
                f", {pending} awaiting their chemical indicator reading."
                if (pending := sum(1 for c in live if c.ci_pending))
                else "."
            ),
            attention=bool(failed or suspect),
        ),
        verdict(
            "spore testing",
            f"{plural(placed, 'BI')} placed; {plural(len(reads), 'read')}: {positive} positive, "
            f"{invalid} invalid.",
            attention=bool(positive or invalid),
        ),
        verdict(
            "air-removal tests",
            f"{plural(len(air), 'test')}, {air_failed} failed.",
            attention=bool(air_failed),
        ),
        verdict(
            "cleaning",
            f"{plural(sum(1 for c in cleans if c.kind != 'device'), 'room clean')}, "
            f"{plural(sum(1 for c in cleans if c.kind == 'device'), 'device clean')}"
            + (
                f", {voided_cleans} voided."
                if (voided_cleans := len(d.cleans) - len(cleans))
                else "."
            ),
            attention=bool(voided_cleans),
        ),
        verdict(
            "cartridges",
            f"{sum(r.quantity for r in d.receipts)} received, {len(d.sessions)} used, "
            f"{sum(1 for x in d.discards if not x.voided)} discarded, "
            f"{sum(s.expired for s in d.stock)} expired unused, "
            f"{plural(len(recalls), 'recall')}.",
            attention=bool(recalls),
        ),
        verdict(
            "sessions",
            f"{plural(len(d.sessions), 'session')}, {plural(len(d.refusals), 'refusal')} "
            f"at the gate, {open_now} still open, "
            f"{plural(sum(1 for i in d.incidents if not i.voided), 'incident')}.",
            attention=bool(d.refusals or open_now or any(not i.voided for i in d.incidents)),
        ),
    ]


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Summary."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, key_values, para, table

    t = c.t
    marks = c.marks
    tz_name = c.tz_name
    clinic = c.clinic
    story: list[Any] = []
    story += heading(SECTIONS[0])
    story.append(
        key_values(
            [
                ("Clinic", clinic),
                ("Period", f"{d.period.label}: {d.period.first_day} to {d.period.last_day}"),
                ("Time zone", tz_name),
                ("Rule pack", d.rules_name),
                ("Overall", _overall(d, marks)),
                *_decision_items(d, marks, tz_name),
                (
                    "Late entries",
                    marks.warn(
                        f"{len(d.late)} late entr{'y' if len(d.late) == 1 else 'ies'} "
                        "(entered long after the event; per area below)"
                    )
                    if d.late
                    else "None",
                ),
                (
                    "Clock anomalies",
                    marks.alert(
                        f"{len(d.clock_anomalies)} audit entr"
                        + ("y" if len(d.clock_anomalies) == 1 else "ies")
                        + " out of time order (a clock was moved; see section 9)"
                    )
                    if d.clock_anomalies
                    else "None",
                ),
            ]
        )
    )
    story += _late_summary(d, t)
    story += heading("Verdict per area", 2)
    story += table(
        ["Area", "Verdict", "Detail"],
        [[v.area.capitalize(), marks.verdict(v.verdict), v.detail] for v in d.verdicts],
        [38 * mm, 24 * mm, pdf.CONTENT_WIDTH - 62 * mm],
    )
    story += heading("Gaps", 2)
    story.append(
        para(
            "A gap is a record the law or the rule pack expects that is missing: a week of "
            "loads without a valid negative spore test, a day of loads on a B or S sterilizer "
            "without a passing air-removal test before the first load, a cycle without a "
            "chemical-indicator result, a session without a room or device clean before it, "
            "a session never ended.",
            pdf.STYLES.small,
        )
    )
    story += table(
        ["Area", "Gap"],
        [[g.area.capitalize(), g.what] for g in d.gaps],
        [38 * mm, pdf.CONTENT_WIDTH - 38 * mm],
        empty="No gaps.",
    )
    story += sterilization.declared_table(d, table)
    story += _episodes(d, t)
    story += _exceptions(d, t)
    return story


def _overall(d: MonthlyData, marks: Marks) -> Any:
    """Green only when nothing of docs/reports.md's verdict rules stands (issue 13)."""
    reasons = list(d.decision.reasons)
    if d.gaps:
        return marks.alert(
            f"INCOMPLETE: {plural(len(d.gaps), 'gap')} in the record (listed below)"
            + ("; also " + "; ".join(reasons[1:]) if len(reasons) > 1 else "")
        )
    if reasons:
        return marks.alert("ATTENTION: " + "; ".join(reasons))
    return marks.ok("Complete: no gaps found in the record for this month; nothing open")


def _decision_items(d: MonthlyData, marks: Marks, tz_name: str) -> list[tuple[str, Any]]:
    paint = {"alert": marks.alert, "warn": marks.warn, "ok": marks.ok}
    return [
        (label, paint[mark](text) if mark in paint else text)
        for label, text, mark in decision.summary_items(d, d.decision, ZoneInfo(tz_name))
    ]


def _exceptions(d: MonthlyData, t: Any) -> list[Any]:
    """Exceptions first (issue 13): what an inspector looks at before the full logs below."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    rows = decision.exceptions(d)
    story = pdf.heading("Exceptions", 2)
    story.append(
        pdf.para(
            "Failed and suspect loads, refusals at the gate, incidents and voids of the month, "
            "in time order; every record is also in the full logs below.",
            pdf.STYLES.small,
        )
    )
    story += pdf.table(
        ["Time", "Kind", "Record", "What"],
        [[t(e.at), e.kind, e.record, e.what] for e in rows],
        [30 * mm, 24 * mm, 30 * mm, pdf.CONTENT_WIDTH - 84 * mm],
        empty="No exceptions.",
    )
    return story


def _episodes(d: MonthlyData, t: Any) -> list[Any]:
    """Each positive-BI episode of the month as one block (issue 13)."""
    from sterilog.reports import episode, pdf

    def ti(value: str | None) -> str:
        return str(t(dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None))

    story: list[Any] = []
    for ep in d.decision.episodes:
        story += episode.flowables(ep, ti, pdf.CONTENT_WIDTH)
    return story


def _late_summary(d: MonthlyData, t: Any) -> list[Any]:
    """Summary: late entries per area, and the late cleans that close what would be a gap."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf
    from sterilog.reports.late import per_area
    from sterilog.reports.pdf import heading, para, table

    if not d.late:
        return []
    out: list[Any] = heading("Late entries", 2)
    out.append(
        para(
            "A late entry was entered more than the rule pack's late-entry time after the event "
            "it records (a paper backlog, or a back-dated record). Each is marked in its table "
            "with when and by whom it was entered.",
            pdf.STYLES.small,
        )
    )
    out += table(
        ["Area", "Late entries"],
        [[area.capitalize(), str(n)] for area, n in sorted(per_area(d.late).items())],
        [60 * mm, 30 * mm],
    )
    if d.late_closers:
        out += heading("Late entries that close what would otherwise be a gap", 2)
        out += table(
            ["Record", "Event time", "Entered", "By", "Session it covers"],
            [
                [
                    f"{e.table} #{e.record_id}",
                    t(e.at),
                    t(e.recorded_at),
                    e.by,
                    f"session {sid} (started before the clean was entered)",
                ]
                for e, sid in d.late_closers
            ],
            [32 * mm, 30 * mm, 30 * mm, 30 * mm, pdf.CONTENT_WIDTH - 122 * mm],
        )
    return out
