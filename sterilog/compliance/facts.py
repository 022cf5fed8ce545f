"""Every fact a compliance rule needs, queried once, void-aware by construction.

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

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Date, Float, Integer, bindparam, text

from sterilog.clock import end_of_day, local_day_bounds
from sterilog.compliance import rules as r
from sterilog.compliance.vocab import NEGATIVE, POSITIVE, READY_KINDS, VOIDABLE, sql_in
from sterilog.errors import UnknownRecord
from sterilog.sqltypes import UTCDateTime

# --- plumbing ----------------------------------------------------------------------------------


def not_voided(kind: str, alias: str) -> str:
    """SQL condition: row `alias` (a record of voidable `kind`) has not been voided."""
    assert kind in VOIDABLE, kind
    return (
        f"NOT EXISTS (SELECT 1 FROM voids v WHERE v.kind = '{kind}' AND v.record_id = {alias}.id)"
    )


def _q(sql: str, times: Sequence[str] = (), **types: Any) -> Any:
    """A typed text() statement; `times` are the parameters bound as UTC datetimes."""
    stmt = text(sql)
    if times:
        stmt = stmt.bindparams(*(bindparam(name, type_=UTCDateTime) for name in times))
    return stmt.columns(**types) if types else stmt


def _one(db: Any, stmt: Any, **params: Any) -> Any:
    return db.execute(stmt, params).first()


def _all(db: Any, stmt: Any, **params: Any) -> list[Any]:
    return list(db.execute(stmt, params).all())


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
_RETIRED = _q("SELECT id FROM device_retirements WHERE device_id = :id LIMIT 1")


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
    return device_id, r.DeviceFacts(
        code=code,
        retired=_one(db, _RETIRED, id=device_id) is not None,
        max_depth_mm=device[1],
        open_session=open_id,
        last_end=last_end,
        ever_used=used,
        last_clean=last_clean(db, "device", device_id),
    )


_ROOMS = _q("SELECT id, code FROM rooms ORDER BY code")


def open_sessions(db: Any) -> list[tuple[int, str, dt.datetime]]:
    """Open sessions, one indexed lookup per room (a room holds at most one open session)."""
    out: list[tuple[int, str, dt.datetime]] = []
    for room_id, room_code in db.execute(_ROOMS).all():
        row = _one(db, _LAST_SESSION["room"], key=room_id)
        if row is not None and row[1] is None:  # an ended session always has its end time
            out.append((int(row[0]), str(room_code), row[3]))
    return out


@dataclass(frozen=True)
class SessionStart:
    """A session to judge as of its own start (trace, the monthly report)."""

    session_id: int
    owner_id: int  # its room or device
    started: r.Moment


@dataclass(frozen=True)
class CleanState:
    """A room or device as the gate saw it when a session started (as the database says now)."""

    previous_session: int | None  # the session before it in that room / on that device
    last_end: r.Moment | None  # when that one ended
    open_session: int | None  # that one had not ended (the gate would have refused)
    last_clean: r.Moment | None  # the latest counting clean at or before the start
    last_clean_id: int | None

    @property
    def ever_used(self) -> bool:
        return self.previous_session is not None


_PREVIOUS = {
    what: _q(
        "SELECT s.id, e.at, e.recorded_at FROM sessions s "
        "LEFT JOIN session_ends e ON e.session_id = s.id "
        f"WHERE s.{col} = :key AND (s.started_at < :at OR (s.started_at = :at AND s.id < :id)) "
        "ORDER BY s.started_at DESC, s.id DESC LIMIT 1",
        ("at",),
        id=Integer,
        at=UTCDateTime,
        recorded_at=UTCDateTime,
    )
    for what, col in _OWNER.items()
}
_SESSION_ENDS = _q(
    "SELECT e.session_id, e.at, e.recorded_at FROM session_ends e WHERE e.session_id IN :ids",
    session_id=Integer,
    at=UTCDateTime,
    recorded_at=UTCDateTime,
).bindparams(bindparam("ids", expanding=True))
_CLEANS_SPAN = {
    what: _q(
        f"SELECT c.id, c.at, c.recorded_at FROM {_CLEAN_TABLE[what][0]} c WHERE "
        f"{_clean_filter(what)} AND c.at >= :lo AND c.at <= :hi "
        "ORDER BY c.at, c.recorded_at, c.id",
        ("lo", "hi"),
        id=Integer,
        at=UTCDateTime,
        recorded_at=UTCDateTime,
    )
    for what in _OWNER
}
_CLEAN_BEFORE = {
    what: _q(
        f"SELECT c.id, c.at, c.recorded_at FROM {_CLEAN_TABLE[what][0]} c WHERE "
        f"{_clean_filter(what)} AND c.at < :lo "
        "ORDER BY c.at DESC, c.recorded_at DESC, c.id DESC LIMIT 1",
        ("lo",),
        id=Integer,
        at=UTCDateTime,
        recorded_at=UTCDateTime,
    )
    for what in _OWNER
}


def clean_states(db: Any, what: str, sessions: Iterable[SessionStart]) -> dict[int, CleanState]:
    """How each session's room (`what="room"`) or device found it at its start.

    The sessions given for one owner must be every session of that owner between the first and
    the last given (a month's sessions, or a single one): each one's predecessor is the one
    before it in the list; only the first needs a lookup. Linear in the sessions and cleans.
    """
    by_owner: dict[int, list[SessionStart]] = defaultdict(list)
    for s in sessions:
        by_owner[s.owner_id].append(s)
    out: dict[int, CleanState] = {}
    for owner, mine in by_owner.items():
        mine.sort(key=lambda s: (s.started.at, s.session_id))
        first = mine[0]
        prev = _one(db, _PREVIOUS[what], key=owner, at=first.started.at, id=first.session_id)
        ends = {
            int(sid): r.Moment(at, rec)
            for sid, at, rec in _all(db, _SESSION_ENDS, ids=[s.session_id for s in mine])
        }
        lo = first.started.at if prev is None or prev[1] is None else prev[1]
        cleans = [
            (r.Moment(at, rec), int(cid))
            for cid, at, rec in _all(
                db, _CLEANS_SPAN[what], key=owner, lo=lo, hi=mine[-1].started.at
            )
        ]
        before = _one(db, _CLEAN_BEFORE[what], key=owner, lo=lo)
        keys = [m.key() for m, _ in cleans]
        prev_id = int(prev[0]) if prev is not None else None
        prev_end = _moment(prev[1], prev[2]) if prev is not None else None
        for s in mine:
            i = bisect.bisect_right(keys, s.started.key())
            if i > 0:
                clean, clean_id = cleans[i - 1]
            elif before is not None:
                clean, clean_id = r.Moment(before[1], before[2]), int(before[0])
            else:
                clean, clean_id = None, None
            out[s.session_id] = CleanState(
                previous_session=prev_id,
                last_end=prev_end,
                open_session=prev_id if prev_id is not None and prev_end is None else None,
                last_clean=clean,
                last_clean_id=clean_id,
            )
            prev_id, prev_end = s.session_id, ends.get(s.session_id)
    return out


def room_facts_at(code: str, state: CleanState) -> r.RoomFacts:
    return r.RoomFacts(
        code=code,
        open_session=state.open_session,
        last_end=state.last_end,
        ever_used=state.ever_used,
        last_clean=state.last_clean,
    )


def device_facts_at(code: str, state: CleanState) -> r.DeviceFacts:
    return r.DeviceFacts(
        code=code,
        open_session=state.open_session,
        last_end=state.last_end,
        ever_used=state.ever_used,
        last_clean=state.last_clean,
    )


_BETWEEN = {
    what: _q(
        "SELECT s.id, s.started_at, s.client FROM sessions s "
        f"WHERE s.{col} = :key AND s.started_at >= :lo AND "
        "(s.started_at < :at OR (s.started_at = :at AND s.id < :id)) "
        "ORDER BY s.started_at, s.id LIMIT 100",
        ("lo", "at"),
        id=Integer,
        started_at=UTCDateTime,
    )
    for what, col in _OWNER.items()
}


def sessions_since_clean(
    db: Any, what: str, owner_id: int, session: SessionStart, clean: r.Moment | None
) -> list[tuple[int, dt.datetime, str]]:
    """(id, start, client) of the sessions in that room / on that device after its last clean
    and before `session`: who used it in between when a clean is missing (at most 100)."""
    lo = clean.at if clean is not None else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return [
        (int(i), at, str(client))
        for i, at, client in _all(
            db, _BETWEEN[what], key=owner_id, lo=lo, at=session.started.at, id=session.session_id
        )
    ]


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


@dataclass(frozen=True)
class RecallFact:
    id: int
    at: dt.datetime
    reason: str


def lot_recall(db: Any, lot_id: int) -> RecallFact | None:
    """The lot's first recall that counts, or None: the lot is not recalled."""
    row = _one(db, _RECALL, lot=lot_id)
    return None if row is None else RecallFact(int(row[0]), row[1], str(row[2]))


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
        "recalled": lot_recall(db, lot_id) is not None,
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
_PACK_LOAD = _q(
    "SELECT c.id, c.at, c.passed, c.sterilizer_id FROM cycles c "
    "JOIN cycle_packs cp ON cp.cycle_id = c.id WHERE cp.pack_id = :id AND "
    f"{not_voided('cycle', 'c')} ORDER BY c.at DESC, c.id DESC LIMIT 1",
    id=Integer,
    at=UTCDateTime,
    passed=Boolean,
    sterilizer_id=Integer,
)
# Sessions are never back-dated, so the highest id is the latest use.
_PACK_USE = _q(
    "SELECT s.id, s.started_at, e.id FROM session_packs sp "
    "JOIN sessions s ON s.id = sp.session_id LEFT JOIN session_ends e ON e.session_id = s.id "
    "WHERE sp.pack_id = :id ORDER BY sp.session_id DESC LIMIT 1",
    id=Integer,
    started_at=UTCDateTime,
)


def pack_facts(db: Any, code: str) -> tuple[int, r.PackFacts]:
    pack = _one(db, _PACK, code=code)
    if pack is None:
        raise UnknownRecord("pack", code)
    pack_id = int(pack[0])
    load = _one(db, _PACK_LOAD, id=pack_id)
    use = _one(db, _PACK_USE, id=pack_id)
    suspect = bool(load is not None and load[2] and is_load_suspect(db, int(load[0])))
    return pack_id, r.PackFacts(
        code=code,
        load_id=int(load[0]) if load else None,
        load_at=load[1] if load else None,
        load_passed=bool(load[2]) if load else False,
        load_suspect=suspect,
        last_used_at=use[1] if use else None,
        open_session=int(use[0]) if use and use[2] is None else None,
    )


# --- staff -------------------------------------------------------------------------------------

_STAFF = _q(
    "SELECT id, role, license_expires, max_depth_mm FROM staff WHERE code = :code",
    id=Integer,
    license_expires=Date,
    max_depth_mm=Float,
)
_DEACTIVATED = _q("SELECT id FROM staff_deactivations WHERE staff_id = :id LIMIT 1")


def practitioner_facts(db: Any, code: str) -> tuple[int, r.PractitionerFacts]:
    staff = _one(db, _STAFF, code=code)
    if staff is None:
        raise UnknownRecord("staff", code)
    staff_id = int(staff[0])
    return staff_id, r.PractitionerFacts(
        code=code,
        role=staff[1],
        active=_one(db, _DEACTIVATED, id=staff_id) is None,
        license_expires=staff[2],
        max_depth_mm=staff[3],
    )


# --- biological indicators ---------------------------------------------------------------------

_NV_READ = not_voided("bi-read", "r")
_NV_CYCLE = not_voided("cycle", "c")


@dataclass(frozen=True)
class BiResult:
    """A BI's read as it counts: the valid read (not voided), else the latest non-voided
    invalid read, else none (pending)."""

    bi_id: int
    cycle_id: int
    lot: str
    read_id: int | None
    result: str | None  # of the valid read only; None while pending
    control: str | None
    valid: bool | None
    read_at: dt.datetime | None

    @property
    def pending(self) -> bool:
        return not self.valid

    @property
    def positive(self) -> bool:
        return bool(self.valid) and self.result == POSITIVE


_BI = _q("SELECT id, cycle_id, lot FROM bis WHERE id = :id", id=Integer, cycle_id=Integer)
_BI_OF_CYCLE = _q("SELECT id, cycle_id, lot FROM bis WHERE cycle_id = :id", id=Integer)
_BI_READS = _q(
    "SELECT r.id, r.result, r.control, r.valid, r.at FROM bi_reads r "
    f"WHERE r.bi_id = :id AND {_NV_READ} ORDER BY r.at, r.id",
    id=Integer,
    valid=Boolean,
    at=UTCDateTime,
)


def _bi_result(db: Any, row: Any) -> BiResult:
    reads = _all(db, _BI_READS, id=int(row[0]))
    valid = next((x for x in reads if x[3]), None)
    shown = valid or (reads[-1] if reads else None)
    return BiResult(
        bi_id=int(row[0]),
        cycle_id=int(row[1]),
        lot=str(row[2]),
        read_id=int(shown[0]) if shown else None,
        result=str(valid[1]) if valid else None,
        control=str(shown[2]) if shown else None,
        valid=bool(shown[3]) if shown else None,
        read_at=shown[4] if shown else None,
    )


def bi_result(db: Any, bi_id: int) -> BiResult | None:
    row = _one(db, _BI, id=bi_id)
    return None if row is None else _bi_result(db, row)


def bi_of_load(db: Any, cycle_id: int) -> BiResult | None:
    row = _one(db, _BI_OF_CYCLE, id=cycle_id)
    return None if row is None else _bi_result(db, row)


_NEAREST_BI = {
    before: _q(
        "SELECT b.id, b.cycle_id, b.lot FROM bis b JOIN cycles c ON c.id = b.cycle_id "
        f"WHERE c.sterilizer_id = :st AND {_NV_CYCLE} AND "
        + (
            "(c.at < :at OR (c.at = :at AND c.id < :id)) ORDER BY c.at DESC, c.id DESC LIMIT 1"
            if before
            else "(c.at > :at OR (c.at = :at AND c.id > :id)) ORDER BY c.at, c.id LIMIT 1"
        ),
        ("at",),
        id=Integer,
        cycle_id=Integer,
    )
    for before in (True, False)
}


def nearest_bi(
    db: Any, sterilizer_id: int, cycle_id: int, at: dt.datetime, *, before: bool
) -> BiResult | None:
    """The BI of the nearest other load (not voided) of the sterilizer before / after a load."""
    row = _one(db, _NEAREST_BI[before], st=sterilizer_id, at=at, id=cycle_id)
    return None if row is None else _bi_result(db, row)


@dataclass(frozen=True)
class Positive:
    bi_id: int
    read_at: dt.datetime
    cycle_id: int
    cycle_at: dt.datetime
    sterilizer_id: int


_POS_SQL = (
    "SELECT r.bi_id, r.at AS read_at, c.id AS cycle_id, c.at AS cycle_at, c.sterilizer_id "
    "FROM bi_reads r "
    "JOIN bis b ON b.id = r.bi_id JOIN cycles c ON c.id = b.cycle_id "
    f"WHERE r.valid = :yes AND r.result = '{POSITIVE}' AND {_NV_READ} AND {_NV_CYCLE}"
)
_POS_TYPES: dict[str, Any] = {"read_at": UTCDateTime, "cycle_at": UTCDateTime}
_POSITIVES = _q(_POS_SQL + " ORDER BY r.at, r.id", **_POS_TYPES)
_POSITIVES_OF = _q(_POS_SQL + " AND c.sterilizer_id = :st ORDER BY r.at, r.id", **_POS_TYPES)
_POSITIVE_OF_BI = _q(_POS_SQL + " AND r.bi_id = :bi ORDER BY r.at, r.id LIMIT 1", **_POS_TYPES)


def _positive(row: Any) -> Positive:
    return Positive(int(row[0]), row[1], int(row[2]), row[3], int(row[4]))


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
_SUSPECTS_ALL = _q(
    f"SELECT c.id FROM cycles c WHERE c.sterilizer_id = :st AND c.at <= :read_at AND {_NV_CYCLE} "
    "ORDER BY c.at, c.id",
    ("read_at",),
    id=Integer,
)
_SUSPECTS_AFTER = _q(
    f"SELECT c.id FROM cycles c WHERE c.sterilizer_id = :st AND c.at <= :read_at AND {_NV_CYCLE} "
    "AND (c.at > :sat OR (c.at = :sat AND c.id > :sid)) ORDER BY c.at, c.id",
    ("read_at", "sat"),
    id=Integer,
)
_CYCLE = _q(
    "SELECT id, at, sterilizer_id FROM cycles WHERE id = :id",
    id=Integer,
    at=UTCDateTime,
    sterilizer_id=Integer,
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
    known negative at the read, run at or before the read (SPEC §6.3)."""
    start = _suspect_start(db, p)
    if start is None:
        rows = _all(db, _SUSPECTS_ALL, st=p.sterilizer_id, read_at=p.read_at)
    else:
        rows = _all(
            db, _SUSPECTS_AFTER, st=p.sterilizer_id, read_at=p.read_at, sat=start[0], sid=start[1]
        )
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
        if at > p.read_at:
            continue
        start = _suspect_start(db, p)
        if start is None or (at, cycle_id) > start:
            return True
    return False


# --- the sterilizer: lock, weekly BI, air-removal tests ----------------------------------------

_REPAIR = _q(
    "SELECT s.id, s.at FROM sterilizer_services s WHERE s.sterilizer_id = :st AND "
    f"s.repair = :yes AND s.at <= :at AND {not_voided('service', 's')} "
    "ORDER BY s.at DESC, s.id DESC LIMIT 1",
    ("at",),
    id=Integer,
    at=UTCDateTime,
)
_LOCK_POS = (
    "SELECT r.bi_id, r.at FROM bi_reads r JOIN bis b ON b.id = r.bi_id "
    "JOIN cycles c ON c.id = b.cycle_id WHERE c.sterilizer_id = :st AND r.valid = :yes AND "
    f"r.result = '{POSITIVE}' AND r.at <= :at AND {_NV_READ} AND {_NV_CYCLE}"
)
_LOCK_POS_AFTER = _q(
    _LOCK_POS + " AND r.at > :since ORDER BY r.at, r.id",
    ("at", "since"),
    bi_id=Integer,
    at=UTCDateTime,
)
_LOCK_POS_LAST = _q(
    _LOCK_POS + " ORDER BY r.at DESC, r.id DESC LIMIT 1", ("at",), bi_id=Integer, at=UTCDateTime
)
_LOCK_NEG = _q(
    "SELECT r.bi_id, c.at AS cycle_at, r.at FROM bi_reads r JOIN bis b ON b.id = r.bi_id "
    "JOIN cycles c ON c.id = b.cycle_id WHERE c.sterilizer_id = :st AND r.valid = :yes AND "
    f"r.result = '{NEGATIVE}' AND r.at > :since AND r.at <= :until AND c.at > :since AND "
    f"{_NV_READ} AND {_NV_CYCLE} ORDER BY r.at, r.id LIMIT :n",
    ("since", "until"),
    bi_id=Integer,
    cycle_at=UTCDateTime,
    at=UTCDateTime,
)


def lock_facts(
    db: Any, sterilizer_id: int, at: dt.datetime, requalify_bis: int, after_repair: int
) -> r.LockFacts:
    """The lock's facts as of `at`, in a few bounded queries.

    Only the latest repair matters (it restarts requalification), and only positives after it;
    without a repair only the latest positive matters. Per stretch between two triggers at most
    `after_repair` negatives can count, so that many are loaded per stretch.
    """
    repair = _one(db, _REPAIR, st=sterilizer_id, yes=True, at=at)
    repair_at = repair[1] if repair else None
    if repair_at is not None:
        rows = _all(db, _LOCK_POS_AFTER, st=sterilizer_id, yes=True, at=at, since=repair_at)
    else:
        rows = _all(db, _LOCK_POS_LAST, st=sterilizer_id, yes=True, at=at)
    pos = tuple(r.PositiveRead(int(b), a) for b, a in rows)
    starts = ([repair_at] if repair_at is not None else []) + [p.at for p in pos]
    negatives: list[r.NegativeRead] = []
    for i, since in enumerate(starts):
        until = starts[i + 1] if i + 1 < len(starts) else at
        negatives.extend(
            r.NegativeRead(int(b), c, a)
            for b, c, a in _all(
                db,
                _LOCK_NEG,
                st=sterilizer_id,
                yes=True,
                since=since,
                until=until,
                n=after_repair,
            )
        )
    return r.LockFacts(
        repair_at=repair_at,
        repair_id=int(repair[0]) if repair else None,
        positives=pos,
        negatives=tuple(negatives),
        requalify_bis=requalify_bis,
        requalify_bis_after_repair=after_repair,
    )


_LATEST_QUALIFYING = _q(
    "SELECT c.at FROM cycles c JOIN bis b ON b.cycle_id = c.id "
    f"WHERE c.sterilizer_id = :st AND c.at <= :at AND {_NV_CYCLE} AND NOT EXISTS ("
    "  SELECT 1 FROM bi_reads r WHERE r.bi_id = b.id AND r.valid = :yes AND "
    f"  r.result = '{POSITIVE}' AND r.at <= :at AND {_NV_READ}"
    ") ORDER BY c.at DESC, c.id DESC LIMIT 1",
    ("at",),
    at=UTCDateTime,
)


def latest_qualifying_bi(db: Any, sterilizer_id: int, at: dt.datetime) -> dt.datetime | None:
    """The latest BI cycle at or before `at` whose BI had not read positive (valid) by `at`:
    still incubating or read negative. The weekly BI falls due `interval` after it
    (`rules.bi_due_at`); `sterilizer-bi-overdue` asks the same question of the window."""
    row = _one(db, _LATEST_QUALIFYING, st=sterilizer_id, at=at, yes=True)
    return None if row is None else row[0]


_STERILIZERS = _q("SELECT id, code, type FROM sterilizers ORDER BY code", id=Integer)


def sterilizers(db: Any) -> list[tuple[int, str, str]]:
    return [(int(i), str(c), str(t)) for i, c, t in _all(db, _STERILIZERS)]


def bi_due(db: Any, now: dt.datetime, interval_days: int) -> tuple[tuple[str, dt.datetime], ...]:
    """When the weekly BI falls due, for every sterilizer that has a qualifying BI."""
    out = []
    for sid, code, _ in sterilizers(db):
        due = r.bi_due_at(latest_qualifying_bi(db, sid, now), interval_days)
        if due is not None:
            out.append((code, due))
    return tuple(out)


_BI_EVIDENCE = _q(
    "SELECT b.id, c.at AS cycle_at, r.result, r.at FROM bis b JOIN cycles c ON c.id = b.cycle_id "
    f"LEFT JOIN bi_reads r ON r.bi_id = b.id AND r.valid = :yes AND {_NV_READ} "
    f"WHERE c.sterilizer_id = :st AND c.at >= :lo AND c.at <= :hi AND {_NV_CYCLE} "
    "ORDER BY c.at, c.id",
    ("lo", "hi"),
    id=Integer,
    cycle_at=UTCDateTime,
    at=UTCDateTime,
)


def bi_evidence(
    db: Any, sterilizer_id: int, lo: dt.datetime, hi: dt.datetime
) -> tuple[r.BiEvidence, ...]:
    """BIs on cycles (not voided) of the sterilizer with event time in [lo, hi], each with its
    valid read (not voided) if any. The rule applies its own half-open window."""
    return tuple(
        r.BiEvidence(int(i), c, res, a)
        for i, c, res, a in _all(db, _BI_EVIDENCE, st=sterilizer_id, lo=lo, hi=hi, yes=True)
    )


_AIR = _q(
    "SELECT t.id, t.at, t.result FROM air_removal_tests t WHERE t.sterilizer_id = :st AND "
    f"t.at >= :lo AND t.at < :hi AND {not_voided('air-removal', 't')} ORDER BY t.at, t.id",
    ("lo", "hi"),
    id=Integer,
    at=UTCDateTime,
)


def air_tests(
    db: Any, sterilizer_id: int, lo: dt.datetime, hi: dt.datetime
) -> tuple[r.AirTest, ...]:
    """Air-removal tests (not voided) with event time in [lo, hi)."""
    return tuple(
        r.AirTest(int(i), a, str(res))
        for i, a, res in _all(db, _AIR, st=sterilizer_id, lo=lo, hi=hi)
    )


def air_tests_of_day(
    db: Any, sterilizer_id: int, at: dt.datetime, tz: ZoneInfo
) -> tuple[r.AirTest, ...]:
    """The tests of `at`'s clinic-local day (the rules apply "at or before")."""
    start, end = local_day_bounds(at.astimezone(tz).date(), tz)
    return air_tests(db, sterilizer_id, start, end)


def cycle_facts(
    db: Any,
    *,
    sterilizer_id: int,
    sterilizer: str,
    sterilizer_type: str,
    at: dt.datetime,
    tz: ZoneInfo,
    pack: Any,
    is_test: bool,
    carries_bi: bool,
    bis: tuple[r.BiEvidence, ...] | None = None,
    air: tuple[r.AirTest, ...] | None = None,
    with_lock: bool = True,
) -> r.CycleFacts:
    """Everything the cycle rules need about a cycle at `at` (`cycle record`, `status`, the
    monthly report's gaps). `bis` / `air` may be passed pre-loaded by a batch reader, as long as
    they hold at least the window's BIs / that day's tests."""
    lock = (
        r.lock_state(
            lock_facts(db, sterilizer_id, at, pack.requalify_bis, pack.requalify_bis_after_repair)
        )
        if with_lock
        else r.UNLOCKED
    )
    if bis is None:
        bis = bi_evidence(db, sterilizer_id, r.bi_window_start(at, pack.bi_interval_days), at)
    if air is None:
        air = air_tests_of_day(db, sterilizer_id, at, tz)
    return r.CycleFacts(
        sterilizer=sterilizer,
        sterilizer_type=sterilizer_type,
        at=at,
        tz=tz,
        is_test=is_test,
        carries_bi=carries_bi,
        lock=lock,
        air_tests=air,
        bis=bis,
        air_removal_types=frozenset(pack.air_removal_types),
        bi_interval_days=pack.bi_interval_days,
    )


@dataclass(frozen=True)
class SterilizerState:
    locked: bool
    lock_reason: str | None
    requalify_remaining: int
    bi_due_at: dt.datetime | None  # first instant a cycle without a BI is blocked; None: no BI
    bi_overdue: bool
    air_removal_today: str | None  # latest test of the clinic day at or before now
    air_removal_required: bool  # the sterilizer's type needs a daily test (rule pack)
    facts: r.CycleFacts  # a load without a BI, now: what the cycle rules would say


def sterilizer_state(
    db: Any, sterilizer_id: int, now: dt.datetime, pack: Any, tz: ZoneInfo
) -> SterilizerState:
    """The sterilizer as `cycle record` would judge a load without a BI now."""
    row = _one(db, _q("SELECT code, type FROM sterilizers WHERE id = :id"), id=sterilizer_id)
    facts = cycle_facts(
        db,
        sterilizer_id=sterilizer_id,
        sterilizer=str(row[0]),
        sterilizer_type=str(row[1]),
        at=now,
        tz=tz,
        pack=pack,
        is_test=False,
        carries_bi=False,
    )
    due = r.bi_due_at(latest_qualifying_bi(db, sterilizer_id, now), pack.bi_interval_days)
    return SterilizerState(
        locked=facts.lock.locked,
        lock_reason=facts.lock.reason,
        requalify_remaining=facts.lock.remaining,
        bi_due_at=due,
        bi_overdue=bool(r.bi_overdue(facts)),
        air_removal_today=r.air_removal_today(facts.air_tests, now, tz),
        air_removal_required=str(row[1]) in pack.air_removal_types,
        facts=facts,
    )
