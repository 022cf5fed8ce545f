"""Corrections of the registers as history, never overwrites (issue 14, point 3).

`staff update`, `staff reinstate`, `device update`, `device reinstate`, `disinfectant update`
each add one dated `RegisterChange` row; the register row itself stays as first recorded. What
is in force at a time T is the register row with every change dated at or before T applied in
order (`sterilog.compliance.registers.in_force`, the one home of that fact). The gate asks for
now; trace-back for the session's time, so a session before a renewal shows the old licence.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sterilog.compliance.registers import in_force
from sterilog.errors import UserError
from sterilog.models import Device, Disinfectant, RegisterChange, Staff
from sterilog.services import validate as v
from sterilog.services.base import Ctx
from sterilog.services.people import ROLES
from sterilog.services.registers import LEVELS


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
