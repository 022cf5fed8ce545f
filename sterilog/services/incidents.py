"""Incidents linked to a session (SPEC §6.6)."""

from __future__ import annotations

import datetime as dt

from sterilog.compliance import vocab
from sterilog.errors import UnknownRecord, UserError
from sterilog.models import Incident, Session
from sterilog.services import validate as v
from sterilog.services.base import Ctx

KINDS = vocab.INCIDENT_KINDS
SEVERITIES = vocab.SEVERITIES


def record(
    ctx: Ctx,
    session_id: int,
    *,
    kind: str,
    severity: str | None,
    note: str,
    at: dt.datetime | None = None,
) -> Incident:
    s = ctx.session.get(Session, session_id)
    if s is None:
        raise UnknownRecord("session", session_id)
    when = ctx.event_time(at)
    if when < s.started_at:
        raise UserError(f"--at is before session {session_id} started")
    row = Incident(
        session_id=session_id,
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
