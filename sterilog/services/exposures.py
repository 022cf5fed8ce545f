"""Exposures: the clients who may have been exposed, and who has been told (issue 13).

An exposure is opened by a positive BI read (the sessions that used packs of the loads it made
suspect), by a recall (the sessions that used the lot), or by a manager from an incident. Its
affected list is the list `trace` gives at that moment (`services.trace`), frozen as
`ExposureClient` rows. Each client is then notified (`ExposureNotice`: how, when, who) or
recorded as unreachable; a manager closes the exposure (`ExposureClosure`) only when every
client is accounted for. Nothing is updated: progress is read from the rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import iso
from sterilog.compliance.vocab import NOTIFY_HOW, UNREACHABLE
from sterilog.errors import UnknownRecord, UserError
from sterilog.models import (
    Base,
    Exposure,
    ExposureClient,
    ExposureClosure,
    ExposureNotice,
    Incident,
    Session,
    SessionPack,
    Staff,
)
from sterilog.services import validate as v
from sterilog.services.base import Ctx

CAUSE_TEXT = {"bi": "positive BI", "recall": "recall", "incident": "incident"}


def open_rows(
    ctx: Ctx, cause: str, source_id: int, summary: str, sessions: Iterable[dict[str, Any]]
) -> list[Base]:
    """Add an exposure with its affected sessions; return the rows for the caller's audit entry
    (one write command, one audit entry). No affected session: nothing is opened."""
    affected = {s["session_id"]: s["client"] for s in sessions}
    if not affected:
        return []
    exp = Exposure(
        cause=cause,
        source_id=source_id,
        summary=summary,
        at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(exp)
    ctx.session.flush()
    rows: list[Base] = [exp]
    for sid, client in sorted(affected.items()):
        rows.append(
            ExposureClient(exposure_id=exp.id, session_id=sid, client=client, recorded_at=ctx.now)
        )
    ctx.add(*rows[1:])
    return rows


def opened_id(rows: list[Base]) -> int | None:
    """The id of the exposure `open_rows` opened (None: nobody was affected)."""
    return rows[0].id if rows and isinstance(rows[0], Exposure) else None


def incident_sessions(db: DbSession, incident: Incident) -> list[dict[str, Any]]:
    """The clients who shared the incident session's cartridge lot, its packs' loads, or its
    device between cleans: since the device's last clean before it, and after it until the
    device's next clean (trace's own lists, compliance.history), the session itself included."""
    from sterilog.services import trace

    s = db.get(Session, incident.session_id)
    assert s is not None
    out = {r["session_id"]: r for r in trace.by_lot(db, s.gtin, s.lot)}
    loads = [
        int(c)
        for c in db.execute(
            select(SessionPack.cycle_id).where(SessionPack.session_id == s.id)
        ).scalars()
    ]
    out.update({r["session_id"]: r for r in trace.loads_sessions(db, loads)})
    detail = trace.session_detail(db, s.id)
    device = detail["device"]
    for b in [*device["sessions_since_last_clean"], *device["sessions_until_next_clean"]]:
        out.setdefault(b["session_id"], {"session_id": b["session_id"], "client": b["client"]})
    out.setdefault(s.id, {"session_id": s.id, "client": s.client})
    return [out[k] for k in sorted(out)]


def open_from_incident(ctx: Ctx, incident_id: int) -> Exposure:
    inc = ctx.session.get(Incident, incident_id)
    if inc is None:
        raise UnknownRecord("incident", incident_id)
    earlier = ctx.session.execute(
        select(Exposure.id).where(Exposure.cause == "incident", Exposure.source_id == inc.id)
    ).first()
    if earlier is not None:
        raise UserError(
            f"incident {inc.id} already has exposure {earlier[0]}; nothing was recorded "
            f"(`sterilog exposure show {earlier[0]}`)"
        )
    if inc.session_id is None:
        raise UserError(
            f"incident {inc.id} involved no client session (a staff or room incident): there "
            "are no clients to notify; nothing was recorded"
        )
    summary = f"incident {inc.id} ({inc.kind}) on session {inc.session_id}"
    rows = open_rows(ctx, "incident", inc.id, summary, incident_sessions(ctx.session, inc))
    ctx.audit("exposure.open", rows)
    exp = rows[0]
    assert isinstance(exp, Exposure)
    return exp


# --- reading ------------------------------------------------------------------------------------


@dataclass
class State:
    """One exposure as its rows say now."""

    exposure: Exposure
    clients: list[str]
    sessions: dict[str, list[int]]
    notices: dict[str, ExposureNotice] = field(default_factory=dict)
    closure: ExposureClosure | None = None

    @property
    def notified(self) -> int:
        return sum(1 for n in self.notices.values() if n.how != UNREACHABLE)

    @property
    def unreachable(self) -> int:
        return sum(1 for n in self.notices.values() if n.how == UNREACHABLE)

    @property
    def pending(self) -> list[str]:
        return [c for c in self.clients if c not in self.notices]

    @property
    def open(self) -> bool:
        return self.closure is None

    def as_dict(self) -> dict[str, Any]:
        e = self.exposure
        return {
            "id": e.id,
            "cause": e.cause,
            "source_id": e.source_id,
            "summary": e.summary,
            "opened_at": iso(e.at),
            "clients": len(self.clients),
            "notified": self.notified,
            "unreachable": self.unreachable,
            "open": self.open,
            "closed_at": iso(self.closure.at) if self.closure else None,
        }


def states(
    db: DbSession, ids: Iterable[int] | None = None, *, only_open: bool = False
) -> list[State]:
    """Every exposure (or these), four queries whatever the count."""
    q = select(Exposure).order_by(Exposure.id)
    if ids is not None:
        q = q.where(Exposure.id.in_(list(ids)))
    out = {e.id: State(e, [], {}) for e in db.execute(q).scalars()}
    if not out:
        return []
    keys = list(out)
    for c in db.execute(
        select(ExposureClient)
        .where(ExposureClient.exposure_id.in_(keys))
        .order_by(ExposureClient.id)
    ).scalars():
        st = out[c.exposure_id]
        if c.client not in st.sessions:
            st.clients.append(c.client)
        st.sessions.setdefault(c.client, []).append(c.session_id)
    for n in db.execute(
        select(ExposureNotice)
        .where(ExposureNotice.exposure_id.in_(keys))
        .order_by(ExposureNotice.id)
    ).scalars():
        out[n.exposure_id].notices.setdefault(n.client, n)  # the first notice counts
    for cl in db.execute(
        select(ExposureClosure).where(ExposureClosure.exposure_id.in_(keys))
    ).scalars():
        out[cl.exposure_id].closure = cl
    result = list(out.values())
    return [s for s in result if s.open] if only_open else result


def state(db: DbSession, exposure_id: int) -> State:
    found = states(db, [exposure_id])
    if not found:
        raise UnknownRecord("exposure", exposure_id)
    return found[0]


def _staff_codes(db: DbSession, ids: Iterable[int | None]) -> dict[int, str]:
    want = {i for i in ids if i is not None}
    if not want:
        return {}
    return dict(db.execute(select(Staff.id, Staff.code).where(Staff.id.in_(want))).all())


def detail(db: DbSession, exposure_id: int) -> dict[str, Any]:
    st = state(db, exposure_id)
    who = _staff_codes(
        db,
        [
            st.exposure.operator_id,
            *(n.operator_id for n in st.notices.values()),
            st.closure.operator_id if st.closure else None,
        ],
    )
    clients = []
    for c in st.clients:
        n = st.notices.get(c)
        clients.append(
            {
                "client": c,
                "sessions": st.sessions[c],
                "notified": n is not None and n.how != UNREACHABLE,
                "how": n.how if n else None,
                "at": iso(n.at) if n else None,
                "by": who.get(n.operator_id) if n and n.operator_id else None,
                "note": n.note if n else None,
            }
        )
    out = st.as_dict()
    out["opened_by"] = who.get(st.exposure.operator_id) if st.exposure.operator_id else None
    out["clients_detail"] = clients
    out["closure"] = (
        {
            "at": iso(st.closure.at),
            "note": st.closure.note,
            "by": who.get(st.closure.operator_id) if st.closure.operator_id else None,
        }
        if st.closure
        else None
    )
    return out


# --- writing ------------------------------------------------------------------------------------


def notify(
    ctx: Ctx,
    exposure_id: int,
    client: str,
    *,
    how: str | None,
    unreachable: bool = False,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> State:
    st = state(ctx.session, exposure_id)
    if not st.open:
        raise UserError(f"exposure {exposure_id} is closed; nothing was recorded")
    if client not in st.sessions:
        raise UserError(
            f"client {client!r} is not among exposure {exposure_id}'s {len(st.clients)} "
            f"client(s) (`sterilog exposure show {exposure_id}` lists them)"
        )
    if client in st.notices:
        n = st.notices[client]
        raise UserError(
            f"client {client!r} of exposure {exposure_id} was already recorded "
            f"({n.how}, {iso(n.at)}); nothing was recorded"
        )
    if unreachable == (how is not None):
        raise UserError("give either --how (how the client was told) or --unreachable")
    kind = UNREACHABLE if unreachable else v.choice(str(how), "--how", NOTIFY_HOW)
    when = ctx.event_time(at)
    if when < st.exposure.at:
        raise UserError(f"--at is before exposure {exposure_id} was opened ({iso(st.exposure.at)})")
    row = ExposureNotice(
        exposure_id=exposure_id,
        client=client,
        how=kind,
        note=v.text(note, "--note", required=False),
        at=when,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    st.notices[client] = row
    rows: list[Base] = [row]
    if not st.pending and st.unreachable == 0:
        # The last client told: the exposure is done (a manager closes one with unreachable
        # clients, with a note saying what was tried).
        st.closure = ExposureClosure(
            exposure_id=exposure_id,
            note=f"every client notified ({len(st.clients)})",
            at=ctx.now,
            recorded_at=ctx.now,
            operator_id=ctx.actor_id,
        )
        ctx.add(st.closure)
        rows.append(st.closure)
    ctx.audit("exposure.notify", rows)
    return st


def close(ctx: Ctx, exposure_id: int, *, note: str) -> State:
    st = state(ctx.session, exposure_id)
    if not st.open:
        raise UserError(f"exposure {exposure_id} is already closed; nothing was recorded")
    if st.pending:
        shown = ", ".join(st.pending[:5]) + (" …" if len(st.pending) > 5 else "")
        raise UserError(
            f"exposure {exposure_id}: {len(st.pending)} of {len(st.clients)} client(s) not yet "
            f"notified or marked unreachable ({shown}); nothing was recorded"
        )
    why = v.text(note, "--note")
    assert why is not None
    row = ExposureClosure(
        exposure_id=exposure_id, note=why, at=ctx.now, recorded_at=ctx.now, operator_id=ctx.actor_id
    )
    ctx.add(row)
    ctx.audit("exposure.close", [row])
    st.closure = row
    return st
