"""Incidents linked to a session (SPEC §6.6), or without one (issue 14: staff exposure)."""

from __future__ import annotations

import datetime as dt

from sterilog.compliance import vocab
from sterilog.errors import UnknownRecord, UserError
from sterilog.models import Device, Incident, Room, Session, Staff
from sterilog.services import validate as v
from sterilog.services.base import Ctx

KINDS = vocab.INCIDENT_KINDS
SEVERITIES = vocab.SEVERITIES


def record(
    ctx: Ctx,
    session_id: int | None,
    *,
    kind: str,
    severity: str | None,
    note: str,
    at: dt.datetime | None = None,
    room: str | None = None,
    device: str | None = None,
    staff: str | None = None,
) -> Incident:
    """An incident of a session, or (session_id None) one without a client session, such as
    a staff exposure, with the room, device and staff member involved as far as known."""
    when = ctx.event_time(at)
    room_id = device_id = staff_id = None
    if session_id is not None:
        if room or device or staff:
            raise UserError(
                "--room/--device/--staff are for an incident without --session; a session "
                "already names its room, device and practitioner"
            )
        s = ctx.session.get(Session, session_id)
        if s is None:
            raise UnknownRecord("session", session_id)
        if when < s.started_at:
            raise UserError(f"--at is before session {session_id} started")
    else:
        if room:
            room_id = ctx.by_code(Room, v.ident(room, "--room"), "room").id
        if device:
            device_id = ctx.by_code(Device, v.ident(device, "--device"), "device").id
        if staff:
            staff_id = ctx.by_code(Staff, v.ident(staff, "--staff"), "staff").id
    row = Incident(
        session_id=session_id,
        room_id=room_id,
        device_id=device_id,
        staff_id=staff_id,
        kind=v.choice(kind, "--kind", KINDS),
        severity=v.choice(severity, "--severity", SEVERITIES) if severity else None,
        note=v.text(note, "--note"),
        at=when,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("incident.record", [row])
    return row
