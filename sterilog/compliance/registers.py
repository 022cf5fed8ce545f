"""What a register entry (staff, device, disinfectant) is at a time: the row as first recorded,
with every dated correction (`register_changes`, issue 14) at or before that time applied in
order; deactivations/retirements and reinstatements decide whether it is active. The gate asks
for now, trace-back for a session's time. (The corrections are written by
sterilog.services.corrections.)"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Date, Float, Integer, String
from sqlalchemy.orm import Session

from sterilog.compliance.facts import _all, _one, _q
from sterilog.sqltypes import UTCDateTime

# The fields each register's entries may correct.
FIELDS: dict[str, tuple[str, ...]] = {
    "staff": ("name", "role", "license_no", "license_expires", "max_depth_mm"),
    "device": ("model", "max_depth_mm"),
    "disinfectant": ("contact_min", "reg_no", "level"),
}


@dataclass(frozen=True)
class InForce:
    """A register entry as in force at one time: its fields, and whether it is active."""

    values: dict[str, Any]
    active: bool

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


# Plain SQL (`text()`), no ORM: the gate (`compliance.facts`) and every write's permission
# check (`App.writing`) ask what is in force now on their interactive paths, which must not
# import the mapped classes or compile ORM statements (SPEC §10, issue 17).
_CHANGE_TYPES: dict[str, Any] = {
    "name": String,
    "role": String,
    "license_no": String,
    "license_expires": Date,
    "max_depth_mm": Float,
    "model": String,
    "contact_min": Float,
    "reg_no": String,
    "level": String,
    "reinstate": Boolean,
    "at": UTCDateTime,
    "id": Integer,
}
_CHANGE_SQL = (
    f"SELECT {', '.join(_CHANGE_TYPES)} FROM register_changes "
    "WHERE kind = :kind AND record_id = :record_id{until} ORDER BY at, id"
)
_CHANGES = {
    until: _q(
        _CHANGE_SQL.format(until=" AND at <= :at" if until else ""),
        ("at",) if until else (),
        **_CHANGE_TYPES,
    )
    for until in (False, True)
}
_STOP_TABLE = {
    "staff": ("staff_deactivations", "staff_id"),
    "device": ("device_retirements", "device_id"),
}
_STOPS = {
    (kind, until): _q(
        f"SELECT at, id FROM {table} WHERE {column} = :record_id"
        + (" AND at <= :at" if until else ""),
        ("at",) if until else (),
        at=UTCDateTime,
        id=Integer,
    )
    for kind, (table, column) in _STOP_TABLE.items()
    for until in (False, True)
}
_ROW = {
    kind: _q(
        f"SELECT id, {', '.join(FIELDS[kind])} FROM {table} WHERE id = :id",
        **{f: _CHANGE_TYPES[f] for f in FIELDS[kind]},
    )
    for kind, table in (("staff", "staff"), ("device", "devices"))
}


def _changes(session: Session, kind: str, record_id: int, at: dt.datetime | None) -> list[Any]:
    if at is None:
        return _all(session, _CHANGES[False], kind=kind, record_id=record_id)
    return _all(session, _CHANGES[True], kind=kind, record_id=record_id, at=at)


def _stops(session: Session, kind: str, record_id: int, at: dt.datetime | None) -> list[Any]:
    if at is None:
        return _all(session, _STOPS[kind, False], record_id=record_id)
    return _all(session, _STOPS[kind, True], record_id=record_id, at=at)


def in_force(session: Session, kind: str, row: Any, at: dt.datetime | None = None) -> InForce:
    """The entry `row` of register `kind` as in force at `at` (None: everything recorded)."""
    return overlay(session, kind, row.id, {f: getattr(row, f) for f in FIELDS[kind]}, at)


def overlay(
    session: Session,
    kind: str,
    record_id: int,
    recorded: dict[str, Any],
    at: dt.datetime | None = None,
) -> InForce:
    """`recorded` (the register row's own values) with the changes up to `at` applied."""
    values, last_reinstate = _fold(kind, recorded, _changes(session, kind, record_id, at))
    active = True
    if kind in ("staff", "device"):
        stops = _stops(session, kind, record_id, at)
        if stops:
            active = not _still_stopped(max(s[0] for s in stops), last_reinstate)
    return InForce(values, active)


def _fold(
    kind: str, recorded: dict[str, Any], changes: Iterable[Any]
) -> tuple[dict[str, Any], dt.datetime | None]:
    """THE rule for the fields: `changes` (already cut at the time asked for) applied to
    `recorded` in their (at, id) order, each replacing the fields it gives; and when the last
    reinstatement among them was."""
    values = dict(recorded)
    last_reinstate: dt.datetime | None = None
    for change in changes:
        for f in FIELDS[kind]:
            value = getattr(change, f)
            if value is not None:
                values[f] = value
        if change.reinstate:
            last_reinstate = change.at
    return values, last_reinstate


_STAFF_ROWS = _q(
    f"SELECT id, {', '.join(FIELDS['staff'])} FROM staff",
    id=Integer,
    **{f: _CHANGE_TYPES[f] for f in FIELDS["staff"]},
)
_STAFF_CHANGES = _q(
    f"SELECT record_id, {', '.join(_CHANGE_TYPES)} FROM register_changes "
    "WHERE kind = 'staff' ORDER BY at, id",
    record_id=Integer,
    **_CHANGE_TYPES,
)


class StaffNames:
    """Staff id, time -> the name in force then (`staff update --name` is a dated change):
    `overlay`'s rule (`_fold`) for every name a report prints, from two queries in all. The
    name of an act is the one in force when it was done, as trace-back shows a session's
    practitioner; `at` None: the name in force now."""

    def __init__(self, session: Session) -> None:
        self.recorded = {
            int(r.id): {f: getattr(r, f) for f in FIELDS["staff"]}
            for r in _all(session, _STAFF_ROWS)
        }
        self.changes: dict[int, list[Any]] = {}
        for change in _all(session, _STAFF_CHANGES):
            self.changes.setdefault(int(change.record_id), []).append(change)

    def __call__(self, staff_id: int | None, at: dt.datetime | None = None) -> str | None:
        """None: no such staff member."""
        if staff_id is None or staff_id not in self.recorded:
            return None
        recorded = self.recorded[staff_id]
        changes = self.changes.get(staff_id)
        if not changes:
            return str(recorded["name"])
        if at is not None:
            changes = [c for c in changes if c.at <= at]
        return str(_fold("staff", recorded, changes)[0]["name"])


def _still_stopped(last_stop: dt.datetime, last_reinstate: dt.datetime | None) -> bool:
    """The rule: a deactivation/retirement stands unless a reinstatement is at or after it."""
    return last_reinstate is None or last_reinstate < last_stop


_REINSTATED_SINCE = _q(
    "SELECT id FROM register_changes WHERE kind = :kind AND record_id = :record_id "
    "AND reinstate AND at >= :at LIMIT 1",
    ("at",),
)


def stop_would_not_stand(session: Session, kind: str, record_id: int, at: dt.datetime) -> bool:
    """A deactivation/retirement at `at` would not stand by `_still_stopped`'s rule: a
    reinstatement is recorded at the same instant (the clock counts whole seconds) or later.
    The write refuses it rather than record a stop that changes nothing."""
    return _one(session, _REINSTATED_SINCE, kind=kind, record_id=record_id, at=at) is not None


_STOPS_OF = {
    kind: _q(
        f"SELECT {column}, at FROM {table} WHERE {column} IN :ids",
        expanding=("ids",),
        at=UTCDateTime,
    )
    for kind, (table, column) in _STOP_TABLE.items()
}
_REINSTATES_OF = _q(
    "SELECT record_id, at FROM register_changes "
    "WHERE kind = :kind AND reinstate AND record_id IN :ids",
    expanding=("ids",),
    at=UTCDateTime,
)


def stopped_at(session: Session, kind: str, ids: list[int]) -> dict[int, dt.datetime]:
    """Entry id -> when it was deactivated/retired, for the entries of `ids` that stand stopped
    now (`overlay`'s rule, for many entries in two queries: the export)."""
    last_stop: dict[int, dt.datetime] = {}
    for rid, at in _all(session, _STOPS_OF[kind], ids=ids):
        last_stop[rid] = max(at, last_stop.get(rid, at))
    last_reinstate: dict[int, dt.datetime] = {}
    for rid, at in _all(session, _REINSTATES_OF, kind=kind, ids=ids):
        last_reinstate[rid] = max(at, last_reinstate.get(rid, at))
    return {
        rid: at for rid, at in last_stop.items() if _still_stopped(at, last_reinstate.get(rid))
    }


def staff_active(session: Session, staff_id: int, at: dt.datetime | None = None) -> bool:
    return _active(session, "staff", staff_id, at)


def device_active(session: Session, device_id: int, at: dt.datetime | None = None) -> bool:
    return _active(session, "device", device_id, at)


def _active(session: Session, kind: str, record_id: int, at: dt.datetime | None) -> bool:
    row = _one(session, _ROW[kind], id=record_id)
    return row is not None and in_force(session, kind, row, at).active
