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

from sqlalchemy import Boolean, Date, Float, Integer, and_, bindparam, text

from sterilog import rules
from sterilog.clock import end_of_day, local_date
from sterilog.errors import Reason, UnknownRecord, UserError
from sterilog.services import validate as v
from sterilog.services.base import Ctx
from sterilog.sqltypes import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy.orm import Session as DbSession

    from sterilog.models import Refusal, Session, SessionEnd

READY_KINDS = ("between-clients", "end-of-day")


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


# The gate's facts come from plain SQL (`text()`): compiling ORM statements and configuring the
# mappers would cost the interactive path more than the queries themselves (SPEC §10), and the
# models module is not even imported for a `check`. Every query is bounded by an index and a
# LIMIT, or by the rows of one lot, one pack or one sterilizer.


def _not_voided(kind: str, alias: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM voids v WHERE v.kind = '{kind}' AND v.record_id = {alias}.id)"
    )


def _q(sql: str, **types: Any) -> Any:
    stmt = text(sql)
    return stmt.columns(**types) if types else stmt


def _one(ctx: Ctx, stmt: Any, **params: Any) -> Any:
    return ctx.session.execute(stmt, params).first()


_LAST_SESSION = {
    col: _q(
        "SELECT s.id, e.at, e.recorded_at, s.started_at FROM sessions s "
        "LEFT JOIN session_ends e ON e.session_id = s.id "
        f"WHERE s.{col} = :key ORDER BY s.started_at DESC, s.id DESC LIMIT 1",
        id=Integer,
        at=UTCDateTime,
        recorded_at=UTCDateTime,
        started_at=UTCDateTime,
    )
    for col in ("room_id", "device_id")
}


def _last_session(ctx: Ctx, column: str, key: int) -> tuple[int | None, rules.Moment | None, bool]:
    """(open session id, end of the last session, ever used) for a room or a device.

    Sessions never overlap in one room or on one device (the gate blocks that), so the last one
    started is the last one to end.
    """
    row = _one(ctx, _LAST_SESSION[column], key=key)
    if row is None:
        return None, None, False
    if row[1] is None:
        return int(row[0]), None, True
    return None, rules.Moment(row[1], row[2]), True


def _moment(row: Any) -> rules.Moment | None:
    if row is None:
        return None
    return rules.Moment(at=row[0], recorded_at=row[1])


_LOT = _q(
    "SELECT id, expiry FROM cartridge_lots WHERE gtin = :gtin AND lot = :lot",
    id=Integer,
    expiry=Date,
)
_RECALLED = _q(
    f"SELECT r.id FROM recalls r WHERE r.lot_id = :lot AND {_not_voided('recall', 'r')} LIMIT 1"
)
_UNIT = _q("SELECT id FROM cartridge_units WHERE lot_id = :lot AND serial = :serial")
_USED = _q("SELECT id FROM sessions WHERE unit_id = :unit")
_DISCARDED = _q(
    f"SELECT d.id FROM discards d WHERE d.unit_id = :unit AND {_not_voided('discard', 'd')}"
)
_ANY_UNSERIALIZED = _q(
    "SELECT id FROM cartridge_units WHERE lot_id = :lot AND serial IS NULL ORDER BY id LIMIT 1"
)
_FREE_UNSERIALIZED = _q(
    "SELECT u.id FROM cartridge_units u WHERE u.lot_id = :lot AND u.serial IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.unit_id = u.id) "
    "AND NOT EXISTS (SELECT 1 FROM discards d WHERE d.unit_id = u.id AND "
    f"{_not_voided('discard', 'd')}) ORDER BY u.id LIMIT 1"
)
_COUNT_UNSERIALIZED = _q(
    "SELECT count(*) FROM cartridge_units WHERE lot_id = :lot AND serial IS NULL"
)


def _cartridge(ctx: Ctx, raw: str) -> rules.CartridgeFacts:
    scan = _scan(ctx, raw)
    if scan.lot is None:
        raise UserError("the cartridge scan has no lot (10); scan the full GS1 barcode")
    base = {"raw": raw, "gtin": scan.gtin, "lot": scan.lot, "serial": scan.serial}
    lot = _one(ctx, _LOT, gtin=scan.gtin, lot=scan.lot)
    if lot is None:
        return rules.CartridgeFacts(**base)
    lot_id, expiry = int(lot[0]), lot[1]
    common = {
        **base,
        "lot_known": True,
        "expiry": expiry,
        "usable_until": end_of_day(expiry, ctx.clinic.tz),
        "recalled": _one(ctx, _RECALLED, lot=lot_id) is not None,
    }
    if scan.serial is not None:
        unit = _one(ctx, _UNIT, lot=lot_id, serial=scan.serial)
        if unit is None:
            return rules.CartridgeFacts(**common)
        unit_id = int(unit[0])
        used = _one(ctx, _USED, unit=unit_id)
        discarded = _one(ctx, _DISCARDED, unit=unit_id)
        return rules.CartridgeFacts(
            **common,
            unit_known=True,
            used_by_session=int(used[0]) if used else None,
            discarded=discarded is not None,
            available_unit_id=None if (used or discarded) else unit_id,
        )
    # Unserialized: any unused, undiscarded unit of the lot will do; the lowest id is taken.
    if _one(ctx, _ANY_UNSERIALIZED, lot=lot_id) is None:
        return rules.CartridgeFacts(**common)
    free = _one(ctx, _FREE_UNSERIALIZED, lot=lot_id)
    received = 0 if free else int(_one(ctx, _COUNT_UNSERIALIZED, lot=lot_id)[0])
    return rules.CartridgeFacts(
        **common,
        unit_known=True,
        lot_units=received,
        available_unit_id=int(free[0]) if free else None,
    )


_DEVICE = _q(
    "SELECT id, max_depth_mm FROM devices WHERE code = :code", id=Integer, max_depth_mm=Float
)
_RETIRED = _q("SELECT id FROM device_retirements WHERE device_id = :id LIMIT 1")
_DEVICE_CLEAN = _q(
    "SELECT c.at, c.recorded_at FROM device_cleans c WHERE c.device_id = :id AND "
    f"{_not_voided('device-clean', 'c')} ORDER BY c.at DESC, c.recorded_at DESC LIMIT 1",
    at=UTCDateTime,
    recorded_at=UTCDateTime,
)


def device_facts(ctx: Ctx, code: str) -> tuple[int, rules.DeviceFacts]:
    device = _one(ctx, _DEVICE, code=code)
    if device is None:
        raise UnknownRecord("device", code)
    device_id = int(device[0])
    open_id, last_end, used = _last_session(ctx, "device_id", device_id)
    from sterilog.services.corrections import overlay

    # What is in force now: corrections (device update/reinstate) are dated records.
    now = overlay(ctx.session, "device", device_id, {"model": None, "max_depth_mm": device[1]})
    return device_id, rules.DeviceFacts(
        code=code,
        retired=not now.active,
        max_depth_mm=now.max_depth_mm,
        open_session=open_id,
        last_end=last_end,
        ever_used=used,
        last_clean=_moment(_one(ctx, _DEVICE_CLEAN, id=device_id)),
    )


_ROOM = _q("SELECT id FROM rooms WHERE code = :code")
_ROOM_CLEAN = _q(
    "SELECT c.at, c.recorded_at FROM room_cleans c WHERE c.room_id = :id "
    "AND c.kind IN ('between-clients', 'end-of-day') AND "
    f"{_not_voided('room-clean', 'c')} ORDER BY c.at DESC, c.recorded_at DESC LIMIT 1",
    at=UTCDateTime,
    recorded_at=UTCDateTime,
)


def room_facts(ctx: Ctx, code: str) -> tuple[int, rules.RoomFacts]:
    room = _one(ctx, _ROOM, code=code)
    if room is None:
        raise UnknownRecord("room", code)
    room_id = int(room[0])
    open_id, last_end, used = _last_session(ctx, "room_id", room_id)
    return room_id, rules.RoomFacts(
        code=code,
        open_session=open_id,
        last_end=last_end,
        ever_used=used,
        last_clean=_moment(_one(ctx, _ROOM_CLEAN, id=room_id)),
    )


_PACK = _q("SELECT id FROM packs WHERE code = :code")
# ci = 'none' with no cycle_cis row: an imported load whose CI nobody has read yet (issue 15).
_PACK_LOAD = _q(
    "SELECT c.id, c.at, c.passed, c.sterilizer_id, c.ci, r.passed AS ci_passed FROM cycles c "
    "JOIN cycle_packs cp ON cp.cycle_id = c.id LEFT JOIN cycle_cis r ON r.cycle_id = c.id "
    f"WHERE cp.pack_id = :id AND {_not_voided('cycle', 'c')} "
    "ORDER BY c.at DESC, c.id DESC LIMIT 1",
    id=Integer,
    at=UTCDateTime,
    passed=Boolean,
    sterilizer_id=Integer,
    ci_passed=Boolean,
)
# Sessions are never back-dated, so the highest id is the latest use.
_PACK_USE = _q(
    "SELECT s.id, s.started_at, e.id FROM session_packs sp "
    "JOIN sessions s ON s.id = sp.session_id LEFT JOIN session_ends e ON e.session_id = s.id "
    "WHERE sp.pack_id = :id ORDER BY sp.session_id DESC LIMIT 1",
    id=Integer,
    started_at=UTCDateTime,
)
# A load can only be suspect if its sterilizer had a valid positive BI read at or after the
# load: that is rare, so the full suspect-range logic (services/sterilization.py) runs only then.
_ANY_POSITIVE = _q(
    "SELECT r.id FROM bi_reads r JOIN bis b ON b.id = r.bi_id JOIN cycles c ON c.id = b.cycle_id "
    "WHERE c.sterilizer_id = :st AND r.result = 'positive' AND r.valid = :yes AND r.at >= :at AND "
    f"{_not_voided('bi-read', 'r')} LIMIT 1"
).bindparams(bindparam("at", type_=UTCDateTime))


def _pack(ctx: Ctx, code: str) -> tuple[int, rules.PackFacts, int | None]:
    pack = _one(ctx, _PACK, code=code)
    if pack is None:
        raise UnknownRecord("pack", code)
    pack_id = int(pack[0])
    load = _one(ctx, _PACK_LOAD, id=pack_id)
    use = _one(ctx, _PACK_USE, id=pack_id)
    suspect = False
    if load is not None and load[2] and _one(ctx, _ANY_POSITIVE, st=load[3], yes=True, at=load[1]):
        from sterilog.models import Cycle
        from sterilog.services.sterilization import is_load_suspect

        cycle = ctx.session.get(Cycle, int(load[0]))
        suspect = cycle is not None and is_load_suspect(ctx.session, cycle)
    ci_missing = load is not None and load[4] == "none" and load[5] is None
    ci_failed = load is not None and load[4] == "none" and load[5] is not None and not load[5]
    return (
        pack_id,
        rules.PackFacts(
            code=code,
            load_id=int(load[0]) if load else None,
            load_at=load[1] if load else None,
            load_passed=bool(load[2]) and not ci_failed if load else False,
            load_ci_missing=ci_missing,
            load_suspect=suspect,
            last_used_at=use[1] if use else None,
            open_session=int(use[0]) if use and use[2] is None else None,
        ),
        (int(load[3]) if load else None),
    )


_STAFF = _q(
    "SELECT id, role, license_expires, max_depth_mm FROM staff WHERE code = :code",
    id=Integer,
    license_expires=Date,
    max_depth_mm=Float,
)
_DEACTIVATED = _q("SELECT id FROM staff_deactivations WHERE staff_id = :id LIMIT 1")


def _practitioner(ctx: Ctx, code: str) -> tuple[int, rules.PractitionerFacts]:
    staff = _one(ctx, _STAFF, code=code)
    if staff is None:
        raise UnknownRecord("staff", code)
    staff_id = int(staff[0])
    from sterilog.services.corrections import overlay

    # What is in force now: corrections (staff update/reinstate) are dated records.
    recorded = {
        "name": None,
        "role": staff[1],
        "license_no": None,
        "license_expires": staff[2],
        "max_depth_mm": staff[3],
    }
    now = overlay(ctx.session, "staff", staff_id, recorded)
    return staff_id, rules.PractitionerFacts(
        code=code,
        role=now.role,
        active=now.active,
        license_expires=now.license_expires,
        max_depth_mm=now.max_depth_mm,
    )


_ROOMS = _q("SELECT id, code FROM rooms ORDER BY code")


def open_sessions(ctx: Ctx) -> list[tuple[int, str, dt.datetime]]:
    """Open sessions, one indexed lookup per room (a room holds at most one open session)."""
    out: list[tuple[int, str, dt.datetime]] = []
    for room_id, room_code in ctx.session.execute(_ROOMS).all():
        row = _one(ctx, _LAST_SESSION["room_id"], key=room_id)
        if row is not None and row[1] is None:  # an ended session always has its end time
            out.append((int(row[0]), str(room_code), row[3]))
    return out


_STERILIZERS = _q("SELECT id, code FROM sterilizers ORDER BY code")
# The weekly BI falls due `interval` after the latest load carrying a BI that is still
# incubating or read negative with a valid control (the same evidence `cycle record` demands;
# tests/test_gate.py cross-checks this against services.sterilization.sterilizer_state).
_LAST_BI_EVIDENCE = _q(
    "SELECT c.at FROM cycles c JOIN bis b ON b.cycle_id = c.id "
    f"WHERE c.sterilizer_id = :st AND {_not_voided('cycle', 'c')} AND ("
    "  NOT EXISTS (SELECT 1 FROM bi_reads r WHERE r.bi_id = b.id AND r.valid = :yes AND "
    f"    {_not_voided('bi-read', 'r')}) OR "
    "  EXISTS (SELECT 1 FROM bi_reads r WHERE r.bi_id = b.id AND r.valid = :yes AND "
    f"    r.result = 'negative' AND {_not_voided('bi-read', 'r')})"
    ") ORDER BY c.at DESC, c.id DESC LIMIT 1",
    at=UTCDateTime,
)


def _bi_due(ctx: Ctx) -> tuple[tuple[str, dt.datetime], ...]:
    """When the weekly BI falls due, for every sterilizer in the clinic (there are few)."""
    days = ctx.clinic.rules.bi_interval_days
    out = []
    for sid, code in ctx.session.execute(_STERILIZERS).all():
        row = _one(ctx, _LAST_BI_EVIDENCE, st=sid, yes=True)
        if row is not None:
            out.append((str(code), row[0] + dt.timedelta(days=days)))
    return tuple(out)


def decide(ctx: Ctx, req: GateRequest) -> Decision:
    """Gather every fact and evaluate every rule. Unknown IDs and bad scans raise (exit 1)."""
    depth = None
    if req.depth_mm is not None:
        depth = v.depth(req.depth_mm, "--depth-mm")
    room_id, room = room_facts(ctx, v.ident(req.room, "--room"))
    device_id, device = device_facts(ctx, v.ident(req.device, "--device"))
    practitioner_id, practitioner = _practitioner(ctx, v.ident(req.practitioner, "--practitioner"))
    if len(set(req.packs)) != len(req.packs):
        raise UserError("the same pack is given twice")
    packs = [_pack(ctx, v.ident(p, "--pack")) for p in req.packs]
    if not req.cartridge or not req.cartridge.strip():
        raise UserError("--cartridge must not be empty: scan the cartridge's barcode")
    # The scan is checked by the GS1 parser itself: it legitimately contains GS (ASCII 29).
    cartridge = _cartridge(ctx, req.cartridge)
    pack_rules = ctx.clinic.rules
    facts = rules.GateFacts(
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
    reasons = rules.evaluate(facts)
    warn = rules.warnings(
        rules.WarningFacts(
            now=ctx.now,
            cartridge_usable_until=cartridge.usable_until,
            cartridge_expiry=cartridge.expiry,
            expiry_warning_days=pack_rules.cartridge_expiry_warning_days,
            bi_due=_bi_due(ctx),
            bi_warning_hours=pack_rules.bi_due_warning_hours,
            open_sessions=tuple(open_sessions(ctx)),
            open_warning_hours=pack_rules.open_session_warning_hours,
        )
    )
    return Decision(
        facts=facts,
        reasons=reasons,
        warnings=warn,
        room_id=room_id,
        device_id=device_id,
        practitioner_id=practitioner_id,
        pack_ids=tuple(p[0] for p in packs),
    )


def start(ctx: Ctx, req: GateRequest) -> tuple[Decision, Session | None, Refusal | None]:
    """Record the session, or the refusal with its reasons. Runs inside the write lock, so the
    decision and the record are atomic: a unit is consumed at most once."""
    from sterilog.models import Refusal, Session, SessionPack

    client = v.name(req.client, "--client")
    assert client is not None
    decision = decide(ctx, req)
    if not decision.go:
        c = decision.facts.cartridge
        refusal = Refusal(
            room=req.room,
            device=req.device,
            cartridge_scan=req.cartridge,
            gtin=c.gtin,
            lot=c.lot,
            serial=c.serial,
            packs=json.dumps(list(req.packs)),
            client=client,
            practitioner=req.practitioner,
            depth_mm=decision.facts.depth_mm,
            reasons=json.dumps([{"code": r.code, "message": r.message} for r in decision.reasons]),
            at=ctx.now,
            recorded_at=ctx.now,
            operator_id=ctx.actor_id,
        )
        ctx.add(refusal)
        ctx.audit("session.refused", [refusal])
        return decision, None, refusal
    c = decision.facts.cartridge
    assert c.available_unit_id is not None and c.expiry is not None
    session = Session(
        room_id=decision.room_id,
        device_id=decision.device_id,
        unit_id=c.available_unit_id,
        practitioner_id=decision.practitioner_id,
        client=client,
        depth_mm=decision.facts.depth_mm,
        gtin=c.gtin,
        lot=c.lot,
        serial=c.serial,
        expiry=c.expiry,
        started_at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(session)
    ctx.session.flush()
    links = [
        SessionPack(session_id=session.id, pack_id=pid, cycle_id=pf.load_id, recorded_at=ctx.now)
        for pid, pf in zip(decision.pack_ids, decision.facts.packs, strict=True)
        if pf.load_id is not None
    ]
    ctx.add(*links)
    ctx.audit("session.start", [session, *links])
    return decision, session, None


def end(ctx: Ctx, session_id: int, note: str | None, at: dt.datetime | None = None) -> SessionEnd:
    """End a session now, or at `at` (`--at`: when the client really left, entered late):
    never before its start, never in the future."""
    from sqlalchemy import select

    from sterilog.models import Session, SessionEnd

    s = ctx.session.get(Session, session_id)
    if s is None:
        raise UnknownRecord("session", session_id)
    done = ctx.session.execute(
        select(SessionEnd.id).where(SessionEnd.session_id == session_id)
    ).first()
    if done is not None:
        raise UserError(f"session {session_id} has already ended")
    when = ctx.event_time(at)
    if when < s.started_at:
        raise UserError(
            f"--at is before session {session_id} started; a session ends after its start"
        )
    row = SessionEnd(
        session_id=session_id,
        note=v.text(note, "--note", required=False),
        at=when,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("session.end", [row])
    return row


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
            Staff.name,
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
    return [
        {
            "session_id": r[0],
            "client": r[1],
            "started_at": iso(r[2]),
            "room": r[3],
            "practitioner": r[4],
            "practitioner_name": r[5],
            "device": r[6],
            "cartridge": {"gtin": r[7], "lot": r[8], "serial": r[9], "expiry": r[10].isoformat()},
            "depth_mm": r[11],
            "ended_at": iso(r[12]),
        }
        for r in db.execute(q).all()
    ]


def open_filter() -> Any:
    """For `session_rows`, which already outer-joins the session's end."""
    from sterilog.models import SessionEnd

    return SessionEnd.id.is_(None)


def all_of(*conds: Any) -> Any:
    return and_(True, *conds)
