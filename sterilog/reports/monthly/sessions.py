"""Section 5, Sessions and refusals. Data (`rows`, `refusals`), then layout (`render`)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.models import (
    Device,
    Pack,
    Refusal,
    Room,
    Session,
    SessionEnd,
    SessionPack,
    Staff,
)
from sterilog.reports.common import (
    DASH,
    Period,
    staff_lookup,
    within,
)
from sterilog.reports.monthly.layout import (
    GTIN_SAMPLE,
    SECTIONS,
    D,
    Fit,
    Page,
    T,
    tbl,
)
from sterilog.reports.monthly.model import (
    MonthlyData,
    RefusalRow,
    SessionRow,
)


def _packs_of(db: DbSession, period: Period) -> dict[int, list[str]]:
    session_packs: dict[int, list[str]] = defaultdict(list)
    for sid, code in db.execute(
        select(SessionPack.session_id, Pack.code)
        .join(Pack, Pack.id == SessionPack.pack_id)
        .join(Session, Session.id == SessionPack.session_id)
        .where(within(Session.started_at, period))
        .order_by(SessionPack.id)
    ).all():
        session_packs[int(sid)].append(str(code))
    return session_packs


def rows(db: DbSession, period: Period) -> list[SessionRow]:
    """Every session started in the month: one joined query, packs aggregated in one more."""
    session_packs = _packs_of(db, period)
    who = staff_lookup(db)
    return [
        SessionRow(
            session_id=int(sid),
            at=started,
            ended_at=ended,
            room=room,
            practitioner=who(pid, started),
            device=device,
            gtin=gtin,
            lot=lot,
            serial=serial,
            expiry=expiry,
            packs=tuple(session_packs.get(int(sid), ())),
            client=client,
        )
        for sid, started, ended, room, pid, device, gtin, lot, serial, expiry, client in (
            db.execute(
                select(
                    Session.id,
                    Session.started_at,
                    SessionEnd.at,
                    Room.code,
                    Session.practitioner_id,
                    Device.code,
                    Session.gtin,
                    Session.lot,
                    Session.serial,
                    Session.expiry,
                    Session.client,
                )
                .join(Room, Room.id == Session.room_id)
                .join(Device, Device.id == Session.device_id)
                .outerjoin(SessionEnd, SessionEnd.session_id == Session.id)
                .where(within(Session.started_at, period))
                .order_by(Session.started_at, Session.id)
            ).all()
        )
    ]


def refusals(db: DbSession, period: Period) -> list[RefusalRow]:
    """Every refusal at the gate in the month, with its reason codes."""
    ids = {str(code): int(i) for i, code in db.execute(select(Staff.id, Staff.code)).all()}
    who = staff_lookup(db)
    return [
        RefusalRow(
            refusal_id=r.id,
            at=r.at,
            room=r.room,
            device=r.device,
            practitioner=(
                who(ids[r.practitioner], r.at) if r.practitioner in ids else r.practitioner
            ),
            client=r.client,
            cartridge=(f"{r.gtin} lot {r.lot}" if r.gtin else r.cartridge_scan)
            + (f" serial {r.serial}" if r.serial else ""),
            codes=tuple(str(x.get("code")) for x in json.loads(r.reasons)),
        )
        for r in db.execute(
            select(Refusal).where(within(Refusal.at, period)).order_by(Refusal.at, Refusal.id)
        ).scalars()
    ]


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Sessions and refusals."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    lt = c.lt
    marks = c.marks
    tz_name = c.tz_name
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading(SECTIONS[4])
    story += heading(f"Sessions ({len(d.sessions)})", 2)
    story += tbl(
        [
            "ID",
            "Started",
            "Ended",
            "Room",
            "Practitioner",
            "Device",
            "Cartridge GTIN",
            "Lot",
            "Serial",
            "Expiry",
            "Packs",
            "Client",
        ],
        [
            [
                str(s.session_id),
                lt("sessions", s.session_id, s.at),
                _ended(s, tz_name) if s.ended_at else marks.alert("OPEN"),
                s.room,
                s.practitioner,
                s.device,
                s.gtin,
                s.lot,
                s.serial or DASH,
                s.expiry.isoformat(),
                ", ".join(s.packs) or DASH,
                s.client,
            ]
            for s in d.sessions
        ],
        [Fit("000000"), T, Fit("Ended  "), 10, 34, 18, Fit(GTIN_SAMPLE), 24, 18, D, 34, 30],
        width,
    )
    story += heading(f"Refusals at the gate ({len(d.refusals)})", 2)
    story += tbl(
        ["Time", "Room", "Device", "Practitioner", "Client", "Cartridge", "Reason codes"],
        [
            [
                lt("refusals", r.refusal_id, r.at),
                r.room,
                r.device,
                r.practitioner,
                r.client,
                r.cartridge,
                ", ".join(r.codes),
            ]
            for r in d.refusals
        ],
        [T, 16, 20, 30, 30, 60, 91],
        width,
    )
    return story


def _ended(s: SessionRow, tz_name: str) -> str:
    """The end time; the date only when the session ended on another day than it started."""
    from sterilog.reports.pdf import local_time

    if s.ended_at is None:
        return "OPEN"
    start, end = local_time(s.at, tz_name), local_time(s.ended_at, tz_name)
    return end[11:] if start[:10] == end[:10] else end
