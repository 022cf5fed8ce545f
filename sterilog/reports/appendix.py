"""Appendices of the monthly report (issue 13): a logbook per sterilizer and the registers
(staff with licences, disinfectants, devices), from the register services' own lists.

`rows()` gathers (a handful of queries, independent of the month's size); `flowables()` lays
them out after section 9.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

DASH = "\u2014"


@dataclass
class Appendix:
    sterilizers: list[dict[str, Any]] = field(default_factory=list)
    staff: list[dict[str, Any]] = field(default_factory=list)
    disinfectants: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)


def rows(db: DbSession, data: Any) -> Appendix:
    from sterilog.compliance.voids import counts
    from sterilog.models import Staff, Sterilizer, SterilizerService
    from sterilog.services import registers

    end = data.period.end
    ids = {str(c): int(i) for c, i in db.execute(select(Sterilizer.code, Sterilizer.id))}
    names = {int(i): str(n) for i, n in db.execute(select(Staff.id, Staff.name))}
    services: dict[int, list[dict[str, Any]]] = {}
    for s in db.execute(
        select(SterilizerService)
        .where(SterilizerService.at < end, counts(SterilizerService))
        .order_by(SterilizerService.at, SterilizerService.id)
    ).scalars():
        services.setdefault(s.sterilizer_id, []).append(
            {"at": s.at, "repair": s.repair, "note": s.note, "by": names.get(s.operator_id or 0)}
        )
    live = [c for c in data.cycles if not c.voided]
    sterilizers = []
    for st in registers.list_sterilizers(db):
        mine = [c for c in live if c.sterilizer == st["id"]]
        month = {
            "loads": len(mine),
            "failed": sum(1 for c in mine if not c.passed),
            "suspect": sum(1 for c in mine if c.passed and c.suspect),
            "air_tests": sum(
                1 for a in data.air_tests if a.sterilizer == st["id"] and not a.voided
            ),
            "bis": sum(1 for b in data.bis if b.sterilizer == st["id"] and b.read_id is not None),
        }
        sterilizers.append({**st, "services": services.get(ids[st["id"]], []), "month": month})
    return Appendix(
        sterilizers=sterilizers,
        staff=registers.list_staff(db),
        disinfectants=registers.list_disinfectants(db),
        devices=registers.list_devices(db),
    )


def _logbook(st: dict[str, Any], t: Any, width: float) -> list[Any]:
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    m = st["month"]
    story = pdf.heading(f"Sterilizer {st['id']}", 2)
    story.append(
        pdf.key_values(
            [
                ("Model, type", f"{st['model']}, type {st['type']}"),
                ("Serial", st["serial"] or DASH),
                (
                    "Programs",
                    "; ".join(
                        f"{p['name']} ({p['temp_c']:g} \u00b0C, {p['hold_min']:g} min)"
                        for p in st["programs"]
                    )
                    or DASH,
                ),
                (
                    "This month",
                    f"{m['loads']} load(s): {m['failed']} failed, {m['suspect']} suspect; "
                    f"{m['air_tests']} air-removal test(s); {m['bis']} BI read(s)",
                ),
            ],
            width=width,
        )
    )
    story += pdf.table(
        ["Service / repair", "Kind", "By", "Note"],
        [
            [t(s["at"]), "repair" if s["repair"] else "service", s["by"] or DASH, s["note"]]
            for s in st["services"]
        ],
        [30 * mm, 18 * mm, 35 * mm, width - 83 * mm],
        empty="No service or repair recorded.",
    )
    return story


def _day(value: str | None) -> str:
    return value or DASH


def flowables(a: Appendix, t: Any, month_end: dt.date) -> list[Any]:
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    width = pdf.CONTENT_WIDTH
    story: list[Any] = pdf.heading("Appendix A. Sterilizer logbooks")
    for st in a.sterilizers:
        story += _logbook(st, t, width)
    story += pdf.heading("Appendix B. Registers")
    story += pdf.heading("Staff", 2)
    story += pdf.table(
        ["ID", "Name", "Role", "Licence", "Licence expires", "Max depth", "Active"],
        [
            [
                s["id"],
                s["name"],
                s["role"],
                s["license"] or DASH,
                _day(s["license_expires"])
                + (
                    " (EXPIRED)"
                    if s["license_expires"] and s["license_expires"] < month_end.isoformat()
                    else ""
                ),
                f"{s['max_depth_mm']:g} mm" if s["max_depth_mm"] is not None else DASH,
                "yes" if s["active"] else "no",
            ]
            for s in a.staff
        ],
        [22 * mm, 38 * mm, 22 * mm, 28 * mm, 30 * mm, 18 * mm, width - 158 * mm],
        empty="No staff.",
    )
    story += pdf.heading("Disinfectants", 2)
    story += pdf.table(
        ["Product", "Registration no.", "Level", "Contact time"],
        [
            [d["name"], d["reg_no"] or DASH, d["level"] or DASH, f"{d['contact_min']:g} min"]
            for d in a.disinfectants
        ],
        [60 * mm, 45 * mm, 35 * mm, width - 140 * mm],
        empty="No disinfectants.",
    )
    story += pdf.heading("Devices", 2)
    story += pdf.table(
        ["Serial", "Model", "Maximum depth", "In use"],
        [
            [
                d["id"],
                d["model"],
                f"{d['max_depth_mm']:g} mm" if d["max_depth_mm"] is not None else DASH,
                "retired" if d["retired"] else "yes",
            ]
            for d in a.devices
        ],
        [50 * mm, 60 * mm, 35 * mm, width - 145 * mm],
        empty="No devices.",
    )
    return story
