"""Trace-back (what was behind a session) and look-forward (who was exposed) — SPEC §6.6.

Look-forward queries go through indexes (sessions by lot, by device and start time; session
packs by load), so a trace stays fast on years of history.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import iso
from sterilog.compliance import cycle_rules, facts, history, rules
from sterilog.errors import UnknownRecord, UserError
from sterilog.models import (
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
from sterilog.services.base import load_clinic
from sterilog.services.gate import session_rows


def _staff_code(db: DbSession, staff_id: int | None) -> str | None:
    if staff_id is None:
        return None
    row = db.get(Staff, staff_id)
    return row.code if row else None


def bi_dict(b: history.BiResult | None, db: DbSession | None = None) -> dict[str, Any] | None:
    """A BI as it counts (compliance.history.BiResult: voided reads never show); with `db`,
    the late mark of its counted read (issue 11; a BI not read yet has none)."""
    if b is None:
        return None
    from sterilog.services import late_marks

    mark = late_marks.unmarked()
    if db is not None and b.read_id is not None:
        mark = late_marks.mark(db, BiRead, [b.read_id])[b.read_id]
    return {
        "bi_id": b.bi_id,
        "load_id": b.cycle_id,
        "lot": b.lot,
        "result": b.result,
        "control": b.control,
        "valid": b.valid,
        "read_at": iso(b.read_at),
        "pending": b.pending,
        **(mark if db is not None else {}),
    }


def load_detail(db: DbSession, cycle: Cycle, tz: ZoneInfo | None = None) -> dict[str, Any]:
    st = db.get(Sterilizer, cycle.sterilizer_id)
    program = db.get(Program, cycle.program_id)
    assert st is not None and program is not None
    if tz is None:
        tz = load_clinic(db).tz
    day = history.air_tests_of_day(db, st.id, cycle.at, tz)
    done = cycle_rules.air_tests_of_day(day, cycle.at, tz)  # that day, at or before the load
    air = done[-1] if done else None
    from sterilog.compliance.rules import load_status
    from sterilog.services.attachments import list_attachments
    from sterilog.services.device_import import evidence_of_load

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
        "suspect": facts.is_load_suspect(db, cycle.id),
        "voided": facts.is_voided(db, "cycle", cycle.id),
        "at": iso(cycle.at),
        "operator": _staff_code(db, cycle.operator_id),
        **_entered(db, cycle.at, cycle.recorded_at),
        "bi": bi_dict(history.bi_of_load(db, cycle.id), db),
        "bi_before": bi_dict(history.nearest_bi(db, st.id, cycle.id, cycle.at, before=True), db),
        "bi_after": bi_dict(history.nearest_bi(db, st.id, cycle.id, cycle.at, before=False), db),
        # the latest air-removal test (not voided) of the load's clinic day, at or before it
        "air_removal_before": (
            {"result": air.result, "at": iso(air.at), "test_id": air.id}
            if air is not None
            else None
        ),
    }


def _clean_story(
    db: DbSession, what: str, owner_id: int, code: str, start: history.SessionStart
) -> dict[str, Any]:
    """How the room / device was when the session started, judged by the gate's own rule."""
    state = history.clean_states(db, what, [start])[start.session_id]
    if what == "room":
        problems = rules.room_cleaned(_bare(start, room=history.room_facts_at(code, state)))
    else:
        problems = rules.device_reprocessed(
            _bare(start, device=history.device_facts_at(code, state))
        )
    between = (
        history.sessions_since_clean(db, what, owner_id, start, state.last_clean)
        if problems
        else []
    )
    return {
        "cleaned_since_previous_session": not problems,
        "problem": problems[0] if problems else None,
        "previous_session_id": state.previous_session,
        "sessions_since_last_clean": [
            {"session_id": sid, "started_at": iso(at), "client": client}
            for sid, at, client in between
        ],
        "clean_id": state.last_clean_id,
    }


def _bare(start: history.SessionStart, **parts: Any) -> rules.GateFacts:
    import dataclasses

    base = rules.GateFacts(
        now=start.started.at,
        today=start.started.at.date(),
        cartridge=rules.CartridgeFacts(raw="", gtin="", lot="", serial=None),
        device=rules.DeviceFacts(code=""),
        room=rules.RoomFacts(code=""),
        practitioner=rules.PractitionerFacts(code="", role="practitioner"),
    )
    return dataclasses.replace(base, **parts)


def session_detail(db: DbSession, session_id: int) -> dict[str, Any]:
    s = db.get(Session, session_id)
    if s is None:
        raise UnknownRecord("session", session_id)
    (row,) = session_rows(db, Session.id == session_id)
    unit = db.get(CartridgeUnit, s.unit_id)
    assert unit is not None
    receipt = db.get(CartridgeReceipt, unit.receipt_id)
    lot = db.get(CartridgeLot, unit.lot_id)
    tz = load_clinic(db).tz
    device = db.get(Device, s.device_id)
    room = db.get(Room, s.room_id)
    assert device is not None and room is not None and lot is not None
    moment = rules.Moment(s.started_at, s.recorded_at)
    device_story = _clean_story(
        db, "device", s.device_id, device.code, history.SessionStart(s.id, s.device_id, moment)
    )
    room_story = _clean_story(
        db, "room", s.room_id, room.code, history.SessionStart(s.id, s.room_id, moment)
    )
    device_clean = (
        db.execute(
            select(DeviceClean, Disinfectant.code)
            .join(Disinfectant, Disinfectant.id == DeviceClean.disinfectant_id)
            .where(DeviceClean.id == device_story["clean_id"])
        ).first()
        if device_story["clean_id"] is not None
        else None
    )
    room_clean = (
        db.execute(
            select(RoomClean, Disinfectant.code)
            .join(Disinfectant, Disinfectant.id == RoomClean.disinfectant_id)
            .where(RoomClean.id == room_story["clean_id"])
        ).first()
        if room_story["clean_id"] is not None
        else None
    )
    recall = facts.lot_recall(db, lot.id)
    practitioner = db.get(Staff, s.practitioner_id)
    from sterilog.compliance.registers import in_force

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
        packs.append(
            {"pack": pack_code, "contents": pack_contents, "load": load_detail(db, cycle, tz)}
        )
    incidents = [
        {
            "incident_id": i.id,
            "kind": i.kind,
            "severity": i.severity,
            "note": i.note,
            "at": iso(i.at),
            "operator": _staff_code(db, i.operator_id),
            **_entered(db, i.at, i.recorded_at),
        }
        for i in db.execute(
            select(Incident).where(Incident.session_id == session_id).order_by(Incident.at)
        ).scalars()
    ]
    return {
        **row,
        "operator": _staff_code(db, s.operator_id),
        "cartridge": {
            "gtin": s.gtin,
            "lot": s.lot,
            "serial": s.serial,
            "expiry": s.expiry.isoformat(),
            "unit_id": s.unit_id,
            "recalled": (
                {"recall_id": recall.id, "at": iso(recall.at), "reason": recall.reason}
                if recall is not None
                else None
            ),
            "production_date": lot.production_date.isoformat() if lot.production_date else None,
            "receipt": {
                "receipt_id": receipt.id,
                "supplier": receipt.supplier,
                "invoice": receipt.invoice,
                "received_at": iso(receipt.at),
                "operator": _staff_code(db, receipt.operator_id),
                **_entered(db, receipt.at, receipt.recorded_at),
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
            "cleaned_since_previous_session": device_story["cleaned_since_previous_session"],
            "problem": device_story["problem"],
            "previous_session_id": device_story["previous_session_id"],
            "sessions_since_last_clean": device_story["sessions_since_last_clean"],
            "sessions_until_next_clean": [
                {"session_id": sid, "started_at": iso(at), "client": client}
                for sid, at, client in history.sessions_until_next_clean(
                    db, "device", s.device_id, history.SessionStart(s.id, s.device_id, moment)
                )
            ],
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
            "cleaned_since_previous_session": room_story["cleaned_since_previous_session"],
            "problem": room_story["problem"],
            "previous_session_id": room_story["previous_session_id"],
            "sessions_since_last_clean": room_story["sessions_since_last_clean"],
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
    """A positive BI (valid read, not voided): every session that used a pack from a load it
    made suspect (that BI's loads only). Otherwise: the sessions that used packs of the BI's own
    load."""
    bi = history.bi_result(db, bi_id)
    if bi is None:
        raise UnknownRecord("BI", bi_id)
    info = bi_dict(bi, db)
    assert info is not None
    loads = facts.suspect_loads_of_bi(db, bi_id) if bi.positive else [bi.cycle_id]
    info["suspect_loads"] = loads if bi.positive else []
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


def clean_warning(part: dict[str, Any]) -> str | None:
    """For a session's `device` or `room_detail`: what the gate's rule says was missing, and
    who used it in between (None: it was cleaned after its previous session)."""
    if part["cleaned_since_previous_session"]:
        return None
    between = part["sessions_since_last_clean"]
    used = (
        "; used since its last clean by session(s) "
        + ", ".join(f"{b['session_id']} (client {b['client']})" for b in between)
        if between
        else ""
    )
    return f"NOT CLEANED: {part['problem']}{used}"


def used_after_text(device: dict[str, Any]) -> str | None:
    """For a session's `device`: the sessions that used it after this one before its next
    clean (None: it was cleaned before anyone else used it)."""
    after = device.get("sessions_until_next_clean") or []
    if not after:
        return None
    return "NOT CLEANED BEFORE NEXT USE: used after this session, before its next clean, by " + (
        "session(s) " + ", ".join(f"{b['session_id']} (client {b['client']})" for b in after)
    )


def recall_text(cartridge: dict[str, Any]) -> str | None:
    rc = cartridge.get("recalled")
    if rc is None:
        return None
    return f"LOT RECALLED (recall {rc['recall_id']}: {rc['reason']})"


def lot_recalled(db: DbSession, gtin: str, lot: str) -> dict[str, Any] | None:
    """The lot's recall that counts (not voided), or None."""
    row = db.execute(
        select(CartridgeLot.id).where(CartridgeLot.gtin == gtin, CartridgeLot.lot == lot)
    ).first()
    recall = facts.lot_recall(db, int(row[0])) if row is not None else None
    if recall is None:
        return None
    return {"recall_id": recall.id, "at": iso(recall.at), "reason": recall.reason}
