"""The gate as a use case: gather the facts in a handful of indexed queries, apply the rules,
record the session or the refusal.

Every query here is bounded by an index and a LIMIT (or by the few rows of one lot, one pack,
one sterilizer), so the cost of `check` does not grow with the clinic's history.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session as DbSession

from sterilog import rules
from sterilog.clock import end_of_day, local_date
from sterilog.errors import Reason, UnknownRecord, UserError
from sterilog.models import (
    CartridgeLot,
    CartridgeUnit,
    Cycle,
    CyclePack,
    Device,
    DeviceClean,
    DeviceRetirement,
    Discard,
    Pack,
    Recall,
    Refusal,
    Room,
    RoomClean,
    Session,
    SessionEnd,
    SessionPack,
    Staff,
    StaffDeactivation,
    Sterilizer,
)
from sterilog.services import validate as v
from sterilog.services.base import Ctx
from sterilog.services.voids import counts

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
    lot: CartridgeLot | None

    @property
    def go(self) -> bool:
        return not self.reasons


def _scan(ctx: Ctx, text: str) -> Any:
    from sterilog.scan import ScanError, parse_scan

    try:
        return parse_scan(text, ctx.clinic.scanner_gs)
    except ScanError as error:
        raise UserError(f"cannot read the cartridge scan: {error}") from None


def _moment(row: Any) -> rules.Moment | None:
    if row is None:
        return None
    return rules.Moment(at=row[0], recorded_at=row[1])


def _last_session(ctx: Ctx, column: Any, key: int) -> tuple[int | None, rules.Moment | None, bool]:
    """(open session id, end of the last session, ever used) for a room or a device.

    Sessions never overlap in one room or on one device (the gate blocks that), so the last one
    started is the last one to end.
    """
    row = ctx.session.execute(
        select(Session.id, SessionEnd.at, SessionEnd.recorded_at)
        .outerjoin(SessionEnd, SessionEnd.session_id == Session.id)
        .where(column == key)
        .order_by(Session.started_at.desc(), Session.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None, None, False
    if row[1] is None:
        return int(row[0]), None, True
    return None, rules.Moment(row[1], row[2]), True


def _cartridge(ctx: Ctx, raw: str) -> tuple[rules.CartridgeFacts, CartridgeLot | None]:
    scan = _scan(ctx, raw)
    if scan.lot is None:
        raise UserError("the cartridge scan has no lot (10); scan the full GS1 barcode")
    base = {"raw": raw, "gtin": scan.gtin, "lot": scan.lot, "serial": scan.serial}
    s = ctx.session
    lot = s.execute(
        select(CartridgeLot).where(CartridgeLot.gtin == scan.gtin, CartridgeLot.lot == scan.lot)
    ).scalar_one_or_none()
    if lot is None:
        return rules.CartridgeFacts(**base), None
    usable_until = end_of_day(lot.expiry, ctx.clinic.tz)
    recalled = s.execute(
        select(Recall.id).where(Recall.lot_id == lot.id, counts(Recall)).limit(1)
    ).first()
    common = {
        **base,
        "lot_known": True,
        "expiry": lot.expiry,
        "usable_until": usable_until,
        "recalled": recalled is not None,
    }
    if scan.serial is not None:
        unit = s.execute(
            select(CartridgeUnit.id).where(
                CartridgeUnit.lot_id == lot.id, CartridgeUnit.serial == scan.serial
            )
        ).first()
        if unit is None:
            return rules.CartridgeFacts(**common), lot
        unit_id = int(unit[0])
        used = s.execute(select(Session.id).where(Session.unit_id == unit_id)).first()
        discarded = s.execute(
            select(Discard.id).where(Discard.unit_id == unit_id, counts(Discard))
        ).first()
        return rules.CartridgeFacts(
            **common,
            unit_known=True,
            used_by_session=int(used[0]) if used else None,
            discarded=discarded is not None,
            available_unit_id=None if (used or discarded) else unit_id,
        ), lot
    # Unserialized: any unused, undiscarded unit of the lot will do; the lowest id is taken.
    first = s.execute(
        select(CartridgeUnit.id)
        .where(CartridgeUnit.lot_id == lot.id, CartridgeUnit.serial.is_(None))
        .order_by(CartridgeUnit.id)
        .limit(1)
    ).first()
    if first is None:
        return rules.CartridgeFacts(**common), lot
    free = s.execute(
        select(CartridgeUnit.id)
        .where(
            CartridgeUnit.lot_id == lot.id,
            CartridgeUnit.serial.is_(None),
            ~exists().where(Session.unit_id == CartridgeUnit.id),
            ~exists().where(Discard.unit_id == CartridgeUnit.id, counts(Discard)),
        )
        .order_by(CartridgeUnit.id)
        .limit(1)
    ).first()
    received = 0
    if free is None:
        from sqlalchemy import func

        received = int(
            s.execute(
                select(func.count()).where(
                    CartridgeUnit.lot_id == lot.id, CartridgeUnit.serial.is_(None)
                )
            ).scalar_one()
        )
    return rules.CartridgeFacts(
        **common,
        unit_known=True,
        lot_units=received,
        available_unit_id=int(free[0]) if free else None,
    ), lot


def device_facts(ctx: Ctx, code: str) -> tuple[int, rules.DeviceFacts]:
    device = ctx.session.execute(select(Device).where(Device.code == code)).scalar_one_or_none()
    if device is None:
        raise UnknownRecord("device", code)
    s = ctx.session
    retired = s.execute(
        select(DeviceRetirement.id).where(DeviceRetirement.device_id == device.id).limit(1)
    ).first()
    open_id, last_end, used = _last_session(ctx, Session.device_id, device.id)
    clean = s.execute(
        select(DeviceClean.at, DeviceClean.recorded_at)
        .where(DeviceClean.device_id == device.id, counts(DeviceClean))
        .order_by(DeviceClean.at.desc(), DeviceClean.recorded_at.desc())
        .limit(1)
    ).first()
    return device.id, rules.DeviceFacts(
        code=code,
        retired=retired is not None,
        max_depth_mm=device.max_depth_mm,
        open_session=open_id,
        last_end=last_end,
        ever_used=used,
        last_clean=_moment(clean),
    )


def room_facts(ctx: Ctx, code: str) -> tuple[int, rules.RoomFacts]:
    room = ctx.session.execute(select(Room).where(Room.code == code)).scalar_one_or_none()
    if room is None:
        raise UnknownRecord("room", code)
    open_id, last_end, used = _last_session(ctx, Session.room_id, room.id)
    clean = ctx.session.execute(
        select(RoomClean.at, RoomClean.recorded_at)
        .where(RoomClean.room_id == room.id, RoomClean.kind.in_(READY_KINDS), counts(RoomClean))
        .order_by(RoomClean.at.desc(), RoomClean.recorded_at.desc())
        .limit(1)
    ).first()
    return room.id, rules.RoomFacts(
        code=code,
        open_session=open_id,
        last_end=last_end,
        ever_used=used,
        last_clean=_moment(clean),
    )


def _pack(ctx: Ctx, code: str) -> tuple[int, rules.PackFacts, int | None]:
    s = ctx.session
    pack = s.execute(select(Pack).where(Pack.code == code)).scalar_one_or_none()
    if pack is None:
        raise UnknownRecord("pack", code)
    load = s.execute(
        select(Cycle)
        .join(CyclePack, CyclePack.cycle_id == Cycle.id)
        .where(CyclePack.pack_id == pack.id, counts(Cycle))
        .order_by(Cycle.at.desc(), Cycle.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    # Sessions are never back-dated, so the highest id is the latest use.
    use = s.execute(
        select(Session.id, Session.started_at, SessionEnd.id)
        .join(SessionPack, SessionPack.session_id == Session.id)
        .outerjoin(SessionEnd, SessionEnd.session_id == Session.id)
        .where(SessionPack.pack_id == pack.id)
        .order_by(SessionPack.session_id.desc())
        .limit(1)
    ).first()
    suspect = False
    if load is not None and load.passed:
        from sterilog.services.sterilization import is_load_suspect

        suspect = is_load_suspect(s, load)
    return (
        pack.id,
        rules.PackFacts(
            code=code,
            load_id=load.id if load else None,
            load_at=load.at if load else None,
            load_passed=bool(load.passed) if load else False,
            load_suspect=suspect,
            last_used_at=use[1] if use else None,
            open_session=int(use[0]) if use and use[2] is None else None,
        ),
        (load.sterilizer_id if load else None),
    )


def _practitioner(ctx: Ctx, code: str) -> tuple[int, rules.PractitionerFacts]:
    staff = ctx.session.execute(select(Staff).where(Staff.code == code)).scalar_one_or_none()
    if staff is None:
        raise UnknownRecord("staff", code)
    gone = ctx.session.execute(
        select(StaffDeactivation.id).where(StaffDeactivation.staff_id == staff.id).limit(1)
    ).first()
    return staff.id, rules.PractitionerFacts(
        code=code,
        role=staff.role,
        active=gone is None,
        license_expires=staff.license_expires,
        max_depth_mm=staff.max_depth_mm,
    )


def open_sessions(ctx: Ctx) -> list[tuple[int, str, dt.datetime]]:
    """Open sessions, one indexed lookup per room (a room holds at most one open session)."""
    out: list[tuple[int, str, dt.datetime]] = []
    for room_id, room_code in ctx.session.execute(select(Room.id, Room.code)).all():
        row = ctx.session.execute(
            select(Session.id, Session.started_at, SessionEnd.id)
            .outerjoin(SessionEnd, SessionEnd.session_id == Session.id)
            .where(Session.room_id == room_id)
            .order_by(Session.started_at.desc(), Session.id.desc())
            .limit(1)
        ).first()
        if row is not None and row[2] is None:
            out.append((int(row[0]), str(room_code), row[1]))
    return out


def decide(ctx: Ctx, req: GateRequest) -> Decision:
    """Gather every fact and evaluate every rule. Unknown IDs and bad scans raise (exit 1)."""
    depth = None
    if req.depth_mm is not None:
        depth = v.number(
            req.depth_mm, "--depth-mm", low=v.DEPTH_MM[0], high=v.DEPTH_MM[1], unit=" mm"
        )
    room_id, room = room_facts(ctx, v.ident(req.room, "--room"))
    device_id, device = device_facts(ctx, v.ident(req.device, "--device"))
    practitioner_id, practitioner = _practitioner(ctx, v.ident(req.practitioner, "--practitioner"))
    if len(set(req.packs)) != len(req.packs):
        raise UserError("the same pack is given twice")
    packs = [_pack(ctx, v.ident(p, "--pack")) for p in req.packs]
    if not req.cartridge or not req.cartridge.strip():
        raise UserError("--cartridge must not be empty: scan the cartridge's barcode")
    # The scan is checked by the GS1 parser itself: it legitimately contains GS (ASCII 29).
    cartridge, lot = _cartridge(ctx, req.cartridge)
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
            bi_due=_bi_due(ctx, {p[2] for p in packs if p[2] is not None}),
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
        lot=lot,
    )


def _bi_due(ctx: Ctx, sterilizer_ids: set[int]) -> tuple[tuple[str, dt.datetime], ...]:
    """When the weekly BI falls due for every sterilizer in the clinic (there are few)."""
    from sterilog.services.sterilization import sterilizer_state

    out = []
    for sid, code in ctx.session.execute(select(Sterilizer.id, Sterilizer.code)).all():
        state = sterilizer_state(ctx.session, sid, ctx.now, ctx.clinic.rules, ctx.clinic.tz)
        if state.bi_due_at is not None:
            out.append((str(code), state.bi_due_at))
    return tuple(out)


def start(ctx: Ctx, req: GateRequest) -> tuple[Decision, Session | None, Refusal | None]:
    """Record the session, or the refusal with its reasons. Runs inside the write lock, so the
    decision and the record are atomic: a unit is consumed at most once."""
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


def end(ctx: Ctx, session_id: int, note: str | None) -> SessionEnd:
    s = ctx.session.get(Session, session_id)
    if s is None:
        raise UnknownRecord("session", session_id)
    done = ctx.session.execute(
        select(SessionEnd.id).where(SessionEnd.session_id == session_id)
    ).first()
    if done is not None:
        raise UserError(f"session {session_id} has already ended")
    row = SessionEnd(
        session_id=session_id,
        note=v.text(note, "--note", required=False),
        at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("session.end", [row])
    return row


def session_rows(db: DbSession, where: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """Sessions as the trace/list JSON shape, joined in one query."""
    from sterilog.clock import iso

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
    return ~exists().where(SessionEnd.session_id == Session.id)


def all_of(*conds: Any) -> Any:
    return and_(True, *conds)
