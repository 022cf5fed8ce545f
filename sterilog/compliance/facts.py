"""The facts the gate needs, queried once, void-aware by construction (the other facts, as of
a record's own time, are in `compliance/history.py`, which builds on this module).

Plain SQL (`text()`), no ORM and no `sterilog.models` import: the gate imports this module on
its interactive path, where compiling ORM statements and configuring the mappers would cost more
than the queries themselves (SPEC §10). Every query is bounded by an index and a LIMIT, or by the
rows of one lot, one pack, one sterilizer, one owner's stretch of sessions.

Every function takes `db`: an SQLAlchemy ORM session or connection (anything with `execute`).
A voided record (SPEC §7) never counts: every query over a voidable table filters it with
`not_voided`, the one place that knows how a void is stored.

Time: the functions that take `at` answer "as of `at`", reading the database as it is now
(voids applied now). The gate passes its own `now`; trace and the monthly report pass the
record's own time, so all of them apply the same rule to the same facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Date, Float, Integer, bindparam, text

from sterilog.clock import end_of_day
from sterilog.compliance import rules as r
from sterilog.compliance.rules import load_status
from sterilog.compliance.vocab import (
    LOAD_CI_PENDING,
    LOAD_PASSED,
    NEGATIVE,
    NO_CI,
    POSITIVE,
    READY_KINDS,
    VOIDABLE,
    sql_in,
)
from sterilog.errors import UnknownRecord
from sterilog.sqltypes import UTCDateTime

# --- plumbing ----------------------------------------------------------------------------------


def not_voided(kind: str, alias: str) -> str:
    """SQL condition: row `alias` (a record of voidable `kind`) has not been voided."""
    assert kind in VOIDABLE, kind
    return (
        f"NOT EXISTS (SELECT 1 FROM voids v WHERE v.kind = '{kind}' AND v.record_id = {alias}.id)"
    )


class _Sql:
    """A typed text() statement, built on first use: the gate imports this module on every
    `check` and runs only a few of these, so none is compiled at import."""

    __slots__ = ("_args", "_stmt")

    def __init__(self, sql: str, times: Sequence[str], expanding: Sequence[str], types: Any):
        self._args = (sql, times, expanding, types)
        self._stmt: Any = None

    def get(self) -> Any:
        if self._stmt is None:
            sql, times, expanding, types = self._args
            stmt = text(sql)
            binds = [bindparam(n, type_=UTCDateTime) for n in times]
            binds += [bindparam(n, expanding=True) for n in expanding]
            if binds:
                stmt = stmt.bindparams(*binds)
            self._stmt = stmt.columns(**types) if types else stmt
        return self._stmt


def _q(sql: str, times: Sequence[str] = (), expanding: Sequence[str] = (), **types: Any) -> _Sql:
    """A typed statement; `times` are the parameters bound as UTC datetimes."""
    return _Sql(sql, times, expanding, types)


def _one(db: Any, stmt: _Sql, **params: Any) -> Any:
    return db.execute(stmt.get(), params).first()


def _all(db: Any, stmt: _Sql, **params: Any) -> list[Any]:
    return list(db.execute(stmt.get(), params).all())


_IS_VOIDED = _q("SELECT id FROM voids WHERE kind = :kind AND record_id = :id LIMIT 1")
_VOIDED_IDS = _q("SELECT record_id FROM voids WHERE kind = :kind", record_id=Integer)


def is_voided(db: Any, kind: str, record_id: int) -> bool:
    assert kind in VOIDABLE, kind
    return _one(db, _IS_VOIDED, kind=kind, id=record_id) is not None


def voided_ids(db: Any, kind: str) -> set[int]:
    """Every voided record id of one kind (for listings that print voided rows struck)."""
    assert kind in VOIDABLE, kind
    return {int(row[0]) for row in _all(db, _VOIDED_IDS, kind=kind)}


def _moment(at: Any, recorded_at: Any) -> r.Moment | None:
    return None if at is None else r.Moment(at=at, recorded_at=recorded_at)


# --- rooms and devices -------------------------------------------------------------------------

_OWNER = {"room": "room_id", "device": "device_id"}
_CLEAN_TABLE = {"room": ("room_cleans", "room-clean"), "device": ("device_cleans", "device-clean")}


def _clean_filter(what: str) -> str:
    kind = _CLEAN_TABLE[what][1]
    extra = f" AND c.kind IN ({sql_in(READY_KINDS)})" if what == "room" else ""
    return f"c.{_OWNER[what]} = :key{extra} AND {not_voided(kind, 'c')}"


_LAST_SESSION = {
    what: _q(
        "SELECT s.id, e.at, e.recorded_at, s.started_at FROM sessions s "
        "LEFT JOIN session_ends e ON e.session_id = s.id "
        f"WHERE s.{col} = :key ORDER BY s.started_at DESC, s.id DESC LIMIT 1",
        id=Integer,
        at=UTCDateTime,
        recorded_at=UTCDateTime,
        started_at=UTCDateTime,
    )
    for what, col in _OWNER.items()
}
_LAST_CLEAN = {
    what: _q(
        f"SELECT c.id, c.at, c.recorded_at FROM {_CLEAN_TABLE[what][0]} c WHERE "
        f"{_clean_filter(what)} ORDER BY c.at DESC, c.recorded_at DESC, c.id DESC LIMIT 1",
        id=Integer,
        at=UTCDateTime,
        recorded_at=UTCDateTime,
    )
    for what in _OWNER
}


def last_session(db: Any, what: str, key: int) -> tuple[int | None, r.Moment | None, bool]:
    """(open session id, end of the last session, ever used) for a room or a device, now.

    Sessions never overlap in one room or on one device (the gate blocks that), so the last one
    started is the last one to end.
    """
    row = _one(db, _LAST_SESSION[what], key=key)
    if row is None:
        return None, None, False
    if row[1] is None:
        return int(row[0]), None, True
    return None, r.Moment(row[1], row[2]), True


def last_clean(db: Any, what: str, key: int) -> r.Moment | None:
    """The latest counting clean of a room (between-clients or end-of-day) or device, now."""
    row = _one(db, _LAST_CLEAN[what], key=key)
    return None if row is None else r.Moment(row[1], row[2])


_ROOM = _q("SELECT id FROM rooms WHERE code = :code")
_DEVICE = _q(
    "SELECT id, max_depth_mm FROM devices WHERE code = :code", id=Integer, max_depth_mm=Float
)


def room_facts(db: Any, code: str) -> tuple[int, r.RoomFacts]:
    room = _one(db, _ROOM, code=code)
    if room is None:
        raise UnknownRecord("room", code)
    room_id = int(room[0])
    open_id, last_end, used = last_session(db, "room", room_id)
    return room_id, r.RoomFacts(
        code=code,
        open_session=open_id,
        last_end=last_end,
        ever_used=used,
        last_clean=last_clean(db, "room", room_id),
    )


def device_facts(db: Any, code: str) -> tuple[int, r.DeviceFacts]:
    device = _one(db, _DEVICE, code=code)
    if device is None:
        raise UnknownRecord("device", code)
    device_id = int(device[0])
    open_id, last_end, used = last_session(db, "device", device_id)
    from sterilog.compliance.registers import overlay

    # In force now: corrections (device update/reinstate) are dated records (issue 14).
    now = overlay(db, "device", device_id, {"model": None, "max_depth_mm": device[1]})
    return device_id, r.DeviceFacts(
        code=code,
        retired=not now.active,
        max_depth_mm=now.max_depth_mm,
        open_session=open_id,
        last_end=last_end,
        ever_used=used,
        last_clean=last_clean(db, "device", device_id),
    )


_ROOMS = _q("SELECT id, code FROM rooms ORDER BY code")


def open_sessions(db: Any) -> list[tuple[int, str, dt.datetime]]:
    """Open sessions, one indexed lookup per room (a room holds at most one open session)."""
    out: list[tuple[int, str, dt.datetime]] = []
    for room_id, room_code in _all(db, _ROOMS):
        row = _one(db, _LAST_SESSION["room"], key=room_id)
        if row is not None and row[1] is None:  # an ended session always has its end time
            out.append((int(row[0]), str(room_code), row[3]))
    return out


# --- cartridges --------------------------------------------------------------------------------

_LOT = _q(
    "SELECT id, expiry FROM cartridge_lots WHERE gtin = :gtin AND lot = :lot",
    id=Integer,
    expiry=Date,
)
_RECALL = _q(
    "SELECT r.id, r.at, r.reason FROM recalls r WHERE r.lot_id = :lot AND "
    f"{not_voided('recall', 'r')} ORDER BY r.at, r.id LIMIT 1",
    id=Integer,
    at=UTCDateTime,
)
_RECALLED_LOTS = _q(f"SELECT DISTINCT r.lot_id FROM recalls r WHERE {not_voided('recall', 'r')}")
_UNIT = _q("SELECT id FROM cartridge_units WHERE lot_id = :lot AND serial = :serial")
_USED = _q("SELECT id FROM sessions WHERE unit_id = :unit")
_DISCARDED = _q(
    f"SELECT d.id FROM discards d WHERE d.unit_id = :unit AND {not_voided('discard', 'd')}"
)
_ANY_UNSERIALIZED = _q(
    "SELECT id FROM cartridge_units WHERE lot_id = :lot AND serial IS NULL ORDER BY id LIMIT 1"
)
_FREE_UNSERIALIZED = _q(
    "SELECT u.id FROM cartridge_units u WHERE u.lot_id = :lot AND u.serial IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.unit_id = u.id) "
    "AND NOT EXISTS (SELECT 1 FROM discards d WHERE d.unit_id = u.id AND "
    f"{not_voided('discard', 'd')}) ORDER BY u.id LIMIT 1"
)
_COUNT_UNSERIALIZED = _q(
    "SELECT count(*) FROM cartridge_units WHERE lot_id = :lot AND serial IS NULL"
)


class RecallFact(NamedTuple):
    id: int
    at: dt.datetime
    reason: str


def lot_recall(db: Any, lot_id: int) -> RecallFact | None:
    """The lot's first recall that counts, or None: the lot is not recalled."""
    row = _one(db, _RECALL, lot=lot_id)
    return None if row is None else RecallFact(int(row[0]), row[1], str(row[2]))


_RECALLED_OF_GTIN = _q(
    "SELECT DISTINCT l.lot FROM recalls r JOIN cartridge_lots l ON l.id = r.lot_id "
    f"WHERE l.gtin = :gtin AND {not_voided('recall', 'r')}"
)
_LOTS_OF_GTIN = _q("SELECT lot FROM cartridge_lots WHERE gtin = :gtin")


def is_smuggled(lot: str, recalled: str) -> bool:
    """`lot` is `recalled` followed by what parses as an AI (21) serial: what a scanner that
    dropped the GS separator made of a unit of the recalled lot (lot A1B3 + serial 0002 read
    as lot A1B3210002), before such scans were refused (issue 14)."""
    from sterilog.scan import smuggled_ai

    if not lot.startswith(recalled + "21") or len(lot) <= len(recalled) + 2:
        return False
    found = smuggled_ai(lot)
    return found is not None and found[1] == "21" and found[0] == len(recalled)


def recalled_by_smuggling(db: Any, gtin: str, lot: str) -> str | None:
    """The recalled lot this lot hides (see `is_smuggled`), or None."""
    for (recalled,) in _all(db, _RECALLED_OF_GTIN, gtin=gtin):
        if is_smuggled(lot, str(recalled)):
            return str(recalled)
    return None


def smuggled_lots(db: Any, gtin: str, lot: str) -> list[str]:
    """The lots on file of this GTIN that are `lot` followed by an AI (21) serial."""
    return sorted(
        str(other)
        for (other,) in _all(db, _LOTS_OF_GTIN, gtin=gtin)
        if is_smuggled(str(other), lot)
    )


def recalled_lot_ids(db: Any) -> set[int]:
    return {int(row[0]) for row in _all(db, _RECALLED_LOTS)}


def cartridge_facts(
    db: Any, raw: str, gtin: str, lot: str, serial: str | None, tz: ZoneInfo
) -> r.CartridgeFacts:
    base = {"raw": raw, "gtin": gtin, "lot": lot, "serial": serial}
    lot_row = _one(db, _LOT, gtin=gtin, lot=lot)
    if lot_row is None:
        return r.CartridgeFacts(**base)  # type: ignore[arg-type]
    lot_id, expiry = int(lot_row[0]), lot_row[1]
    common: dict[str, Any] = {
        **base,
        "lot_known": True,
        "expiry": expiry,
        "usable_until": end_of_day(expiry, tz),
        "recalled": lot_recall(db, lot_id) is not None
        or recalled_by_smuggling(db, gtin, lot) is not None,
    }
    if serial is not None:
        unit = _one(db, _UNIT, lot=lot_id, serial=serial)
        if unit is None:
            return r.CartridgeFacts(**common)
        unit_id = int(unit[0])
        used = _one(db, _USED, unit=unit_id)
        discarded = _one(db, _DISCARDED, unit=unit_id)
        return r.CartridgeFacts(
            **common,
            unit_known=True,
            used_by_session=int(used[0]) if used else None,
            discarded=discarded is not None,
            available_unit_id=None if (used or discarded) else unit_id,
        )
    # Unserialized: any unused, undiscarded unit of the lot will do; the lowest id is taken.
    if _one(db, _ANY_UNSERIALIZED, lot=lot_id) is None:
        return r.CartridgeFacts(**common)
    free = _one(db, _FREE_UNSERIALIZED, lot=lot_id)
    received = 0 if free else int(_one(db, _COUNT_UNSERIALIZED, lot=lot_id)[0])
    return r.CartridgeFacts(
        **common,
        unit_known=True,
        lot_units=received,
        available_unit_id=int(free[0]) if free else None,
    )


# --- packs -------------------------------------------------------------------------------------

_PACK = _q("SELECT id FROM packs WHERE code = :code")
# ci = 'none' with no cycle_cis row: an imported load whose CI nobody has read yet (issue 15);
# a cycle_cis row that failed fails the load.
_PACK_LOAD = _q(
    "SELECT c.id, c.at, c.passed, c.sterilizer_id, c.ci, ci.passed AS ci_passed FROM cycles c "
    "JOIN cycle_packs cp ON cp.cycle_id = c.id LEFT JOIN cycle_cis ci ON ci.cycle_id = c.id "
    f"WHERE cp.pack_id = :id AND {not_voided('cycle', 'c')} "
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


# A load can only be suspect if its sterilizer had a valid positive read at or after the load,
# or one entered after it (`Positive.recorded_at`): that is rare, so the full suspect-range logic
# (`is_load_suspect`) runs only then.
_ANY_POSITIVE_SINCE = _q(
    "SELECT r.id FROM bi_reads r JOIN bis b ON b.id = r.bi_id JOIN cycles c ON c.id = b.cycle_id "
    f"WHERE c.sterilizer_id = :st AND r.result = '{POSITIVE}' AND r.valid = :yes "
    f"AND (r.at >= :at OR r.recorded_at >= :at) AND {not_voided('bi-read', 'r')} LIMIT 1",
    ("at",),
)


def pack_facts(db: Any, code: str) -> tuple[int, r.PackFacts]:
    pack = _one(db, _PACK, code=code)
    if pack is None:
        raise UnknownRecord("pack", code)
    pack_id = int(pack[0])
    load = _one(db, _PACK_LOAD, id=pack_id)
    use = _one(db, _PACK_USE, id=pack_id)
    suspect = bool(
        load is not None
        and load[2]
        and _one(db, _ANY_POSITIVE_SINCE, st=load[3], yes=True, at=load[1]) is not None
        and is_load_suspect(db, int(load[0]))
    )
    status = load_status(bool(load[2]), load[4], load[5]) if load is not None else None
    return pack_id, r.PackFacts(
        code=code,
        load_id=int(load[0]) if load else None,
        load_at=load[1] if load else None,
        load_passed=status in (LOAD_PASSED, LOAD_CI_PENDING),
        load_ci_missing=status == LOAD_CI_PENDING,
        load_suspect=suspect,
        last_used_at=use[1] if use else None,
        open_session=int(use[0]) if use and use[2] is None else None,
    )


# Imported loads with packs whose chemical indicator nobody has read (status `ci-pending`).
_LOADS_AWAITING_CI = _q(
    f"SELECT c.id FROM cycles c WHERE c.ci = '{NO_CI}' AND c.passed = :yes "
    f"AND {not_voided('cycle', 'c')} "
    "AND EXISTS (SELECT 1 FROM cycle_packs cp WHERE cp.cycle_id = c.id) "
    "AND NOT EXISTS (SELECT 1 FROM cycle_cis ci WHERE ci.cycle_id = c.id) ORDER BY c.id",
)


def loads_awaiting_ci(db: Any) -> list[int]:
    """The loads `load_status` calls `ci-pending` that have packs to release, oldest first."""
    return [int(row[0]) for row in _all(db, _LOADS_AWAITING_CI, yes=True)]


# --- staff -------------------------------------------------------------------------------------

_STAFF = _q(
    "SELECT id, role, license_expires, max_depth_mm FROM staff WHERE code = :code",
    id=Integer,
    license_expires=Date,
    max_depth_mm=Float,
)


def practitioner_facts(db: Any, code: str) -> tuple[int, r.PractitionerFacts]:
    staff = _one(db, _STAFF, code=code)
    if staff is None:
        raise UnknownRecord("staff", code)
    staff_id = int(staff[0])
    from sterilog.compliance.registers import overlay

    # In force now: corrections (staff update/reinstate) are dated records (issue 14).
    recorded = {
        "name": None,
        "role": staff[1],
        "license_no": None,
        "license_expires": staff[2],
        "max_depth_mm": staff[3],
    }
    now = overlay(db, "staff", staff_id, recorded)
    return staff_id, r.PractitionerFacts(
        code=code,
        role=now.role,
        active=now.active,
        license_expires=now.license_expires,
        max_depth_mm=now.max_depth_mm,
    )


# --- biological indicators ---------------------------------------------------------------------

_NV_READ = not_voided("bi-read", "r")
_NV_CYCLE = not_voided("cycle", "c")


class Positive(NamedTuple):
    bi_id: int
    read_at: dt.datetime
    cycle_id: int
    cycle_at: dt.datetime
    sterilizer_id: int
    # When the read was entered. Until then nobody knew of it: a load run after the read's
    # event time but recorded before the read was entered (the read entered late, with `--at`)
    # ran on a sterilizer locked in hindsight, and is suspect too. A load recorded after it
    # passed the lock (a requalification test cycle): not suspect.
    recorded_at: dt.datetime


_POS_SQL = (
    "SELECT r.bi_id, r.at AS read_at, c.id AS cycle_id, c.at AS cycle_at, c.sterilizer_id, "
    "r.recorded_at FROM bi_reads r "
    "JOIN bis b ON b.id = r.bi_id JOIN cycles c ON c.id = b.cycle_id "
    f"WHERE r.valid = :yes AND r.result = '{POSITIVE}' AND {_NV_READ} AND {_NV_CYCLE}"
)
_POS_TYPES: dict[str, Any] = {
    "read_at": UTCDateTime,
    "cycle_at": UTCDateTime,
    "recorded_at": UTCDateTime,
}
_POSITIVES = _q(_POS_SQL + " ORDER BY r.at, r.id", **_POS_TYPES)
_POSITIVES_OF = _q(_POS_SQL + " AND c.sterilizer_id = :st ORDER BY r.at, r.id", **_POS_TYPES)
_POSITIVE_OF_BI = _q(_POS_SQL + " AND r.bi_id = :bi ORDER BY r.at, r.id LIMIT 1", **_POS_TYPES)


def _positive(row: Any) -> Positive:
    return Positive(int(row[0]), row[1], int(row[2]), row[3], int(row[4]), row[5])


def positives(db: Any, sterilizer_id: int | None = None) -> list[Positive]:
    """Valid positive reads (rare: a handful in a clinic's life)."""
    if sterilizer_id is None:
        return [_positive(x) for x in _all(db, _POSITIVES, yes=True)]
    return [_positive(x) for x in _all(db, _POSITIVES_OF, yes=True, st=sterilizer_id)]


_SUSPECT_START = _q(
    "SELECT c.at, c.id FROM cycles c JOIN bis b ON b.cycle_id = c.id "
    "JOIN bi_reads r ON r.bi_id = b.id "
    f"WHERE c.sterilizer_id = :st AND r.valid = :yes AND r.result = '{NEGATIVE}' AND "
    f"r.at <= :read_at AND {_NV_READ} AND {_NV_CYCLE} AND "
    "(c.at < :cat OR (c.at = :cat AND c.id < :cid)) ORDER BY c.at DESC, c.id DESC LIMIT 1",
    ("read_at", "cat"),
    at=UTCDateTime,
    id=Integer,
)
_UNTIL = "(c.at <= :read_at OR c.recorded_at <= :read_recorded_at)"  # see Positive.recorded_at
_SUSPECTS_ALL = _q(
    f"SELECT c.id FROM cycles c WHERE c.sterilizer_id = :st AND {_UNTIL} AND {_NV_CYCLE} "
    "ORDER BY c.at, c.id",
    ("read_at", "read_recorded_at"),
    id=Integer,
)
_SUSPECTS_AFTER = _q(
    f"SELECT c.id FROM cycles c WHERE c.sterilizer_id = :st AND {_UNTIL} AND {_NV_CYCLE} "
    "AND (c.at > :sat OR (c.at = :sat AND c.id > :sid)) ORDER BY c.at, c.id",
    ("read_at", "read_recorded_at", "sat"),
    id=Integer,
)
# A voided load did not happen: it is never suspect (the cycle list and the report skip it too).
_CYCLE = _q(
    f"SELECT c.id, c.at, c.sterilizer_id, c.recorded_at FROM cycles c "
    f"WHERE c.id = :id AND {_NV_CYCLE}",
    id=Integer,
    at=UTCDateTime,
    sterilizer_id=Integer,
    recorded_at=UTCDateTime,
)


def _suspect_start(db: Any, p: Positive) -> tuple[dt.datetime, int] | None:
    """The load after which suspicion starts: the last load of the sterilizer before the failing
    one whose BI had read negative (valid) by the positive read. None: every earlier load."""
    row = _one(
        db,
        _SUSPECT_START,
        st=p.sterilizer_id,
        yes=True,
        read_at=p.read_at,
        cat=p.cycle_at,
        cid=p.cycle_id,
    )
    return (row[0], int(row[1])) if row else None


def suspects_of(db: Any, p: Positive) -> list[int]:
    """Suspect loads of ONE positive read: every load of its sterilizer after the last load
    known negative at the read, run at or before the read, or recorded before the read was
    entered (`Positive.recorded_at`; SPEC §6.3: "up to now")."""
    start = _suspect_start(db, p)
    until = {"read_at": p.read_at, "read_recorded_at": p.recorded_at}
    if start is None:
        rows = _all(db, _SUSPECTS_ALL, st=p.sterilizer_id, **until)
    else:
        rows = _all(db, _SUSPECTS_AFTER, st=p.sterilizer_id, **until, sat=start[0], sid=start[1])
    return [int(x[0]) for x in rows]


def suspect_loads_of_bi(db: Any, bi_id: int) -> list[int]:
    """The loads one BI makes suspect (none unless it has a valid positive read)."""
    row = _one(db, _POSITIVE_OF_BI, yes=True, bi=bi_id)
    return suspects_of(db, _positive(row)) if row is not None else []


def suspect_load_ids(db: Any, sterilizer_id: int | None = None) -> set[int]:
    """Every suspect load (of one sterilizer, or of all)."""
    out: set[int] = set()
    for p in positives(db, sterilizer_id):
        out.update(suspects_of(db, p))
    return out


def is_load_suspect(db: Any, cycle_id: int) -> bool:
    """Cheap: only the positive valid reads of the load's sterilizer are looked at."""
    cycle = _one(db, _CYCLE, id=cycle_id)
    if cycle is None:
        return False
    at = cycle[1]
    for p in positives(db, int(cycle[2])):
        if at > p.read_at and cycle[3] > p.recorded_at:
            continue
        start = _suspect_start(db, p)
        if start is None or (at, cycle_id) > start:
            return True
    return False


_LATEST_QUALIFYING = _q(
    "SELECT c.at, EXISTS (SELECT 1 FROM bi_lab_events e WHERE e.bi_id = b.id AND "
    "e.kind = 'mailed') AS mailed, EXISTS (SELECT 1 FROM bi_reads r WHERE r.bi_id = b.id AND "
    f"r.valid = :yes AND r.at <= :at AND {_NV_READ}) AS read "
    "FROM cycles c JOIN bis b ON b.cycle_id = c.id "
    f"WHERE c.sterilizer_id = :st AND c.at <= :at AND {_NV_CYCLE} AND NOT EXISTS ("
    "  SELECT 1 FROM bi_lab_events e WHERE e.bi_id = b.id AND e.kind = 'invalid'"
    ") AND NOT EXISTS ("
    "  SELECT 1 FROM bi_reads r WHERE r.bi_id = b.id AND r.valid = :yes AND "
    f"  r.result = '{POSITIVE}' AND r.at <= :at AND {_NV_READ}"
    ") ORDER BY c.at DESC, c.id DESC LIMIT 1",
    ("at",),
    at=UTCDateTime,
    mailed=Boolean,
    read=Boolean,
)


def latest_qualifying_bi(db: Any, sterilizer_id: int, at: dt.datetime) -> dt.datetime | None:
    """The latest BI cycle at or before `at` whose BI had not read positive (valid) by `at`
    and was not declared invalid: still incubating or read negative. The weekly BI falls due
    `interval` after it (`rules.bi_due_at`); `sterilizer-bi-overdue` asks the same question of
    the window."""
    row = _one(db, _LATEST_QUALIFYING, st=sterilizer_id, at=at, yes=True)
    return None if row is None else row[0]


def bi_due_until(
    db: Any, sterilizer_id: int, at: dt.datetime, interval_days: int, lab_result_days: int
) -> dt.datetime | None:
    """When a cycle without a BI becomes blocked (`rules.bi_due_at`), a mailed BI without a
    result counting only until `lab_result_days` after it was placed (as
    `cycle_rules.bi_counts_at`)."""
    row = _one(db, _LATEST_QUALIFYING, st=sterilizer_id, at=at, yes=True)
    if row is None:
        return None
    due = r.bi_due_at(row[0], interval_days)
    assert due is not None
    if row[1] and not row[2]:
        due = min(due, row[0] + dt.timedelta(days=lab_result_days))
    return due


_STERILIZERS = _q("SELECT id, code, type FROM sterilizers ORDER BY code", id=Integer)


def sterilizers(db: Any) -> list[tuple[int, str, str]]:
    return [(int(i), str(c), str(t)) for i, c, t in _all(db, _STERILIZERS)]


def bi_due(
    db: Any, now: dt.datetime, interval_days: int, lab_result_days: int = 10
) -> tuple[tuple[str, dt.datetime], ...]:
    """When the weekly BI falls due, for every sterilizer that has a qualifying BI."""
    out = []
    for sid, code, _ in sterilizers(db):
        due = bi_due_until(db, sid, now, interval_days, lab_result_days)
        if due is not None:
            out.append((code, due))
    return tuple(out)
