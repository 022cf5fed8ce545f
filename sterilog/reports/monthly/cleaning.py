"""Section 4, Cleaning log: room and device cleans, like cleans of a day compacted into runs.
Data (`rows`, `runs`), then layout (`render`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

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
    tbl,
)
from sterilog.reports.monthly.model import (
    CleanRow,
    MonthlyData,
)


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
            who(op, at),
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
            who(op, at),
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


def runs(
    cleans: Sequence[CleanRow], tz: ZoneInfo, alone: Callable[[CleanRow], bool]
) -> list[tuple[CleanRow, ...]]:
    """The month's cleans compacted, every clean kept: per clinic day and room or device, the
    cleans with the same kind, product, contact time, person and note form one run (listed in
    the order of its first clean); a clean for which `alone` is true is a run of its own."""
    keyed: dict[tuple[Any, ...], list[CleanRow]] = {}
    out: list[list[CleanRow]] = []
    for row in cleans:
        if alone(row):
            out.append([row])
            continue
        key = (
            row.at.astimezone(tz).date(),
            row.target,
            row.kind,
            row.product,
            row.contact_min,
            row.operator,
            row.note,
        )
        run = keyed.get(key)
        if run is None:
            run = keyed[key] = []
            out.append(run)
        run.append(row)
    return [tuple(run) for run in out]


def side_by_side(
    runs: Sequence[tuple[CleanRow, ...]], alone: Callable[[CleanRow], bool]
) -> list[tuple[tuple[CleanRow, ...], ...]]:
    """Adjacent runs of rooms (or of devices) cleaned alike at the very same times, as one
    group; a run of a clean for which `alone` is true stays alone (it is marked)."""
    out: list[list[tuple[CleanRow, ...]]] = []
    last: tuple[Any, ...] | None = None
    for run in runs:
        first = run[0]
        key: tuple[Any, ...] | None = (
            first.target.split(" ", 1)[0],
            tuple(r.at for r in run),
            first.kind,
            first.product,
            first.contact_min,
            first.operator,
            first.note,
        )
        if alone(first):
            key = None
        if key is not None and key == last:
            out[-1].append(run)
        else:
            out.append([run])
        last = key
    return [tuple(group) for group in out]


def render(d: MonthlyData, c: Page) -> list[Any]:
    """Section Cleaning: one row per run of like cleans (`runs`), each clean's time in it."""
    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, para

    def alone(row: CleanRow) -> bool:
        return row.voided or _late(d, row)

    groups = side_by_side(runs(d.cleans, ZoneInfo(c.tz_name), alone), alone)
    story: list[Any] = []
    story += heading(SECTIONS[3])
    story.append(
        para(
            "Every room and device clean of the month. Cleans of the same room or device on the "
            "same day with the same kind, product, contact time, person and note share one row: "
            "its times in order and how many; rooms or devices cleaned alike at the same times "
            "share it too. A voided or late clean has a row of its own.",
            pdf.STYLES.small,
        )
    )
    story += tbl(
        ["Time", "Room / device", "Kind", "Product", "Contact (min)", "By", "Note", "Cleans"],
        [_run_cells(g, c) for g in groups],
        [70, 22, 20, 26, Fit("Contact (min)  "), 26, 34, Fit("Cleans")],
        pdf.LANDSCAPE_CONTENT_WIDTH,
        strike_rows=[i for i, g in enumerate(groups) if g[0][0].voided],
        align=["LEFT", "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT", "LEFT", "RIGHT"],
    )
    return story


def _table(row: CleanRow) -> str:
    """The clean's table name (room_cleans, device_cleans), as late entries key it."""
    return row.kind_of_record.replace("-", "_") + "s"


def _late(d: MonthlyData, row: CleanRow) -> bool:
    return (_table(row), row.record_id) in d.late


def _run_cells(group: Sequence[Sequence[CleanRow]], c: Page) -> list[Any]:
    run = group[0]
    first = run[0]
    if len(run) == 1:
        when = c.lt(_table(first), first.record_id, first.at)
    else:  # one clinic day: the date once, then every clean's time of day
        when = ", ".join([c.t(first.at), *(c.t(r.at)[11:] for r in run[1:])])
    word = first.target.split(" ", 1)[0] + " "  # "Room ", "Device "
    return [
        when,
        ", ".join([first.target, *(r[0].target.removeprefix(word) for r in group[1:])]),
        first.kind,
        first.product,
        fmt_num(first.contact_min),
        first.operator,
        first.note or "",
        str(sum(len(r) for r in group)),
    ]
