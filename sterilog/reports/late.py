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

from sterilog.compliance.voids import voided_map
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
    who: Callable[[int | None], str],
) -> dict[tuple[str, int], LateEntry]:
    """Every late entry whose event time is in [start, end), keyed by (table, id)."""
    out: dict[tuple[str, int], LateEntry] = {}
    for model, column, area, _ in EVENT_TABLES:
        when = getattr(model, column)
        by = getattr(model, "operator_id", None)
        cols: list[Any] = [model.id, when, model.recorded_at]  # type: ignore[attr-defined]
        cols.append(by if by is not None else model.id)  # type: ignore[attr-defined]
        for rid, at, recorded, op in db.execute(
            select(*cols).where(when >= start, when < end)
        ).all():
            if is_late(at, recorded, minutes):
                table = model.__tablename__
                out[(table, int(rid))] = LateEntry(
                    table, int(rid), area, at, recorded, who(op if by is not None else None)
                )
    return out


def per_area(late: dict[tuple[str, int], LateEntry]) -> Counter[str]:
    return Counter(e.area for e in late.values())


def gap_closers(
    db: DbSession, late: dict[tuple[str, int], LateEntry], start: dt.datetime, end: dt.datetime
) -> list[tuple[LateEntry, int]]:
    """Late cleans that close what would otherwise be a gap: the session after them started
    before they were entered, and every clean it had since the previous session of its room
    (device) was entered after it started. Returns (late clean, session id)."""
    out: list[tuple[LateEntry, int]] = []
    for model, target, session_col, kind in (
        (RoomClean, RoomClean.room_id, Session.room_id, "room-clean"),
        (DeviceClean, DeviceClean.device_id, Session.device_id, "device-clean"),
    ):
        table = model.__tablename__
        wanted = [e for (t, _), e in late.items() if t == table]
        if not wanted:
            continue
        voided = set(voided_map(db, kind))
        cleans: dict[int, list[tuple[dt.datetime, dt.datetime, int]]] = {}
        for rid, at, recorded, key in db.execute(
            select(model.id, model.at, model.recorded_at, target).where(
                model.at < end + dt.timedelta(days=1)
            )
        ).all():
            if int(rid) not in voided:
                cleans.setdefault(int(key), []).append((at, recorded, int(rid)))
        sessions: dict[int, list[tuple[dt.datetime, int]]] = {}
        for sid, started, key in db.execute(
            select(Session.id, Session.started_at, session_col).where(
                Session.started_at < end + dt.timedelta(days=1)
            )
        ).all():
            sessions.setdefault(int(key), []).append((started, int(sid)))
        for entry in wanted:
            key_of = db.execute(select(target).where(model.id == entry.record_id)).scalar_one()
            runs = sorted(sessions.get(int(key_of), []))
            after = [(s, i) for s, i in runs if s > entry.at]
            if not after:
                continue
            started, sid = after[0]
            before = [s for s, _ in runs if s < started]
            previous = before[-1] if before else dt.datetime.min.replace(tzinfo=dt.UTC)
            covering = [c for c in cleans.get(int(key_of), []) if previous < c[0] < started]
            if covering and all(recorded > started for _, recorded, _ in covering):
                out.append((entry, sid))
    return out
