"""Section 4, Cleaning log: room and device cleans merged by time. Data (`rows`), then layout
(`render`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.compliance import facts
from sterilog.models import (
    Device,
    DeviceClean,
    Disinfectant,
    Room,
    RoomClean,
)
from sterilog.reports.common import (
    Period,
    Who,
    fmt_num,
    within,
)
from sterilog.reports.monthly.layout import (
    SECTIONS,
    Fit,
    Page,
    T,
    tbl,
)
from sterilog.reports.monthly.model import (
    CleanRow,
    MonthlyData,
)


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Cleaning."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    lt = c.lt
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading(SECTIONS[3])
    story += tbl(
        ["Time", "Room / device", "Kind", "Product", "Contact (min)", "By", "Note"],
        [
            [
                lt(c.kind_of_record.replace("-", "_") + "s", c.record_id, c.at),
                c.target,
                c.kind,
                c.product,
                fmt_num(c.contact_min),
                c.operator,
                c.note or "",
            ]
            for c in d.cleans
        ],
        [T, 30, 24, 38, Fit("Contact (min)  "), 36, 86],
        width,
        strike_rows=[i for i, c in enumerate(d.cleans) if c.voided],
        align=["LEFT", "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT", "LEFT"],
    )
    return story


def rows(db: DbSession, period: Period, who: Who) -> list[CleanRow]:
    """Room and device cleans of the month, merged by time."""
    cleans = _room_cleans(db, period, who) + _device_cleans(db, period, who)
    cleans.sort(key=lambda r: (r.at, r.kind_of_record, r.record_id))
    return cleans


def _room_cleans(db: DbSession, period: Period, who: Who) -> list[CleanRow]:
    voided_rc = facts.voided_ids(db, "room-clean")
    return [
        CleanRow(
            "room-clean",
            int(i),
            at,
            f"Room {code}",
            kind,
            prod,
            cmin,
            who(op),
            note,
            int(i) in voided_rc,
        )
        for i, at, code, kind, prod, cmin, op, note in db.execute(
            select(
                RoomClean.id,
                RoomClean.at,
                Room.code,
                RoomClean.kind,
                Disinfectant.code,
                RoomClean.contact_min,
                RoomClean.operator_id,
                RoomClean.note,
            )
            .join(Room, Room.id == RoomClean.room_id)
            .join(Disinfectant, Disinfectant.id == RoomClean.disinfectant_id)
            .where(within(RoomClean.at, period))
        ).all()
    ]


def _device_cleans(db: DbSession, period: Period, who: Who) -> list[CleanRow]:
    voided_dc = facts.voided_ids(db, "device-clean")
    return [
        CleanRow(
            "device-clean",
            int(i),
            at,
            f"Device {code}",
            "device",
            prod,
            cmin,
            who(op),
            f"barrier lot {barrier}" if barrier else None,
            int(i) in voided_dc,
        )
        for i, at, code, prod, cmin, op, barrier in db.execute(
            select(
                DeviceClean.id,
                DeviceClean.at,
                Device.code,
                Disinfectant.code,
                DeviceClean.contact_min,
                DeviceClean.operator_id,
                DeviceClean.barrier_lot,
            )
            .join(Device, Device.id == DeviceClean.device_id)
            .join(Disinfectant, Disinfectant.id == DeviceClean.disinfectant_id)
            .where(within(DeviceClean.at, period))
        ).all()
    ]
