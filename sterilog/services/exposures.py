"""Exposures: the clients who may have been exposed, and who has been told (issue 13).

An exposure is opened by a positive BI read (the sessions that used packs of the loads it made
suspect), by a recall (the sessions that used the lot), or by a manager from an incident. Each
client is then notified (`ExposureNotice`: how, when, who) or recorded as unreachable; a manager
closes the exposure (`ExposureClosure`) only when every client is accounted for. Nothing is
updated: progress is read from the rows.

The clients to notify are always the ones trace lists for the source *now* (`affected_now`:
`trace.by_bi`, `trace.by_lot`, `incident_sessions`), never a second copy: a void that widens a
suspect range adds clients, and reopens an exposure already closed until they are accounted for
(the notices already given stand). The list taken at opening (`ExposureClient` rows) is kept as
history. An exposure whose source was voided (the positive read or its load, the recall, the
incident) is void: nobody needs telling, and its notices and closure stay on record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import iso
from sterilog.compliance import history
from sterilog.compliance.vocab import NOTIFY_HOW, POSITIVE, UNREACHABLE
from sterilog.compliance.voids import void_ids, void_of
from sterilog.errors import UnknownRecord, UserError
from sterilog.models import (
    Base,
    BiRead,
    CartridgeLot,
    Exposure,
    ExposureClient,
    ExposureClosure,
    ExposureNotice,
    Incident,
    Recall,
    Session,
    SessionPack,
    Staff,
)
from sterilog.services import validate as v
from sterilog.services.base import Ctx

CAUSE_TEXT = {"bi": "positive BI", "recall": "recall", "incident": "incident"}
OPEN, CLOSED, VOID = "open", "closed", "void"


def open_rows(
    ctx: Ctx, cause: str, source_id: int, summary: str, sessions: Iterable[dict[str, Any]]
) -> list[Base]:
    """Add an exposure with its affected sessions as listed now (kept as history: what the
    exposure asks for is always `affected_now`); return the rows for the caller's audit entry
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


def affected_now(db: DbSession, exposure: Exposure) -> list[dict[str, Any]]:
    """The sessions trace lists for the exposure's source now: `trace bi`, `trace lot`, or the
    incident's lists. The one definition of whom an exposure must notify."""
    from sterilog.services import trace

    if exposure.cause == "bi":
        return trace.by_bi(db, exposure.source_id)[2]
    if exposure.cause == "recall":
        gtin, lot = db.execute(
            select(CartridgeLot.gtin, CartridgeLot.lot)
            .join(Recall, Recall.lot_id == CartridgeLot.id)
            .where(Recall.id == exposure.source_id)
        ).one()
        return trace.by_lot(db, str(gtin), str(lot))
    inc = db.get(Incident, exposure.source_id)
    assert inc is not None
    return incident_sessions(db, inc)


@dataclass(frozen=True)
class Voided:
    """The void that ended an exposure's source (compliance.voids: the record stays)."""

    kind: str
    record_id: int
    at: dt.datetime
    reason: str
    operator_id: int | None


@dataclass(frozen=True)
class SourceState:
    """Whether an exposure's source still stands, and the void that ended it if not."""

    stands: bool
    void: Voided | None = None


def _voided(db: DbSession, kind: str, record_id: int) -> Voided | None:
    row = void_of(db, kind, record_id)
    if row is None:
        return None
    return Voided(kind, record_id, row.at, row.reason, row.operator_id)


def _bi_source(db: DbSession, exposure: Exposure, latest: bool) -> SourceState:
    """A BI exposure stands while the valid positive read that opened it counts (not voided,
    nor its load). A void and a new positive read of the same BI open a new exposure: then
    only the BI's latest exposure stands."""
    bi = history.bi_result(db, exposure.source_id)
    assert bi is not None
    load_void = _voided(db, "cycle", bi.cycle_id)
    if load_void is not None:
        return SourceState(False, load_void)
    current = db.get(BiRead, bi.read_id) if bi.positive and bi.read_id is not None else None
    if latest and current is not None and current.recorded_at <= exposure.recorded_at:
        return SourceState(True)
    # The positive reads recorded by the time it opened, latest first: the one voided is why.
    reads = db.execute(
        select(BiRead.id)
        .where(
            BiRead.bi_id == exposure.source_id,
            BiRead.valid.is_(True),
            BiRead.result == POSITIVE,
            BiRead.recorded_at <= exposure.recorded_at,
        )
        .order_by(BiRead.recorded_at.desc(), BiRead.id.desc())
    ).scalars()
    ids = [int(r) for r in reads]
    gone = void_ids(db, "bi-read", ids)
    first = next((r for r in ids if r in gone), None)
    return SourceState(False, _voided(db, "bi-read", first) if first is not None else None)


def source_state(db: DbSession, exposure: Exposure, *, latest: bool = True) -> SourceState:
    """`latest`: no later exposure has the same source (only a re-read BI has one)."""
    if exposure.cause == "bi":
        return _bi_source(db, exposure, latest)
    void = _voided(db, exposure.cause, exposure.source_id)  # a recall, an incident
    return SourceState(void is None, void)


@dataclass(frozen=True)
class Ending:
    """When and why an exposure stopped needing anyone told: closed (every client on the list
    accounted for, and a closure recorded) or void (its source was voided)."""

    state: str  # CLOSED | VOID
    at: dt.datetime
    note: str
    operator_id: int | None


@dataclass
class State:
    """One exposure as its rows and its source say now."""

    exposure: Exposure
    clients: list[str]  # to notify: trace's list now (void: as listed, and anyone told)
    sessions: dict[str, list[int]]
    notices: dict[str, ExposureNotice] = field(default_factory=dict)
    closure_row: ExposureClosure | None = None
    source: SourceState = field(default_factory=lambda: SourceState(True))
    listed: dict[str, list[int]] = field(default_factory=dict)  # at opening (history)

    @property
    def notified(self) -> int:
        return sum(1 for c in self.clients if c in self.notices and not self._unreachable(c))

    @property
    def unreachable(self) -> int:
        return sum(1 for c in self.clients if c in self.notices and self._unreachable(c))

    def _unreachable(self, client: str) -> bool:
        return self.notices[client].how == UNREACHABLE

    @property
    def pending(self) -> list[str]:
        if not self.source.stands:
            return []
        return [c for c in self.clients if c not in self.notices]

    @property
    def no_longer_listed(self) -> list[str]:
        """Listed at opening or told, but not on trace's list now (a narrowed range)."""
        seen = [*self.listed, *(c for c in self.notices if c not in self.listed)]
        return [c for c in seen if c not in self.sessions]

    @property
    def closure(self) -> Ending | None:
        """None while the exposure is open. A closure recorded before clients were added to
        the list counts again once they are all accounted for, from the last of them."""
        if not self.source.stands:
            v_ = self.source.void
            if v_ is None:
                return Ending(VOID, self.exposure.at, "its source no longer stands", None)
            why = f"{v_.kind} {v_.record_id} voided: {v_.reason}"
            return Ending(VOID, v_.at, why, v_.operator_id)
        row = self.closure_row
        if row is None or self.pending:
            return None
        told = [self.notices[c].recorded_at for c in self.clients]
        return Ending(CLOSED, max([row.at, *told]), row.note, row.operator_id)

    @property
    def state(self) -> str:
        end = self.closure
        return OPEN if end is None else end.state

    @property
    def open(self) -> bool:
        return self.closure is None

    def as_dict(self) -> dict[str, Any]:
        e = self.exposure
        end = self.closure
        return {
            "id": e.id,
            "cause": e.cause,
            "source_id": e.source_id,
            "summary": e.summary,
            "opened_at": iso(e.at),
            "clients": len(self.clients),
            "notified": self.notified,
            "unreachable": self.unreachable,
            "open": end is None,
            "state": self.state,
            "closed_at": iso(end.at) if end else None,
        }


def states(
    db: DbSession, ids: Iterable[int] | None = None, *, only_open: bool = False
) -> list[State]:
    """Every exposure (or these): four queries, then trace's list for each exposure whose
    source stands (exposures are few: a handful in a clinic's life)."""
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
        out[c.exposure_id].listed.setdefault(c.client, []).append(c.session_id)
    for n in db.execute(
        select(ExposureNotice)
        .where(ExposureNotice.exposure_id.in_(keys))
        .order_by(ExposureNotice.id)
    ).scalars():
        out[n.exposure_id].notices.setdefault(n.client, n)  # the first notice counts
    for cl in db.execute(
        select(ExposureClosure).where(ExposureClosure.exposure_id.in_(keys))
    ).scalars():
        out[cl.exposure_id].closure_row = cl
    for st in out.values():
        _fill(db, st)
    result = list(out.values())
    return [s for s in result if s.open] if only_open else result


def _fill(db: DbSession, st: State) -> None:
    e = st.exposure
    later = db.execute(
        select(Exposure.id)
        .where(Exposure.cause == e.cause, Exposure.source_id == e.source_id, Exposure.id > e.id)
        .limit(1)
    ).first()
    st.source = source_state(db, e, latest=later is None)
    if st.source.stands:
        for s in affected_now(db, e):
            st.sessions.setdefault(s["client"], []).append(int(s["session_id"]))
    else:  # nobody needs telling: show whom it listed, and whom it told
        st.sessions = {c: list(ids) for c, ids in st.listed.items()}
        for c in st.notices:
            st.sessions.setdefault(c, [])
    st.clients = list(st.sessions)


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


def _told(st: State, client: str, who: dict[int, str]) -> dict[str, Any]:
    n = st.notices.get(client)
    return {
        "client": client,
        "sessions": st.sessions.get(client, st.listed.get(client, [])),
        "notified": n is not None and n.how != UNREACHABLE,
        "how": n.how if n else None,
        "at": iso(n.at) if n else None,
        "by": who.get(n.operator_id) if n and n.operator_id else None,
        "note": n.note if n else None,
    }


def detail(db: DbSession, exposure_id: int) -> dict[str, Any]:
    """The exposure with every client to notify (`clients_detail`: trace's list now), those
    listed or told before but no longer on it, the closure as recorded and the source's void."""
    st = state(db, exposure_id)
    row, void = st.closure_row, st.source.void
    who = _staff_codes(
        db,
        [
            st.exposure.operator_id,
            *(n.operator_id for n in st.notices.values()),
            row.operator_id if row else None,
            void.operator_id if void else None,
        ],
    )
    out = st.as_dict()
    out["opened_by"] = who.get(st.exposure.operator_id) if st.exposure.operator_id else None
    out["clients_detail"] = [_told(st, c, who) for c in st.clients]
    out["no_longer_listed"] = [_told(st, c, who) for c in st.no_longer_listed]
    out["listed_at_opening"] = list(st.listed)
    out["closure"] = (
        {
            "at": iso(row.at),
            "note": row.note,
            "by": who.get(row.operator_id) if row.operator_id else None,
        }
        if row
        else None
    )
    out["void"] = (
        {
            "kind": void.kind,
            "record_id": void.record_id,
            "at": iso(void.at),
            "reason": void.reason,
            "by": who.get(void.operator_id) if void.operator_id else None,
        }
        if void
        else None
    )
    return out


# --- writing ------------------------------------------------------------------------------------


def _refuse_void(st: State) -> None:
    end = st.closure
    if end is not None and end.state == VOID:
        raise UserError(
            f"exposure {st.exposure.id} is void ({end.note}): nobody needs telling; "
            "nothing was recorded"
        )


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
    _refuse_void(st)
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
    if not st.pending and st.unreachable == 0 and st.closure_row is None:
        # The last client told: the exposure is done (a manager closes one with unreachable
        # clients, with a note saying what was tried). One reopened by a widened list closes
        # again on its recorded closure once the added clients are told (`State.closure`).
        st.closure_row = ExposureClosure(
            exposure_id=exposure_id,
            note=f"every client notified ({len(st.clients)})",
            at=ctx.now,
            recorded_at=ctx.now,
            operator_id=ctx.actor_id,
        )
        ctx.add(st.closure_row)
        rows.append(st.closure_row)
    ctx.audit("exposure.notify", rows)
    return st


def close(ctx: Ctx, exposure_id: int, *, note: str) -> State:
    st = state(ctx.session, exposure_id)
    _refuse_void(st)
    if st.pending:
        shown = ", ".join(st.pending[:5]) + (" …" if len(st.pending) > 5 else "")
        raise UserError(
            f"exposure {exposure_id}: {len(st.pending)} of {len(st.clients)} client(s) not yet "
            f"notified or marked unreachable ({shown}); nothing was recorded"
        )
    if st.closure_row is not None:
        raise UserError(f"exposure {exposure_id} is already closed; nothing was recorded")
    why = v.text(note, "--note")
    assert why is not None
    row = ExposureClosure(
        exposure_id=exposure_id, note=why, at=ctx.now, recorded_at=ctx.now, operator_id=ctx.actor_id
    )
    ctx.add(row)
    ctx.audit("exposure.close", [row])
    st.closure_row = row
    return st
