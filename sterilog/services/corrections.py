"""Corrections of the registers as history, never overwrites (issue 14, point 3).

`staff update`, `staff reinstate`, `device update`, `device reinstate`, `disinfectant update`
each add one dated `RegisterChange` row; the register row itself stays as first recorded. What
is in force at a time T is the register row with every change dated at or before T applied in
order (`in_force`). The gate asks for now; trace-back and reports for the session's time, so a
session before a licence renewal shows the old licence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sterilog.errors import UserError
from sterilog.models import (
    Device,
    DeviceRetirement,
    Disinfectant,
    RegisterChange,
    Staff,
    StaffDeactivation,
)
from sterilog.services import validate as v
from sterilog.services.base import Ctx
from sterilog.services.people import ROLES
from sterilog.services.registers import LEVELS

# The fields each register's entries may correct.
FIELDS: dict[str, tuple[str, ...]] = {
    "staff": ("name", "role", "license_no", "license_expires", "max_depth_mm"),
    "device": ("model", "max_depth_mm"),
    "disinfectant": ("contact_min", "reg_no", "level"),
}


@dataclass(frozen=True)
class InForce:
    """A register entry as in force at one time: its fields, and whether it is active."""

    values: dict[str, Any]
    active: bool

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def _changes(session: Session, kind: str, record_id: int, at: dt.datetime | None) -> list[Any]:
    q = select(RegisterChange).where(
        RegisterChange.kind == kind, RegisterChange.record_id == record_id
    )
    if at is not None:
        q = q.where(RegisterChange.at <= at)
    return list(session.execute(q.order_by(RegisterChange.at, RegisterChange.id)).scalars())


def _stops(session: Session, kind: str, record_id: int, at: dt.datetime | None) -> list[Any]:
    model: Any = StaffDeactivation if kind == "staff" else DeviceRetirement
    column = model.staff_id if kind == "staff" else model.device_id
    q = select(model.at, model.id).where(column == record_id)
    if at is not None:
        q = q.where(model.at <= at)
    return list(session.execute(q).all())


def in_force(session: Session, kind: str, row: Any, at: dt.datetime | None = None) -> InForce:
    """The entry `row` of register `kind` as in force at `at` (None: everything recorded)."""
    return overlay(session, kind, row.id, {f: getattr(row, f) for f in FIELDS[kind]}, at)


def overlay(
    session: Session,
    kind: str,
    record_id: int,
    recorded: dict[str, Any],
    at: dt.datetime | None = None,
) -> InForce:
    """`recorded` (the register row's own values) with the changes up to `at` applied."""
    values = dict(recorded)
    last_reinstate: dt.datetime | None = None
    for change in _changes(session, kind, record_id, at):
        for f in FIELDS[kind]:
            value = getattr(change, f)
            if value is not None:
                values[f] = value
        if change.reinstate:
            last_reinstate = change.at
    active = True
    if kind in ("staff", "device"):
        stops = _stops(session, kind, record_id, at)
        if stops:
            last_stop = max(s[0] for s in stops)
            active = last_reinstate is not None and last_reinstate >= last_stop
    return InForce(values, active)


def staff_active(session: Session, staff_id: int, at: dt.datetime | None = None) -> bool:
    row = session.get(Staff, staff_id)
    return row is not None and in_force(session, "staff", row, at).active


def device_active(session: Session, device_id: int, at: dt.datetime | None = None) -> bool:
    row = session.get(Device, device_id)
    return row is not None and in_force(session, "device", row, at).active


def _record(ctx: Ctx, kind: str, row: Any, action: str, **values: Any) -> RegisterChange:
    change = RegisterChange(
        kind=kind,
        record_id=row.id,
        at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
        reinstate=bool(values.pop("reinstate", False)),
        **values,
    )
    ctx.add(change)
    ctx.audit(action, [change])
    return change


def _nothing(what: str) -> UserError:
    return UserError(f"nothing to change: give at least one of {what}")


def update_staff(
    ctx: Ctx,
    code: str,
    *,
    name: str | None = None,
    role: str | None = None,
    license_no: str | None = None,
    license_expires: dt.date | None = None,
    max_depth_mm: float | None = None,
) -> RegisterChange:
    staff = ctx.by_code(Staff, v.ident(code, "staff ID"), "staff")
    values: dict[str, Any] = {
        "name": v.name(name, "--name", required=False),
        "role": v.choice(role, "--role", ROLES) if role is not None else None,
        "license_no": v.name(license_no, "--license", required=False),
        "license_expires": license_expires,
        "max_depth_mm": v.depth(max_depth_mm, "--max-depth-mm")
        if max_depth_mm is not None
        else None,
    }
    if all(x is None for x in values.values()):
        raise _nothing("--name, --role, --license, --license-expires, --max-depth-mm")
    if (
        values["role"] is not None
        and values["role"] != "manager"
        and ctx.actor is not None
        and ctx.actor.id == staff.id
    ):
        raise UserError("you cannot take away your own manager role; ask another manager")
    return _record(ctx, "staff", staff, "staff.update", **values)


def reinstate_staff(ctx: Ctx, code: str) -> RegisterChange:
    staff = ctx.by_code(Staff, v.ident(code, "staff ID"), "staff")
    if in_force(ctx.session, "staff", staff).active:
        raise UserError(f"staff {staff.code!r} is not deactivated; nothing to reinstate")
    return _record(ctx, "staff", staff, "staff.reinstate", reinstate=True)


def update_device(
    ctx: Ctx, serial: str, *, model: str | None = None, max_depth_mm: float | None = None
) -> RegisterChange:
    device = ctx.by_code(Device, v.ident(serial, "device serial"), "device")
    values: dict[str, Any] = {
        "model": v.name(model, "--model", required=False),
        "max_depth_mm": v.depth(max_depth_mm, "--max-depth-mm")
        if max_depth_mm is not None
        else None,
    }
    if all(x is None for x in values.values()):
        raise _nothing("--model, --max-depth-mm")
    return _record(ctx, "device", device, "device.update", **values)


def reinstate_device(ctx: Ctx, serial: str) -> RegisterChange:
    device = ctx.by_code(Device, v.ident(serial, "device serial"), "device")
    if in_force(ctx.session, "device", device).active:
        raise UserError(f"device {device.code!r} is not retired; nothing to reinstate")
    return _record(ctx, "device", device, "device.reinstate", reinstate=True)


def update_disinfectant(
    ctx: Ctx,
    name: str,
    *,
    contact_min: float | None = None,
    reg_no: str | None = None,
    level: str | None = None,
) -> RegisterChange:
    product = ctx.by_code(Disinfectant, v.name(name, "disinfectant name") or "", "disinfectant")
    values: dict[str, Any] = {
        "contact_min": v.number(
            contact_min,
            "--contact-min",
            low=v.CONTACT_MIN[0],
            high=v.CONTACT_MIN[1],
            unit=" min",
            inclusive_low=True,
        )
        if contact_min is not None
        else None,
        "reg_no": v.name(reg_no, "--reg-no", required=False),
        "level": v.choice(level, "--level", LEVELS) if level is not None else None,
    }
    if all(x is None for x in values.values()):
        raise _nothing("--contact-min, --reg-no, --level")
    return _record(ctx, "disinfectant", product, "disinfectant.update", **values)
