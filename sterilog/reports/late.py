"""Late entries in a period, for every report (sterilog.lateness has the one definition).

Kept apart from the gap logic: this only looks at when records were entered, by whom, and
which late cleans are the only clean a session had before it (the gap they close).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.lateness import is_late
from sterilog.models import (
    AirRemovalTest,
    Base,
    BiRead,
    CartridgeReceipt,
    Cycle,
    DeviceClean,
    Discard,
    Incident,
    Recall,
    Refusal,
    RoomClean,
    Session,
    SessionEnd,
    SterilizerService,
)

# (model, event-time column, area on the monthly summary, void kind)
EVENT_TABLES: tuple[tuple[type[Base], str, str, str | None], ...] = (
    (Cycle, "at", "sterilization", "cycle"),
    (SterilizerService, "at", "sterilization", "service"),
    (BiRead, "at", "spore testing", "bi-read"),
    (AirRemovalTest, "at", "air-removal tests", "air-removal"),
    (RoomClean, "at", "cleaning", "room-clean"),
    (DeviceClean, "at", "cleaning", "device-clean"),
    (Session, "started_at", "sessions", None),
    (SessionEnd, "at", "sessions", None),
    (Refusal, "at", "sessions", None),
    (CartridgeReceipt, "at", "cartridges", None),
    (Discard, "at", "cartridges", "discard"),
    (Recall, "at", "cartridges", "recall"),
    (Incident, "at", "incidents", "incident"),
)


@dataclass(frozen=True)
class LateEntry:
    table: str
    record_id: int
    area: str
    at: dt.datetime
    recorded_at: dt.datetime
    by: str


def late_entries(
    db: DbSession,
    start: dt.datetime,
    end: dt.datetime,
    minutes: int,
    who: Callable[[int | None, dt.datetime | None], str],
    *,
    entered: bool = False,
) -> dict[tuple[str, int], LateEntry]:
    """Every late entry whose event time is in [start, end), keyed by (table, id); with
    `entered`, every late entry *recorded* in [start, end) (the audit report's rows)."""
    out: dict[tuple[str, int], LateEntry] = {}
    for model, column, area, _ in EVENT_TABLES:
        when = getattr(model, column)
        by = getattr(model, "operator_id", None)
        cols: list[Any] = [model.id, when, model.recorded_at]  # type: ignore[attr-defined]
        cols.append(by if by is not None else model.id)  # type: ignore[attr-defined]
        span = model.recorded_at if entered else when  # type: ignore[attr-defined]
        for rid, at, recorded, op in db.execute(
            select(*cols).where(span >= start, span < end)
        ).all():
            if is_late(at, recorded, minutes):
                table = model.__tablename__
                out[(table, int(rid))] = LateEntry(
                    table, int(rid), area, at, recorded, who(op if by is not None else None, at)
                )
    return out


def per_area(late: dict[tuple[str, int], LateEntry]) -> Counter[str]:
    return Counter(e.area for e in late.values())


def gap_closers(
    db: DbSession, late: dict[tuple[str, int], LateEntry], start: dt.datetime, end: dt.datetime
) -> list[tuple[LateEntry, int]]:
    """Late cleans that close what would otherwise be a gap, from the one home
    (compliance.history.late_cleans_closing, the gate's own clean rules): the session after
    them is cleaned now, but every clean it had since its room's (device's) previous session
    ended was entered after it started. Sessions started in the period or the day after it.
    Returns (late clean, session id)."""
    from sterilog.compliance import history
    from sterilog.compliance.rules import Moment

    tables = {t for t, _ in late}
    if not tables & {"room_cleans", "device_cleans"}:
        return []
    rows = db.execute(
        select(
            Session.id, Session.started_at, Session.recorded_at, Session.room_id, Session.device_id
        )
        .where(Session.started_at >= start, Session.started_at < end + dt.timedelta(days=1))
        .order_by(Session.started_at, Session.id)
    ).all()
    out: list[tuple[LateEntry, int]] = []
    for what, table in (("room", "room_cleans"), ("device", "device_cleans")):
        if table not in tables:
            continue
        starts = [
            history.SessionStart(int(sid), int(room if what == "room" else device), Moment(at, rec))
            for sid, at, rec, room, device in rows
        ]
        for sid, clean_id in history.late_cleans_closing(db, what, starts).items():
            entry = late.get((table, clean_id))
            if entry is not None:
                out.append((entry, sid))
    return out
