"""What a register entry (staff, device, disinfectant) is at a time: the row as first recorded,
with every dated correction (`register_changes`, issue 14) at or before that time applied in
order; deactivations/retirements and reinstatements decide whether it is active. The gate asks
for now, trace-back for a session's time. (The corrections are written by
sterilog.services.corrections.)"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sterilog.models import Device, DeviceRetirement, RegisterChange, Staff, StaffDeactivation

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
