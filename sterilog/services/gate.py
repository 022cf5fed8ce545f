"""The gate as a use case: gather the facts in a handful of indexed queries, apply the rules,
record the session or the refusal.

Every query here is bounded by an index and a LIMIT (or by the few rows of one lot, one pack,
one sterilizer), so the cost of `check` does not grow with the clinic's history.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, insert, text

from sterilog import tables
from sterilog.clock import local_date
from sterilog.compliance import facts, rules
from sterilog.errors import Reason, UnknownRecord, UserError
from sterilog.services import validate as v
from sterilog.services.base import Ctx
from sterilog.sqltypes import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.orm import Session as DbSession


@dataclass(frozen=True)
class GateRequest:
    room: str
    device: str
    cartridge: str
    packs: tuple[str, ...]
    practitioner: str
    depth_mm: float | None = None
    client: str | None = None


@dataclass(frozen=True)
class Decision:
    facts: rules.GateFacts
    reasons: list[Reason]
    warnings: list[rules.GateWarning]
    room_id: int
    device_id: int
    practitioner_id: int
    pack_ids: tuple[int, ...]

    @property
    def go(self) -> bool:
        return not self.reasons


def _scan(ctx: Ctx, raw: str) -> Any:
    from sterilog.scan import ScanError, parse_scan

    try:
        return parse_scan(raw, ctx.clinic.scanner_gs)
    except ScanError as error:
        raise UserError(f"cannot read the cartridge scan: {error}") from None


def _cartridge(ctx: Ctx, raw: str) -> rules.CartridgeFacts:
    scan = _scan(ctx, raw)
    if scan.lot is None:
        raise UserError("the cartridge scan has no lot (10); scan the full GS1 barcode")
    return facts.cartridge_facts(ctx.session, raw, scan.gtin, scan.lot, scan.serial, ctx.clinic.tz)


def decide(ctx: Ctx, req: GateRequest) -> Decision:
    """Gather every fact and evaluate every rule. Unknown IDs and bad scans raise (exit 1)."""
    depth = None
    if req.depth_mm is not None:
        depth = v.depth(req.depth_mm, "--depth-mm")
    db = ctx.session
    room_id, room = facts.room_facts(db, v.ident(req.room, "--room"))
    device_id, device = facts.device_facts(db, v.ident(req.device, "--device"))
    practitioner_id, practitioner = facts.practitioner_facts(
        db, v.ident(req.practitioner, "--practitioner")
    )
    if len(set(req.packs)) != len(req.packs):
        raise UserError("the same pack is given twice")
    packs = [facts.pack_facts(db, v.ident(p, "--pack")) for p in req.packs]
    if not req.cartridge or not req.cartridge.strip():
        raise UserError("--cartridge must not be empty: scan the cartridge's barcode")
    # The scan is checked by the GS1 parser itself: it legitimately contains GS (ASCII 29).
    cartridge = _cartridge(ctx, req.cartridge)
    pack_rules = ctx.clinic.rules
    gate_facts = rules.GateFacts(
        now=ctx.now,
        today=local_date(ctx.now, ctx.clinic.tz),
        cartridge=cartridge,
        device=device,
        room=room,
        practitioner=practitioner,
        packs=tuple(p[1] for p in packs),
        depth_mm=depth,
        pack_shelf_life_days=pack_rules.pack_shelf_life_days,
    )
    reasons = rules.evaluate(gate_facts)
    warn = rules.warnings(
        rules.WarningFacts(
            now=ctx.now,
            cartridge_usable_until=cartridge.usable_until,
            cartridge_expiry=cartridge.expiry,
            expiry_warning_days=pack_rules.cartridge_expiry_warning_days,
            bi_due=facts.bi_due(
                db, ctx.now, pack_rules.bi_interval_days, pack_rules.lab_result_days
            ),
            bi_warning_hours=pack_rules.bi_due_warning_hours,
            open_sessions=tuple(facts.open_sessions(db)),
            open_warning_hours=pack_rules.open_session_warning_hours,
            tz=ctx.clinic.tz,
        )
    )
    return Decision(
        facts=gate_facts,
        reasons=reasons,
        warnings=warn,
        room_id=room_id,
        device_id=device_id,
        practitioner_id=practitioner_id,
        pack_ids=tuple(p[0] for p in packs),
    )


@dataclass(frozen=True)
class Started:
    """The session `start` recorded."""

    id: int
    started_at: dt.datetime


@dataclass(frozen=True)
class Refused:
    """The refusal `start` recorded."""

    id: int


@dataclass(frozen=True)
class Ended:
    """The session end `end` recorded."""

    id: int
    session_id: int
    at: dt.datetime


# The per-client writes insert with Core on sterilog/tables.py: no mapped class is imported and
# no ORM statement compiled before every client (issue 17). What is recorded is what the
# database holds: the audit entry reads every inserted row back (audit.append_rows).
def _insert(ctx: Ctx, table: Table, values: dict[str, Any]) -> int:
    key = ctx.session.connection().execute(insert(table), values).inserted_primary_key
    assert key is not None
    return int(key[0])


def start(ctx: Ctx, req: GateRequest) -> tuple[Decision, Started | None, Refused | None]:
    """Record the session, or the refusal with its reasons. Runs inside the write lock, so the
    decision and the record are atomic: a unit is consumed at most once."""
    client = v.name(req.client, "--client")
    assert client is not None
    decision = decide(ctx, req)
    if not decision.go:
        c = decision.facts.cartridge
        refusal_id = _insert(
            ctx,
            tables.refusals,
            {
                "room": req.room,
                "device": req.device,
                "cartridge_scan": req.cartridge,
                "gtin": c.gtin,
                "lot": c.lot,
                "serial": c.serial,
                "packs": json.dumps(list(req.packs)),
                "client": client,
                "practitioner": req.practitioner,
                "depth_mm": decision.facts.depth_mm,
                "reasons": json.dumps(
                    [{"code": r.code, "message": r.message} for r in decision.reasons]
                ),
                "at": ctx.now,
                "recorded_at": ctx.now,
                "operator_id": ctx.actor_id,
            },
        )
        ctx.audit_rows("session.refused", [(tables.refusals, refusal_id)])
        return decision, None, Refused(refusal_id)
    c = decision.facts.cartridge
    assert c.available_unit_id is not None and c.expiry is not None
    session_id = _insert(
        ctx,
        tables.sessions,
        {
            "room_id": decision.room_id,
            "device_id": decision.device_id,
            "unit_id": c.available_unit_id,
            "practitioner_id": decision.practitioner_id,
            "client": client,
            "depth_mm": decision.facts.depth_mm,
            "gtin": c.gtin,
            "lot": c.lot,
            "serial": c.serial,
            "expiry": c.expiry,
            "started_at": ctx.now,
            "recorded_at": ctx.now,
            "operator_id": ctx.actor_id,
        },
    )
    rows: list[tuple[Table, int]] = [(tables.sessions, session_id)]
    for pid, pf in zip(decision.pack_ids, decision.facts.packs, strict=True):
        if pf.load_id is not None:
            link = {
                "session_id": session_id,
                "pack_id": pid,
                "cycle_id": pf.load_id,
                "recorded_at": ctx.now,
            }
            rows.append((tables.session_packs, _insert(ctx, tables.session_packs, link)))
    ctx.audit_rows("session.start", rows)
    return decision, Started(session_id, ctx.now), None


_STARTED_AT = text("SELECT started_at FROM sessions WHERE id = :id").columns(
    started_at=UTCDateTime
)
_ENDED = text("SELECT id FROM session_ends WHERE session_id = :id LIMIT 1")


def end(ctx: Ctx, session_id: int, note: str | None, at: dt.datetime | None = None) -> Ended:
    """End a session now, or at `at` (`--at`: when the client really left, entered late):
    never before its start, never in the future."""
    s = ctx.session.execute(_STARTED_AT, {"id": session_id}).first()
    if s is None:
        raise UnknownRecord("session", session_id)
    if ctx.session.execute(_ENDED, {"id": session_id}).first() is not None:
        raise UserError(f"session {session_id} has already ended")
    when = ctx.event_time(at)
    if when < s.started_at:
        raise UserError(
            f"--at is before session {session_id} started; a session ends after its start"
        )
    end_id = _insert(
        ctx,
        tables.session_ends,
        {
            "session_id": session_id,
            "note": v.text(note, "--note", required=False),
            "at": when,
            "recorded_at": ctx.now,
            "operator_id": ctx.actor_id,
        },
    )
    ctx.audit_rows("session.end", [(tables.session_ends, end_id)])
    return Ended(end_id, session_id, when)


def session_rows(db: DbSession, where: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """Sessions as the trace/list JSON shape, joined in one query."""
    from sqlalchemy import select

    from sterilog.clock import iso
    from sterilog.models import Device, Room, Session, SessionEnd, Staff

    q = (
        select(
            Session.id,
            Session.client,
            Session.started_at,
            Room.code,
            Staff.code,
            Session.practitioner_id,
            Device.code,
            Session.gtin,
            Session.lot,
            Session.serial,
            Session.expiry,
            Session.depth_mm,
            SessionEnd.at,
        )
        .join(Room, Room.id == Session.room_id)
        .join(Staff, Staff.id == Session.practitioner_id)
        .join(Device, Device.id == Session.device_id)
        .outerjoin(SessionEnd, SessionEnd.session_id == Session.id)
        .where(where)
        .order_by(Session.started_at, Session.id)
    )
    if limit is not None:
        q = q.limit(limit)
    from sterilog.compliance.registers import StaffNames

    names = StaffNames(db)  # the practitioner's name as in force when the session started
    rows = [
        {
            "session_id": r[0],
            "client": r[1],
            "started_at": iso(r[2]),
            "room": r[3],
            "practitioner": r[4],
            "practitioner_name": names(r[5], r[2]),
            "device": r[6],
            "cartridge": {"gtin": r[7], "lot": r[8], "serial": r[9], "expiry": r[10].isoformat()},
            "depth_mm": r[11],
            "ended_at": iso(r[12]),
        }
        for r in db.execute(q).all()
    ]
    from sterilog.services import late_marks

    marks = late_marks.mark(db, Session, (r["session_id"] for r in rows), at="started_at")
    return [{**r, **marks[r["session_id"]]} for r in rows]


def open_filter() -> Any:
    """For `session_rows`, which already outer-joins the session's end."""
    from sterilog.models import SessionEnd

    return SessionEnd.id.is_(None)


def all_of(*conds: Any) -> Any:
    return and_(True, *conds)
