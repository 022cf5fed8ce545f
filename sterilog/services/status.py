"""`sterilog status`: what is due, overdue or blocked right now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, select

from sterilog import rules
from sterilog.clock import end_of_day, local_date
from sterilog.models import (
    CartridgeLot,
    CartridgeUnit,
    Device,
    DeviceRetirement,
    Discard,
    Recall,
    Room,
    Session,
    Staff,
    StaffDeactivation,
    Sterilizer,
)
from sterilog.services.base import Ctx
from sterilog.services.voids import counts


@dataclass(frozen=True)
class Item:
    kind: str
    subject: str
    state: str  # due | overdue | blocked | check (device cycle counter anomalies)
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "state": self.state,
            "message": self.message,
        }


def _sterilizers(ctx: Ctx) -> list[Item]:
    from sterilog.services.sterilization import sterilizer_state

    out = []
    pack = ctx.clinic.rules
    for st in ctx.session.execute(select(Sterilizer).order_by(Sterilizer.code)).scalars():
        s = sterilizer_state(ctx.session, st.id, ctx.now, pack, ctx.clinic.tz)
        if s.locked:
            out.append(
                Item(
                    "sterilizer",
                    st.code,
                    "blocked",
                    s.lock_reason or "locked: run test cycles with a BI",
                )
            )
        if s.bi_due_at is None or s.bi_due_at <= ctx.now:
            out.append(
                Item(
                    "bi",
                    st.code,
                    "overdue",
                    "weekly spore test (BI) overdue: the next cycle must carry a BI",
                )
            )
        elif s.bi_due_at <= ctx.now + dt.timedelta(hours=pack.bi_due_warning_hours):
            out.append(Item("bi", st.code, "due", f"spore test (BI) due by {s.bi_due_at}"))
        if st.type in pack.air_removal_types:
            if s.air_removal_today is None:
                out.append(
                    Item(
                        "air-removal",
                        st.code,
                        "due",
                        "today's air-removal test (Bowie-Dick/Helix) is not recorded",
                    )
                )
            elif s.air_removal_today == "fail":
                out.append(
                    Item(
                        "air-removal",
                        st.code,
                        "blocked",
                        "today's latest air-removal test failed: no loads until one passes",
                    )
                )
    return out


def _rooms_and_devices(ctx: Ctx) -> list[Item]:
    from sterilog.services.gate import device_facts, room_facts

    out: list[Item] = []
    for (code,) in ctx.session.execute(select(Room.code).order_by(Room.code)).all():
        _, facts = room_facts(ctx, code)
        if facts.open_session is not None:
            continue  # listed with the open sessions
        dummy = _bare(ctx, room=facts)
        for msg in rules.room_cleaned(dummy):
            out.append(Item("room", code, "due", msg))
    retired = select(DeviceRetirement.id).where(DeviceRetirement.device_id == Device.id)
    for (code,) in ctx.session.execute(
        select(Device.code).where(~exists(retired)).order_by(Device.code)
    ).all():
        _, dfacts = device_facts(ctx, code)
        if dfacts.open_session is not None:
            continue
        for msg in rules.device_reprocessed(_bare(ctx, device=dfacts)):
            out.append(Item("device", code, "due", msg))
    return out


def _bare(ctx: Ctx, **parts: Any) -> rules.GateFacts:
    """Gate facts with only the part a status line needs; the rest passes every rule."""
    import dataclasses

    base = rules.GateFacts(
        now=ctx.now,
        today=local_date(ctx.now, ctx.clinic.tz),
        cartridge=rules.CartridgeFacts(raw="", gtin="", lot="", serial=None),
        device=rules.DeviceFacts(code=""),
        room=rules.RoomFacts(code=""),
        practitioner=rules.PractitionerFacts(code="", role="practitioner"),
    )
    return dataclasses.replace(base, **parts)


def _open_sessions(ctx: Ctx) -> list[Item]:
    from sterilog.services.gate import open_sessions as open_ones

    limit = dt.timedelta(hours=ctx.clinic.rules.open_session_warning_hours)
    return [
        Item(
            "session",
            str(sid),
            "overdue" if ctx.now - started > limit else "due",
            f"open in room {room} since {started.isoformat()}: end it with "
            f"`sterilog session end {sid}`",
        )
        for sid, room, started in open_ones(ctx)
    ]


def _stock(ctx: Ctx) -> list[Item]:
    """Lots with units still on the shelf that are recalled, expired or expiring soon."""
    s = ctx.session
    unused = and_(
        ~exists().where(Session.unit_id == CartridgeUnit.id),
        ~exists().where(Discard.unit_id == CartridgeUnit.id, counts(Discard)),
    )
    q = (
        select(CartridgeLot, func.count(CartridgeUnit.id))
        .join(CartridgeUnit, CartridgeUnit.lot_id == CartridgeLot.id)
        .where(unused)
        .group_by(CartridgeLot.id)
        .order_by(CartridgeLot.expiry, CartridgeLot.id)
    )
    recalled = {r[0] for r in s.execute(select(Recall.lot_id).where(counts(Recall))).all()}
    warn = dt.timedelta(days=ctx.clinic.rules.cartridge_expiry_warning_days)
    out = []
    for lot, n in s.execute(q).all():
        name = f"{lot.gtin}/{lot.lot}"
        until = end_of_day(lot.expiry, ctx.clinic.tz)
        if lot.id in recalled:
            out.append(
                Item(
                    "stock",
                    name,
                    "blocked",
                    f"{n} recalled unit(s) still on the shelf: quarantine or return them",
                )
            )
        elif ctx.now >= until:
            out.append(
                Item(
                    "stock",
                    name,
                    "overdue",
                    f"{n} expired unit(s) (expiry {lot.expiry}) still on the shelf: discard them",
                )
            )
        elif until - ctx.now <= warn:
            out.append(
                Item(
                    "stock", name, "due", f"{n} unit(s) expire on {lot.expiry}: use or replace them"
                )
            )
    return out


def _licences(ctx: Ctx) -> list[Item]:
    today = local_date(ctx.now, ctx.clinic.tz)
    gone = select(StaffDeactivation.id).where(StaffDeactivation.staff_id == Staff.id)
    out = []
    for st in ctx.session.execute(
        select(Staff).where(Staff.license_expires.is_not(None), ~exists(gone)).order_by(Staff.code)
    ).scalars():
        assert st.license_expires is not None
        if today > st.license_expires:
            out.append(
                Item(
                    "licence",
                    st.code,
                    "blocked",
                    f"licence expired on {st.license_expires}: may not treat",
                )
            )
        elif st.license_expires - today <= dt.timedelta(days=30):
            out.append(Item("licence", st.code, "due", f"licence expires on {st.license_expires}"))
    return out


def _device_evidence(ctx: Ctx) -> list[Item]:
    """Issue 15: the device cycle counter's gaps and clock anomalies; imported loads with packs
    whose chemical indicator nobody has read."""
    from sqlalchemy import exists

    from sterilog.models import Cycle, CycleCi, CyclePack
    from sterilog.services.device_import import NO_CI, continuity
    from sterilog.services.voids import counts

    out = [
        Item("counter", a.sterilizer, "check", a.message(ctx.clinic.tz))
        for a in continuity(ctx.session)
    ]
    pending = ctx.session.execute(
        select(Cycle.id)
        .where(
            Cycle.ci == NO_CI,
            Cycle.passed.is_(True),
            counts(Cycle),
            exists().where(CyclePack.cycle_id == Cycle.id),
            ~exists().where(CycleCi.cycle_id == Cycle.id),
        )
        .order_by(Cycle.id)
    ).scalars()
    out += [
        Item(
            "ci",
            f"load {i}",
            "due",
            f"imported load {i}: read its chemical indicator (`sterilog cycle ci {i} --ci "
            "pass|fail`); its packs are blocked until then",
        )
        for i in pending
    ]
    return out


def status(ctx: Ctx) -> list[Item]:
    return [
        *_sterilizers(ctx),
        *_device_evidence(ctx),
        *_rooms_and_devices(ctx),
        *_open_sessions(ctx),
        *_stock(ctx),
        *_licences(ctx),
    ]
