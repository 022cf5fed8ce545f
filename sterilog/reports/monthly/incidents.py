"""Section 7, Incidents, each with its trace. Data (`rows`), then layout (`render`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.compliance import facts
from sterilog.models import (
    Incident,
)
from sterilog.reports.common import (
    DASH,
    Period,
    Who,
    fmt_num,
    within,
)
from sterilog.reports.marks import Marks
from sterilog.reports.monthly.layout import (
    SECTIONS,
    Page,
    late_note,
)
from sterilog.reports.monthly.model import (
    IncidentRow,
    MonthlyData,
)


def rows(db: DbSession, period: Period, who: Who) -> list[IncidentRow]:
    """Incidents of the month with their trace (few: the trace service is called per incident)."""
    from sterilog.services.trace import session_detail

    voided_incidents = facts.voided_ids(db, "incident")
    return [
        IncidentRow(
            incident_id=i.id,
            at=i.at,
            kind=i.kind,
            severity=i.severity,
            note=i.note,
            operator=who(i.operator_id, i.at),
            voided=i.id in voided_incidents,
            trace=session_detail(db, i.session_id) if i.session_id is not None else {},
        )
        for i in db.execute(
            select(Incident).where(within(Incident.at, period)).order_by(Incident.at, Incident.id)
        ).scalars()
    ]


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Incidents."""
    from reportlab.platypus import KeepTogether

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, para

    t = c.t
    marks = c.marks
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading(SECTIONS[6])
    if not d.incidents:
        story.append(para("No incidents recorded this month.", pdf.STYLES.small))
    for inc in d.incidents:
        story.append(
            KeepTogether(
                _incident_block(inc, t, width, marks, late_note(d, "incidents", inc.incident_id, t))
            )
        )
    return story


def _incident_block(
    inc: IncidentRow,
    t: Callable[[dt.datetime | None], str],
    width: float,
    marks: Marks,
    late: str = "",
) -> list[Any]:
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph

    from sterilog.clock import parse_instant
    from sterilog.reports import pdf
    from sterilog.reports.pdf import esc, heading, table

    d = inc.trace

    def ti(value: str | None) -> str:
        return t(parse_instant(value)) if value else DASH

    title = (
        f"Incident {inc.incident_id}: {inc.kind}"
        + (f" ({inc.severity})" if inc.severity else "")
        + f", {t(inc.at)}{late}, recorded by {inc.operator}"
    )
    out: list[Any] = heading(title + (" \u2014 VOIDED" if inc.voided else ""), 2)
    note = f"Note: {inc.note}"
    out.append(
        Paragraph(f"<strike>{esc(note)}</strike>" if inc.voided else esc(note), pdf.STYLES.body)
    )
    if not d:  # no client session (a staff exposure): the note and its time are the record
        out.append(Paragraph(esc("No client session."), pdf.STYLES.body))
        return out
    rows = _trace_rows(d, ti)
    out += table(["Trace", "Detail"], rows, [35 * mm, width - 35 * mm])
    return out


def _trace_rows(d: dict[str, Any], ti: Callable[[str | None], str]) -> list[list[Any]]:
    """The incident's session traced back: practitioner, cartridge, device, room, packs."""
    c = d["cartridge"]
    dev = d["device"]
    lc = dev["last_clean"]
    rc = d["room_detail"]["last_clean"]
    p = d["practitioner_detail"]
    rows: list[list[Any]] = [
        [
            "Session",
            f"{d['session_id']}, client {d['client']}, started {ti(d['started_at'])}, "
            f"ended {ti(d['ended_at']) if d['ended_at'] else 'OPEN'}",
        ],
        [
            "Practitioner",
            f"{p['name']} ({p['id']}), licence {p['license'] or DASH}"
            f" until {p['license_expires'] or DASH}",
        ],
        [
            "Cartridge",
            f"GTIN {c['gtin']} lot {c['lot']} serial {c['serial'] or DASH}, expiry {c['expiry']}",
        ],
        [
            "Device",
            f"{dev['serial']} ({dev['model']}); last clean before: "
            + (
                f"{ti(lc['at'])} {lc['disinfectant']} {fmt_num(lc['contact_min'])} min"
                if lc
                else "NONE"
            ),
        ],
        [
            "Room",
            f"{d['room']}; last clean before: "
            + (
                f"{ti(rc['at'])} {rc['kind']} {rc['disinfectant']} {fmt_num(rc['contact_min'])} min"
                if rc
                else "NONE"
            ),
        ],
    ]
    for pk in d["packs"]:
        ld = pk["load"]
        status = ld["status"] + (", SUSPECT" if ld["suspect"] else "")
        rows.append(
            [
                f"Pack {pk['pack']}",
                f"{pk['contents']} \u2192 load {ld['load_id']} (#{ld['load_no']} on "
                f"{ld['sterilizer']}, {ld['program']}, {ti(ld['at'])}): "
                f"{fmt_num(ld['temp_c'])} \u00b0C, {fmt_num(ld['hold_min'])} min, "
                f"CI {ld['ci'] or DASH}, {status}",
            ]
        )
    if not d["packs"]:
        rows.append(["Packs", "none used"])
    return rows
