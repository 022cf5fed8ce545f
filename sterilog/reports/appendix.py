"""Appendices of the monthly report (issue 13): a logbook per sterilizer and the registers
(staff with licences, disinfectants, devices) as in force at the month's end
(compliance.registers.in_force: every dated correction up to then applied), then the history of
corrections (updates, deactivations and retirements, reinstatements) up to the month's end.

`rows()` gathers (a handful of queries, independent of the month's size); `flowables()` lays
them out after section 9.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.compliance.registers import StaffNames
from sterilog.models import Staff

DASH = "\u2014"


@dataclass
class Appendix:
    sterilizers: list[dict[str, Any]] = field(default_factory=list)
    staff: list[dict[str, Any]] = field(default_factory=list)
    disinfectants: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    corrections: list[dict[str, Any]] = field(default_factory=list)


def rows(db: DbSession, data: Any) -> Appendix:
    from sterilog.services import registers

    end = data.period.end
    names = StaffNames(db)  # each name as in force at its record's time
    return Appendix(
        sterilizers=_sterilizers(db, data, names),
        # The registers as recorded before the month's end and in force then: the same
        # listings as `staff list`, `device list` and `disinfectant list` (services.registers).
        staff=registers.list_staff(db, at=end),
        disinfectants=registers.list_disinfectants(db, at=end),
        devices=registers.list_devices(db, at=end),
        corrections=corrections(db, end, names),
    )


def _sterilizers(db: DbSession, data: Any, names: StaffNames) -> list[dict[str, Any]]:
    from sterilog.compliance.voids import counts
    from sterilog.models import Sterilizer, SterilizerService
    from sterilog.services import registers

    ids = {str(c): int(i) for c, i in db.execute(select(Sterilizer.code, Sterilizer.id))}
    services: dict[int, list[dict[str, Any]]] = {}
    for s in db.execute(
        select(SterilizerService)
        .where(SterilizerService.at < data.period.end, counts(SterilizerService))
        .order_by(SterilizerService.at, SterilizerService.id)
    ).scalars():
        services.setdefault(s.sterilizer_id, []).append(
            {"at": s.at, "repair": s.repair, "note": s.note, "by": names(s.operator_id, s.at)}
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
    return sterilizers


_FIELD_WORDS = {
    "name": "name",
    "role": "role",
    "license_no": "licence",
    "license_expires": "licence expires",
    "max_depth_mm": "maximum depth (mm)",
    "model": "model",
    "contact_min": "contact time (min)",
    "reg_no": "registration no.",
    "level": "level",
}


def corrections(db: DbSession, end: dt.datetime, names: StaffNames) -> list[dict[str, Any]]:
    """Every correction of a register entry dated before `end`, in time order: updates (the
    fields changed and their new values), reinstatements, deactivations and retirements."""
    from sterilog.compliance.registers import FIELDS
    from sterilog.models import Device, DeviceRetirement, Disinfectant, RegisterChange
    from sterilog.models import StaffDeactivation as Stop

    code = {
        "staff": dict(db.execute(select(Staff.id, Staff.code)).all()),
        "device": dict(db.execute(select(Device.id, Device.code)).all()),
        "disinfectant": dict(db.execute(select(Disinfectant.id, Disinfectant.code)).all()),
    }
    out = []
    for c in db.execute(
        select(RegisterChange).where(RegisterChange.at < end).order_by(RegisterChange.at)
    ).scalars():
        changed = [
            f"{_FIELD_WORDS[f]} \u2192 {_value(getattr(c, f))}"
            for f in FIELDS[c.kind]
            if getattr(c, f) is not None
        ]
        what = "; ".join(changed + (["reinstated"] if c.reinstate else []))
        out.append(_correction(c, c.kind, code[c.kind].get(c.record_id), what, names))
    stops: tuple[tuple[Any, str, Any, str], ...] = (
        (Stop, "staff", Stop.staff_id, "deactivated"),
        (DeviceRetirement, "device", DeviceRetirement.device_id, "retired"),
    )
    for model, kind, column, word in stops:
        for row, owner in db.execute(select(model, column).where(model.at < end)).all():
            text = f"{word}: {row.reason}"
            out.append(_correction(row, kind, code[kind].get(owner), text, names))
    out.sort(key=lambda r: (r["at"], r["register"], r["entry"]))
    return out


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _correction(
    row: Any, kind: str, entry: Any, what: str, names: StaffNames
) -> dict[str, Any]:
    return {
        "at": row.at,
        "register": kind,
        "entry": str(entry),
        "change": what,
        "by": names(row.operator_id, row.at) or DASH,
    }


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
    story += pdf.heading("Corrections to the registers", 2)
    story.append(
        pdf.para(
            "The registers above are as in force at the end of the month. Entries are never "
            "overwritten: each correction is a dated record, listed here up to the month's end.",
            pdf.STYLES.small,
        )
    )
    story += pdf.table(
        ["Time", "Register", "Entry", "Change", "By"],
        [[t(c["at"]), c["register"], c["entry"], c["change"], c["by"]] for c in a.corrections],
        [30 * mm, 22 * mm, 28 * mm, width - 125 * mm, 45 * mm],
        empty="No corrections.",
    )
    return story
