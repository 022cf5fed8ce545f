"""Trace-back (what was behind a session) and look-forward (who was exposed) — SPEC §6.6.

Look-forward queries go through indexes (sessions by lot, by device and start time; session
packs by load), so a trace stays fast on years of history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import iso
from sterilog.errors import UnknownRecord, UserError
from sterilog.models import (
    AirRemovalTest,
    BiologicalIndicator,
    BiRead,
    CartridgeLot,
    CartridgeReceipt,
    CartridgeUnit,
    Cycle,
    CycleCi,
    Device,
    DeviceClean,
    Disinfectant,
    Incident,
    Pack,
    Program,
    Room,
    RoomClean,
    Session,
    SessionPack,
    Staff,
    Sterilizer,
)
from sterilog.services.gate import READY_KINDS, session_rows
from sterilog.services.voids import counts


def _staff_code(db: DbSession, staff_id: int | None) -> str | None:
    if staff_id is None:
        return None
    row = db.get(Staff, staff_id)
    return row.code if row else None


def _bi_of(db: DbSession, cycle_id: int) -> dict[str, Any] | None:
    bi = db.execute(
        select(BiologicalIndicator).where(BiologicalIndicator.cycle_id == cycle_id)
    ).scalar_one_or_none()
    if bi is None:
        return None
    read = db.execute(
        select(BiRead)
        .where(BiRead.bi_id == bi.id)
        .order_by(BiRead.at.desc(), BiRead.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return {
        "bi_id": bi.id,
        "load_id": cycle_id,
        "lot": bi.lot,
        "result": read.result if read else None,
        "control": read.control if read else None,
        "valid": read.valid if read else None,
        "read_at": iso(read.at) if read else None,
    }


def _nearest_bi(db: DbSession, cycle: Cycle, before: bool) -> dict[str, Any] | None:
    q = (
        select(Cycle.id)
        .join(BiologicalIndicator, BiologicalIndicator.cycle_id == Cycle.id)
        .where(Cycle.sterilizer_id == cycle.sterilizer_id)
    )
    if before:
        q = q.where(Cycle.at <= cycle.at).order_by(Cycle.at.desc(), Cycle.id.desc())
    else:
        q = q.where(Cycle.at > cycle.at).order_by(Cycle.at, Cycle.id)
    row = db.execute(q.limit(1)).first()
    return _bi_of(db, int(row[0])) if row else None


def load_detail(db: DbSession, cycle: Cycle) -> dict[str, Any]:
    st = db.get(Sterilizer, cycle.sterilizer_id)
    program = db.get(Program, cycle.program_id)
    assert st is not None and program is not None
    air = db.execute(
        select(AirRemovalTest)
        .where(AirRemovalTest.sterilizer_id == st.id, AirRemovalTest.at <= cycle.at)
        .order_by(AirRemovalTest.at.desc(), AirRemovalTest.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    from sterilog.services.attachments import list_attachments
    from sterilog.services.device_import import evidence_of_load, load_status
    from sterilog.services.sterilization import is_load_suspect

    ci_read = db.execute(select(CycleCi).where(CycleCi.cycle_id == cycle.id)).scalar_one_or_none()
    return {
        "load_id": cycle.id,
        "load_no": cycle.load_no,
        "sterilizer": st.code,
        "sterilizer_type": st.type,
        "program": program.name,
        "program_temp_c": program.temp_c,
        "program_hold_min": program.hold_min,
        "temp_c": cycle.temp_c,
        "hold_min": cycle.hold_min,
        "ci": cycle.ci,
        "ci_type": cycle.ci_type,
        "status": load_status(cycle.passed, cycle.ci, ci_read.passed if ci_read else None),
        "ci_read": (
            {"ci": ci_read.ci, "ci_type": ci_read.ci_type, "at": iso(ci_read.at)}
            if ci_read
            else None
        ),
        "source": "imported" if (evidence := evidence_of_load(db, cycle.id)) else "typed",
        "attachments": [a.as_dict() for a in list_attachments(db, "load", cycle.id)],
        "device": evidence,
        "suspect": is_load_suspect(db, cycle),
        "at": iso(cycle.at),
        "operator": _staff_code(db, cycle.operator_id),
        **_entered(db, cycle.at, cycle.recorded_at),
        "bi": _bi_of(db, cycle.id),
        "bi_before": _nearest_bi(db, cycle, before=True),
        "bi_after": _nearest_bi(db, cycle, before=False),
        "air_removal_before": (
            {"result": air.result, "at": iso(air.at)} if air is not None else None
        ),
    }


def session_detail(db: DbSession, session_id: int) -> dict[str, Any]:
    s = db.get(Session, session_id)
    if s is None:
        raise UnknownRecord("session", session_id)
    (row,) = session_rows(db, Session.id == session_id)
    unit = db.get(CartridgeUnit, s.unit_id)
    assert unit is not None
    receipt = db.get(CartridgeReceipt, unit.receipt_id)
    lot = db.get(CartridgeLot, unit.lot_id)
    device_clean = db.execute(
        select(DeviceClean, Disinfectant.code)
        .join(Disinfectant, Disinfectant.id == DeviceClean.disinfectant_id)
        .where(
            DeviceClean.device_id == s.device_id,
            DeviceClean.at <= s.started_at,
            counts(DeviceClean),
        )
        .order_by(DeviceClean.at.desc(), DeviceClean.id.desc())
        .limit(1)
    ).first()
    room_clean = db.execute(
        select(RoomClean, Disinfectant.code)
        .join(Disinfectant, Disinfectant.id == RoomClean.disinfectant_id)
        .where(
            RoomClean.room_id == s.room_id,
            RoomClean.at <= s.started_at,
            counts(RoomClean),
            RoomClean.kind.in_(READY_KINDS),
        )
        .order_by(RoomClean.at.desc(), RoomClean.id.desc())
        .limit(1)
    ).first()
    practitioner = db.get(Staff, s.practitioner_id)
    from sterilog.services.corrections import in_force

    # The practitioner's entry as in force at the session's start (a later licence renewal
    # does not rewrite what was true then).
    then = in_force(db, "staff", practitioner, s.started_at)
    assert practitioner is not None
    packs = []
    for link, pack_code, pack_contents in db.execute(
        select(SessionPack, Pack.code, Pack.contents)
        .join(Pack, Pack.id == SessionPack.pack_id)
        .where(SessionPack.session_id == session_id)
        .order_by(SessionPack.id)
    ).all():
        cycle = db.get(Cycle, link.cycle_id)
        assert cycle is not None
        packs.append({"pack": pack_code, "contents": pack_contents, "load": load_detail(db, cycle)})
    incidents = [
        {
            "incident_id": i.id,
            "kind": i.kind,
            "severity": i.severity,
            "note": i.note,
            "at": iso(i.at),
            "operator": _staff_code(db, i.operator_id),
        }
        for i in db.execute(
            select(Incident).where(Incident.session_id == session_id).order_by(Incident.at)
        ).scalars()
    ]
    device = db.get(Device, s.device_id)
    room = db.get(Room, s.room_id)
    assert device is not None and room is not None and lot is not None
    return {
        **row,
        "operator": _staff_code(db, s.operator_id),
        "cartridge": {
            "gtin": s.gtin,
            "lot": s.lot,
            "serial": s.serial,
            "expiry": s.expiry.isoformat(),
            "unit_id": s.unit_id,
            "production_date": lot.production_date.isoformat() if lot.production_date else None,
            "receipt": {
                "receipt_id": receipt.id,
                "supplier": receipt.supplier,
                "invoice": receipt.invoice,
                "received_at": iso(receipt.at),
                "operator": _staff_code(db, receipt.operator_id),
            }
            if receipt
            else None,
        },
        "device": {
            "serial": device.code,
            "model": device.model,
            "last_clean": {
                "disinfectant": device_clean[1],
                "contact_min": device_clean[0].contact_min,
                "barrier_lot": device_clean[0].barrier_lot,
                "at": iso(device_clean[0].at),
                "operator": _staff_code(db, device_clean[0].operator_id),
                **_entered(db, device_clean[0].at, device_clean[0].recorded_at),
            }
            if device_clean
            else None,
        },
        "room_detail": {
            "room": room.code,
            "name": room.name,
            "last_clean": {
                "kind": room_clean[0].kind,
                "disinfectant": room_clean[1],
                "contact_min": room_clean[0].contact_min,
                "note": room_clean[0].note,
                "at": iso(room_clean[0].at),
                "operator": _staff_code(db, room_clean[0].operator_id),
                **_entered(db, room_clean[0].at, room_clean[0].recorded_at),
            }
            if room_clean
            else None,
        },
        "practitioner_detail": {
            "id": practitioner.code,
            "name": then.name,
            "role": then.role,
            "license": then.license_no,
            "license_expires": (then.license_expires.isoformat() if then.license_expires else None),
        },
        "packs": packs,
        "incidents": incidents,
    }


# --- look-forward ------------------------------------------------------------------------------


def _period(q: Any, start: dt.datetime | None, stop: dt.datetime | None) -> Any:
    conds = [q]
    if start is not None:
        conds.append(Session.started_at >= start)
    if stop is not None:
        conds.append(Session.started_at < stop)
    from sterilog.services.gate import all_of

    return all_of(*conds)


def by_client(db: DbSession, client: str) -> list[dict[str, Any]]:
    rows = session_rows(db, Session.client == client)
    if not rows:
        raise UserError(f"no sessions recorded for client {client!r}")
    return rows


def by_lot(db: DbSession, gtin: str, lot: str) -> list[dict[str, Any]]:
    exists = db.execute(
        select(CartridgeLot.id).where(CartridgeLot.gtin == gtin, CartridgeLot.lot == lot)
    ).first()
    if exists is None:
        raise UserError(f"lot {lot!r} of GTIN {gtin} was never received")
    from sterilog.services.cartridge import sessions_for_lot

    return sessions_for_lot(db, gtin, lot)


def loads_sessions(db: DbSession, load_ids: list[int]) -> list[dict[str, Any]]:
    if not load_ids:
        return []
    ids = select(SessionPack.session_id).where(SessionPack.cycle_id.in_(load_ids))
    return session_rows(db, Session.id.in_(ids))


def by_load(db: DbSession, load_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    cycle = db.get(Cycle, load_id)
    if cycle is None:
        raise UnknownRecord("load", load_id)
    return load_detail(db, cycle), loads_sessions(db, [load_id])


def by_bi(db: DbSession, bi_id: int) -> tuple[dict[str, Any], list[int], list[dict[str, Any]]]:
    """A positive BI: every session that used a pack from a suspect load. Otherwise: the
    sessions that used packs of the BI's own load."""
    bi = db.get(BiologicalIndicator, bi_id)
    if bi is None:
        raise UnknownRecord("BI", bi_id)
    info = _bi_of(db, bi.cycle_id)
    assert info is not None
    cycle = db.get(Cycle, bi.cycle_id)
    assert cycle is not None
    loads = [bi.cycle_id]
    if info["result"] == "positive" and info["valid"]:
        from sterilog.services.sterilization import suspect_load_ids

        loads = sorted(suspect_load_ids(db, cycle.sterilizer_id))
    return info, loads, loads_sessions(db, loads)


def by_device(
    db: DbSession, serial: str, start: dt.datetime | None, stop: dt.datetime | None
) -> list[dict[str, Any]]:
    device = db.execute(select(Device).where(Device.code == serial)).scalar_one_or_none()
    if device is None:
        raise UnknownRecord("device", serial)
    return session_rows(db, _period(Session.device_id == device.id, start, stop))


def _entered(db: DbSession, at: Any, recorded_at: Any) -> dict[str, Any]:
    """When a record was entered, and whether that makes it a late entry (issue 11)."""
    from sterilog.lateness import is_late
    from sterilog.services.base import load_clinic

    minutes = load_clinic(db).rules.late_entry_minutes
    return {"recorded_at": iso(recorded_at), "late": is_late(at, recorded_at, minutes)}
