"""Registers (SPEC §6.1): staff, rooms, devices, sterilizers and programs, packs, disinfectants."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sterilog.errors import DuplicateRecord, UserError
from sterilog.models import (
    Base,
    Device,
    DeviceRetirement,
    Disinfectant,
    Pack,
    Program,
    Room,
    Staff,
    StaffDeactivation,
    Sterilizer,
    SterilizerService,
)
from sterilog.services import validate as v
from sterilog.services.base import Ctx
from sterilog.services.people import ROLES, hash_pin

LEVELS = ("low", "intermediate", "high")
TYPES = ("B", "N", "S")


def _unique(ctx: Ctx, model: type[Base], code: str, kind: str) -> None:
    exists = ctx.session.execute(
        select(model.id).where(model.code == code)  # type: ignore[attr-defined]
    ).first()
    if exists is not None:
        raise DuplicateRecord(kind, code)


def _depth(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    return v.depth(value, what)


# --- staff -------------------------------------------------------------------------------------


def add_staff(
    ctx: Ctx,
    code: str,
    *,
    name: str,
    role: str,
    license_no: str | None = None,
    license_expires: dt.date | None = None,
    max_depth_mm: float | None = None,
    pin: str | None = None,
    action: str = "staff.add",
) -> Staff:
    code = v.ident(code, "staff ID")
    if role == "manager" and pin is None and not ctx.clinic.training:
        raise UserError(
            "every manager of a live database has a PIN: add --pin (asked at a terminal, else "
            "read from STERILOG_NEW_PIN)"
        )
    staff = Staff(
        code=code,
        name=v.name(name, "--name"),
        role=v.choice(role, "--role", ROLES),
        license_no=v.name(license_no, "--license", required=False),
        license_expires=license_expires,
        max_depth_mm=_depth(max_depth_mm, "--max-depth-mm"),
        pin_hash=hash_pin(pin) if pin is not None else None,
        recorded_at=ctx.now,
    )
    _unique(ctx, Staff, code, "staff")
    ctx.add(staff)
    ctx.audit(action, [staff])
    return staff


def _refuse_tie(ctx: Ctx, kind: str, record_id: int, what: str) -> None:
    from sterilog.compliance.registers import stop_would_not_stand

    if stop_would_not_stand(ctx.session, kind, record_id, ctx.now):
        raise UserError(
            f"{what} this same second: a stop at the same instant would not stand; "
            "run it again in a moment (nothing was recorded)"
        )


def deactivate_staff(ctx: Ctx, code: str, *, reason: str) -> StaffDeactivation:
    staff = ctx.by_code(Staff, v.ident(code, "staff ID"), "staff")
    from sterilog.compliance.registers import staff_active

    if not staff_active(ctx.session, staff.id):
        raise UserError(f"staff {code!r} is already deactivated")
    if ctx.actor is not None and ctx.actor.id == staff.id:
        raise UserError("you cannot deactivate yourself; ask another manager")
    _refuse_tie(ctx, "staff", staff.id, f"staff {code!r} was reinstated")
    row = StaffDeactivation(
        staff_id=staff.id,
        reason=v.text(reason, "--reason"),
        at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("staff.deactivate", [row])
    return row


def list_staff(session: Session, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Staff as in force now, or as recorded before `at` and in force then (the monthly
    report's registers appendix): corrections applied, sterilog.services.corrections."""
    from sterilog.compliance.registers import in_force

    out = []
    q = select(Staff).order_by(Staff.code)
    if at is not None:
        q = q.where(Staff.recorded_at < at)
    for s in session.execute(q).scalars():
        now = in_force(session, "staff", s, at)
        out.append(
            {
                "id": s.code,
                "name": now.name,
                "role": now.role,
                "license": now.license_no,
                "license_expires": now.license_expires.isoformat() if now.license_expires else None,
                "max_depth_mm": now.max_depth_mm,
                "pin": s.pin_hash is not None,
                "active": now.active,
            }
        )
    return out


# --- rooms and devices -------------------------------------------------------------------------


def add_room(ctx: Ctx, code: str, *, name: str | None = None) -> Room:
    code = v.ident(code, "room ID")
    room = Room(code=code, name=v.name(name, "--name", required=False), recorded_at=ctx.now)
    _unique(ctx, Room, code, "room")
    ctx.add(room)
    ctx.audit("room.add", [room])
    return room


def list_rooms(session: Session) -> list[dict[str, Any]]:
    return [
        {"id": r.code, "name": r.name}
        for r in session.execute(select(Room).order_by(Room.code)).scalars()
    ]


def add_device(ctx: Ctx, serial: str, *, model: str, max_depth_mm: float | None = None) -> Device:
    serial = v.ident(serial, "device serial")
    device = Device(
        code=serial,
        model=v.name(model, "--model"),
        max_depth_mm=_depth(max_depth_mm, "--max-depth-mm"),
        recorded_at=ctx.now,
    )
    _unique(ctx, Device, serial, "device")
    ctx.add(device)
    ctx.audit("device.add", [device])
    return device


def retire_device(ctx: Ctx, serial: str, *, reason: str) -> DeviceRetirement:
    device = ctx.by_code(Device, v.ident(serial, "device serial"), "device")
    from sterilog.compliance.registers import device_active

    if not device_active(ctx.session, device.id):
        raise UserError(f"device {serial!r} is already retired")
    _refuse_tie(ctx, "device", device.id, f"device {serial!r} was reinstated")
    row = DeviceRetirement(
        device_id=device.id,
        reason=v.text(reason, "--reason"),
        at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("device.retire", [row])
    return row


def list_devices(session: Session, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Devices as in force now, or as recorded before `at` and in force then (corrections
    applied, sterilog.services.corrections)."""
    from sterilog.compliance.registers import in_force

    out = []
    q = select(Device).order_by(Device.code)
    if at is not None:
        q = q.where(Device.recorded_at < at)
    for d in session.execute(q).scalars():
        now = in_force(session, "device", d, at)
        out.append(
            {
                "id": d.code,
                "model": now.model,
                "max_depth_mm": now.max_depth_mm,
                "retired": not now.active,
            }
        )
    return out


# --- sterilizers -------------------------------------------------------------------------------


def add_sterilizer(
    ctx: Ctx, code: str, *, model: str, type_: str, serial: str | None = None
) -> Sterilizer:
    code = v.ident(code, "sterilizer ID")
    st = Sterilizer(
        code=code,
        model=v.name(model, "--model"),
        type=v.choice(type_, "--type", TYPES),
        serial=v.name(serial, "--serial", required=False),
        recorded_at=ctx.now,
    )
    _unique(ctx, Sterilizer, code, "sterilizer")
    ctx.add(st)
    ctx.session.flush()
    programs = [
        Program(
            sterilizer_id=st.id,
            name=p.name,
            temp_c=p.temp_c,
            hold_min=p.hold_min,
            recorded_at=ctx.now,
        )
        for p in ctx.clinic.rules.default_programs
    ]
    ctx.add(*programs)
    ctx.audit("sterilizer.add", [st, *programs])
    return st


def add_program(ctx: Ctx, code: str, name: str, *, temp_c: float, hold_min: float) -> Program:
    st = ctx.by_code(Sterilizer, v.ident(code, "sterilizer ID"), "sterilizer")
    name = v.ident(name, "program name")
    if ctx.session.execute(
        select(Program.id).where(Program.sterilizer_id == st.id, Program.name == name)
    ).first():
        raise DuplicateRecord(f"program of {code}", name)
    program = Program(
        sterilizer_id=st.id,
        name=name,
        temp_c=v.number(
            temp_c, "--temp-c", low=100.0, high=v.TEMP_C[1], unit=" °C", inclusive_low=True
        ),
        hold_min=v.number(
            hold_min, "--hold-min", low=v.HOLD_MIN[0], high=v.HOLD_MIN[1], unit=" min"
        ),
        recorded_at=ctx.now,
    )
    ctx.add(program)
    ctx.audit("sterilizer.program", [program])
    return program


def service_sterilizer(
    ctx: Ctx, code: str, *, note: str, repair: bool, at: dt.datetime | None = None
) -> SterilizerService:
    st = ctx.by_code(Sterilizer, v.ident(code, "sterilizer ID"), "sterilizer")
    row = SterilizerService(
        sterilizer_id=st.id,
        note=v.text(note, "--note"),
        repair=repair,
        at=ctx.event_time(at),
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("sterilizer.service", [row])
    return row


def list_sterilizers(session: Session) -> list[dict[str, Any]]:
    programs: dict[int, list[dict[str, Any]]] = {}
    for p in session.execute(select(Program).order_by(Program.id)).scalars():
        programs.setdefault(p.sterilizer_id, []).append(
            {"name": p.name, "temp_c": p.temp_c, "hold_min": p.hold_min}
        )
    from sterilog.services.device_import import current_serial

    return [
        {
            "id": s.code,
            "model": s.model,
            "type": s.type,
            "serial": current_serial(session, s.id),
            "programs": programs.get(s.id, []),
        }
        for s in session.execute(select(Sterilizer).order_by(Sterilizer.code)).scalars()
    ]


# --- packs and disinfectants -------------------------------------------------------------------


def add_pack(ctx: Ctx, code: str, *, contents: str) -> Pack:
    code = v.ident(code, "pack ID")
    pack = Pack(code=code, contents=v.text(contents, "--contents"), recorded_at=ctx.now)
    _unique(ctx, Pack, code, "pack")
    ctx.add(pack)
    ctx.audit("pack.add", [pack])
    return pack


def list_packs(session: Session) -> list[dict[str, Any]]:
    return [
        {"id": p.code, "contents": p.contents}
        for p in session.execute(select(Pack).order_by(Pack.code)).scalars()
    ]


def add_disinfectant(
    ctx: Ctx, name: str, *, contact_min: float, reg_no: str | None = None, level: str | None = None
) -> Disinfectant:
    clean_name = v.name(name, "disinfectant name")
    assert clean_name is not None
    row = Disinfectant(
        code=clean_name,
        contact_min=v.number(
            contact_min,
            "--contact-min",
            low=v.CONTACT_MIN[0],
            high=v.CONTACT_MIN[1],
            unit=" min",
            inclusive_low=True,
        ),
        reg_no=v.name(reg_no, "--reg-no", required=False),
        level=v.choice(level, "--level", LEVELS) if level is not None else None,
        recorded_at=ctx.now,
    )
    _unique(ctx, Disinfectant, clean_name, "disinfectant")
    ctx.add(row)
    ctx.audit("disinfectant.add", [row])
    return row


def list_disinfectants(session: Session, at: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Products as in force now, or as recorded before `at` and in force then (corrections
    applied, sterilog.services.corrections)."""
    from sterilog.compliance.registers import in_force

    out = []
    q = select(Disinfectant).order_by(Disinfectant.code)
    if at is not None:
        q = q.where(Disinfectant.recorded_at < at)
    for d in session.execute(q).scalars():
        now = in_force(session, "disinfectant", d, at)
        out.append(
            {
                "id": d.code,
                "name": d.code,
                "contact_min": now.contact_min,
                "reg_no": now.reg_no,
                "level": now.level,
            }
        )
    return out


def count(session: Session, model: type[Base]) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())
