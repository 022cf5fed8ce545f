"""`sterilog status`: what is due, overdue or blocked right now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, select

from sterilog.clock import end_of_day, fmt_zoned, local_date
from sterilog.compliance import cycle_rules, facts, history, rules
from sterilog.compliance.voids import counts
from sterilog.models import (
    CartridgeLot,
    CartridgeUnit,
    Device,
    DeviceRetirement,
    Discard,
    Room,
    Session,
    Staff,
)
from sterilog.services.base import Ctx


@dataclass(frozen=True)
class Item:
    kind: str
    subject: str
    state: str  # due | overdue | blocked | check (device cycle counter anomalies)
    message: str
    code: str = ""  # the status rule (compliance.rules.STATUS_RULES)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "state": self.state,
            "message": self.message,
            "code": self.code,
        }


def _sterilizers(ctx: Ctx) -> list[Item]:
    """What `cycle record` would say of a load without a BI now (the same facts and rules)."""
    out = []
    pack = ctx.clinic.rules
    for sid, code, _ in facts.sterilizers(ctx.session):
        s = history.sterilizer_state(ctx.session, sid, ctx.now, pack, ctx.clinic.tz)
        if cycle_rules.sterilizer_locked(s.facts):
            out.append(
                Item(
                    "sterilizer",
                    code,
                    "blocked",
                    s.lock_reason or "locked: run test cycles with a BI",
                    "status-sterilizer-locked",
                )
            )
        if s.bi_overdue:
            out.append(
                Item(
                    "bi",
                    code,
                    "overdue",
                    "weekly spore test (BI) overdue: the next cycle must carry a BI",
                    "status-bi-overdue",
                )
            )
        elif s.bi_due_at is not None and s.bi_due_at <= ctx.now + dt.timedelta(
            hours=pack.bi_due_warning_hours
        ):
            out.append(
                Item(
                    "bi", code, "due", f"spore test (BI) due by {s.bi_due_at}", "status-bi-overdue"
                )
            )
        if cycle_rules.air_removal_failed(s.facts):
            out.append(
                Item(
                    "air-removal",
                    code,
                    "blocked",
                    "today's latest air-removal test failed: no loads until one passes",
                    "status-air-removal",
                )
            )
        elif cycle_rules.air_removal_missing(s.facts):
            out.append(
                Item(
                    "air-removal",
                    code,
                    "due",
                    "today's air-removal test (Bowie-Dick/Helix) is not recorded",
                    "status-air-removal",
                )
            )
    return out


def _rooms_and_devices(ctx: Ctx) -> list[Item]:
    out: list[Item] = []
    for (code,) in ctx.session.execute(select(Room.code).order_by(Room.code)).all():
        _, room = facts.room_facts(ctx.session, code)
        if room.open_session is not None:
            continue  # listed with the open sessions
        for msg in rules.room_cleaned(_bare(ctx, room=room)):
            out.append(Item("room", code, "due", msg, "status-room-not-cleaned"))
    retired = select(DeviceRetirement.id).where(DeviceRetirement.device_id == Device.id)
    for (code,) in ctx.session.execute(
        select(Device.code).where(~exists(retired)).order_by(Device.code)
    ).all():
        _, device = facts.device_facts(ctx.session, code)
        if device.open_session is not None:
            continue
        for msg in rules.device_reprocessed(_bare(ctx, device=device)):
            out.append(Item("device", code, "due", msg, "status-device-not-reprocessed"))
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
    limit = dt.timedelta(hours=ctx.clinic.rules.open_session_warning_hours)
    return [
        Item(
            "session",
            str(sid),
            "overdue" if ctx.now - started > limit else "due",
            f"open in room {room} since {fmt_zoned(started, ctx.clinic.tz)}: end it with "
            f"`sterilog session end {sid}`",
            "status-session-open",
        )
        for sid, room, started in facts.open_sessions(ctx.session)
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
    recalled = facts.recalled_lot_ids(s)
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
                    "status-stock",
                )
            )
        elif ctx.now >= until:
            out.append(
                Item(
                    "stock",
                    name,
                    "overdue",
                    f"{n} expired unit(s) (expiry {lot.expiry}) still on the shelf: discard them",
                    "status-stock",
                )
            )
        elif until - ctx.now <= warn:
            out.append(
                Item(
                    "stock",
                    name,
                    "due",
                    f"{n} unit(s) expire on {lot.expiry}: use or replace them",
                    "status-stock",
                )
            )
    return out


def _licences(ctx: Ctx) -> list[Item]:
    """Licences as in force now (a renewal by `staff update` counts, as it does at the gate)."""
    from sterilog.compliance.registers import in_force

    today = local_date(ctx.now, ctx.clinic.tz)
    out = []
    for st in ctx.session.execute(select(Staff).order_by(Staff.code)).scalars():
        now = in_force(ctx.session, "staff", st, ctx.now)
        expires = now.license_expires
        if not now.active or expires is None:
            continue
        if today > expires:
            out.append(
                Item(
                    "licence",
                    st.code,
                    "blocked",
                    f"licence expired on {expires}: may not treat",
                    "status-licence",
                )
            )
        elif expires - today <= dt.timedelta(days=30):
            out.append(
                Item("licence", st.code, "due", f"licence expires on {expires}", "status-licence")
            )
    return out


def _device_evidence(ctx: Ctx) -> list[Item]:
    """Issue 15: the device cycle counter's gaps and clock anomalies; imported loads with packs
    whose chemical indicator nobody has read."""
    from sterilog.compliance.facts import loads_awaiting_ci
    from sterilog.services.device_import import continuity

    out = [
        Item(
            "counter",
            a.sterilizer,
            "check",
            a.message(ctx.clinic.tz),
            "status-device-counter",
        )
        for a in continuity(ctx.session)
    ]
    pending = loads_awaiting_ci(ctx.session)
    out += [
        Item(
            "ci",
            f"load {i}",
            "due",
            f"imported load {i}: read its chemical indicator (`sterilog cycle ci {i} --ci "
            "pass|fail`); its packs are blocked until then",
            "status-pack-ci-missing",
        )
        for i in pending
    ]
    return out


def _bis_at_lab(ctx: Ctx) -> list[Item]:
    """Issue 16: BIs mailed to a lab with no result yet: their age and the receipt deadline."""
    from sterilog.services.bi_lab import at_lab

    pack = ctx.clinic.rules
    out = []
    for b in at_lab(ctx.session, ctx.now, pack.lab_receipt_days):
        late = b["age_days"] >= pack.lab_result_days
        where = "received by" if b["received"] else "at"
        deadline = b["receipt_deadline"].astimezone(ctx.clinic.tz).date()
        receipt = (
            ""
            if b["received"]
            else f"; the lab must receive it by {deadline} ({pack.lab_receipt_days} days)"
        )
        out.append(
            Item(
                "bi-lab",
                f"BI {b['bi_id']}",
                "overdue" if late or b["receipt_overdue"] else "due",
                f"{b['sterilizer']}'s spore test {where} {b['lab']}, {b['age_days']} day(s) old"
                + receipt
                + (
                    f"; no result after {pack.lab_result_days} days: it no longer covers "
                    "the week, chase the lab"
                    if late
                    else ""
                ),
                "status-bi-at-lab",
            )
        )
    return out


def _exposures(ctx: Ctx) -> list[Item]:
    """Open exposures with their notification progress (issue 13)."""
    from sterilog.services.exposures import states

    out = []
    for st in states(ctx.session, only_open=True):
        pending = len(st.pending)
        msg = (
            f"{st.exposure.summary}: {st.notified} of {len(st.clients)} client(s) notified"
            + (f", {st.unreachable} unreachable" if st.unreachable else "")
            + (
                f"; `sterilog exposure show {st.exposure.id}`"
                if pending
                else f"; a manager closes it: `sterilog exposure close {st.exposure.id}`"
            )
        )
        state = "due" if pending else "check"
        out.append(Item("exposure", str(st.exposure.id), state, msg, "status-exposure-open"))
    return out


def status(ctx: Ctx) -> list[Item]:
    return [
        *_exposures(ctx),
        *_sterilizers(ctx),
        *_bis_at_lab(ctx),
        *_device_evidence(ctx),
        *_rooms_and_devices(ctx),
        *_open_sessions(ctx),
        *_stock(ctx),
        *_licences(ctx),
    ]
