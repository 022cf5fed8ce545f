"""Facts as of a record's own time, and the sterilizer's state: what `cycle record`, `bi read`,
`status`, every `trace` and the monthly report judge. Plain SQL on the plumbing of
`compliance/facts.py` (same void filter, same typed statements), no models import; kept apart
from `facts.py` only so that `sterilog check` does not import it.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Integer

from sterilog.clock import local_day_bounds
from sterilog.compliance import cycle_rules as cyc
from sterilog.compliance import rules as r
from sterilog.compliance.facts import (
    _CLEAN_TABLE,
    _NV_CYCLE,
    _NV_READ,
    _OWNER,
    _all,
    _clean_filter,
    _moment,
    _one,
    _q,
    bi_due_until,
    not_voided,
)
from sterilog.compliance.vocab import NEGATIVE, POSITIVE
from sterilog.sqltypes import UTCDateTime

# --- rooms and devices as a session found them ---------------------------------------------------


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
    expanding=("ids",),
    session_id=Integer,
    at=UTCDateTime,
    recorded_at=UTCDateTime,
)
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


_NEXT_CLEAN = {
    what: _q(
        f"SELECT c.id, c.at FROM {_CLEAN_TABLE[what][0]} c WHERE "
        f"{_clean_filter(what)} AND (c.at > :at OR (c.at = :at AND c.recorded_at >= :rec)) "
        "ORDER BY c.at, c.recorded_at, c.id LIMIT 1",
        ("at", "rec"),
        id=Integer,
        at=UTCDateTime,
    )
    for what in _OWNER
}
_AFTER = {
    what: _q(
        "SELECT s.id, s.started_at, s.client FROM sessions s "
        f"WHERE s.{col} = :key AND s.started_at < :hi AND "
        "(s.started_at > :at OR (s.started_at = :at AND s.id > :id)) "
        "ORDER BY s.started_at, s.id",
        ("at", "hi"),
        id=Integer,
        started_at=UTCDateTime,
    )
    for what, col in _OWNER.items()
}
_NEVER = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def sessions_until_next_clean(
    db: Any, what: str, owner_id: int, session: SessionStart
) -> list[tuple[int, dt.datetime, str]]:
    """(id, start, client) of the sessions in that room / on that device after `session` and
    before its next counting clean (not voided; for a room, a between-clients or end-of-day
    clean): who used it after this session with no clean in between. The one home of "the
    clients treated later with the same device before its next clean" (trace, exposures).

    The next clean is the first one after the session ENDED, in the gate's sense (`rules.after`:
    a tie goes to the later record): a clean made during the session does not clean the pen for
    the client after it. A session never ended is bounded by its start."""
    ends = _all(db, _SESSION_ENDS, ids=[session.session_id])
    end = r.Moment(ends[0][1], ends[0][2]) if ends else session.started
    following = _one(db, _NEXT_CLEAN[what], key=owner_id, at=end.at, rec=end.recorded_at)
    hi = following[1] if following is not None else _NEVER
    return [
        (int(i), at, str(client))
        for i, at, client in _all(
            db, _AFTER[what], key=owner_id, at=session.started.at, id=session.session_id, hi=hi
        )
    ]


_KNOWN_CLEAN = {
    what: _q(
        f"SELECT c.id FROM {_CLEAN_TABLE[what][0]} c WHERE {_clean_filter(what)} "
        "AND c.at >= :lo AND c.at <= :at AND c.recorded_at <= :at LIMIT 1",
        ("lo", "at"),
        id=Integer,
    )
    for what in _OWNER
}


def _cleaned(what: str, state: CleanState, at: dt.datetime) -> bool:
    """The gate's own rule (room-not-cleaned / device-not-reprocessed) on a session's state."""
    base = r.GateFacts(
        now=at,
        today=at.date(),
        cartridge=r.CartridgeFacts(raw="", gtin="", lot="", serial=None),
        device=r.DeviceFacts(code=""),
        room=r.RoomFacts(code=""),
        practitioner=r.PractitionerFacts(code="", role="practitioner"),
    )
    if what == "room":
        return not r.room_cleaned(dataclasses.replace(base, room=room_facts_at("", state)))
    return not r.device_reprocessed(dataclasses.replace(base, device=device_facts_at("", state)))


def late_cleans_closing(db: Any, what: str, sessions: list[SessionStart]) -> dict[int, int]:
    """Session id -> the clean that makes it cleaned by the gate's own rule as the database says
    now, for the sessions whose every counting clean since their previous session ended was
    entered after they started: without that late entry the session would be a gap (the
    monthly report's "late entries that close what would otherwise be a gap"). Linear in the
    sessions (`clean_states`), one lookup per session a late clean covers."""
    states = clean_states(db, what, sessions)
    out: dict[int, int] = {}
    for s in sessions:
        state = states[s.session_id]
        clean = state.last_clean
        if clean is None or state.last_clean_id is None or clean.recorded_at <= s.started.at:
            continue  # no clean, or one known when the session started
        if not _cleaned(what, state, s.started.at):
            continue  # a gap even now
        lo = state.last_end.at if state.last_end is not None else _EPOCH
        if _one(db, _KNOWN_CLEAN[what], key=s.owner_id, lo=lo, at=s.started.at) is None:
            out[s.session_id] = state.last_clean_id
    return out


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# --- biological indicators as they count ------------------------------------------------------


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


def _from_reads(row: Any, reads: list[Any]) -> BiResult:
    """The one definition of how a BI's reads (not voided, in event order) count."""
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


def _bi_result(db: Any, row: Any) -> BiResult:
    return _from_reads(row, _all(db, _BI_READS, id=int(row[0])))


_ALL_BIS = _q("SELECT id, cycle_id, lot FROM bis", id=Integer, cycle_id=Integer)
_ALL_READS = _q(
    "SELECT r.bi_id, r.id, r.result, r.control, r.valid, r.at FROM bi_reads r "
    f"WHERE {_NV_READ} ORDER BY r.at, r.id",
    bi_id=Integer,
    id=Integer,
    valid=Boolean,
    at=UTCDateTime,
)


_READS_OF = _q(
    "SELECT r.bi_id, r.id, r.result, r.control, r.valid, r.at FROM bi_reads r "
    f"WHERE r.bi_id IN :ids AND {_NV_READ} ORDER BY r.at, r.id",
    expanding=("ids",),
    bi_id=Integer,
    id=Integer,
    valid=Boolean,
    at=UTCDateTime,
)


def _results(bis: Iterable[Any], read_rows: Iterable[Any]) -> dict[int, BiResult]:
    reads: dict[int, list[Any]] = defaultdict(list)
    for bi_id, *rest in read_rows:
        reads[int(bi_id)].append(rest)
    return {int(b[0]): _from_reads(b, reads.get(int(b[0]), [])) for b in bis}


def bi_results(db: Any) -> dict[int, BiResult]:
    """Every BI as it counts, in two queries (`bi list`)."""
    return _results(_all(db, _ALL_BIS), _all(db, _ALL_READS))


def bi_results_of(db: Any, bis: list[tuple[int, int, str]]) -> dict[int, BiResult]:
    """The BIs given as (id, cycle_id, lot), each as it counts, in one query (the export's
    batches)."""
    if not bis:
        return {}
    return _results(bis, _all(db, _READS_OF, ids=[b[0] for b in bis]))


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


# --- declared non-test weeks (`bi skip`) --------------------------------------------------------


def iso_week(at: dt.datetime, tz: ZoneInfo) -> str:
    """The clinic-local ISO week of an instant, as YYYY-Www."""
    year, week, _ = at.astimezone(tz).date().isocalendar()
    return f"{year}-W{week:02d}"


_SKIP = _q(
    "SELECT k.id FROM bi_skips k WHERE k.sterilizer_id = :st AND k.week = :week AND "
    f"{not_voided('bi-skip', 'k')} ORDER BY k.id LIMIT 1",
    id=Integer,
)


def declared_week(db: Any, sterilizer_id: int, at: dt.datetime, tz: ZoneInfo) -> str | None:
    """`at`'s ISO week when it is declared (not voided) a non-test week of the sterilizer."""
    week = iso_week(at, tz)
    return week if _one(db, _SKIP, st=sterilizer_id, week=week) is not None else None


_SKIPS_OF = _q(
    "SELECT k.id, s.code, k.week, k.reason FROM bi_skips k "
    "JOIN sterilizers s ON s.id = k.sterilizer_id "
    f"WHERE k.week >= :lo AND k.week <= :hi AND {not_voided('bi-skip', 'k')} "
    "ORDER BY k.week, s.code, k.id",
    id=Integer,
)


def declared_weeks(db: Any, lo: str, hi: str) -> list[tuple[int, str, str, str]]:
    """(id, sterilizer, week, reason) of the declarations (not voided) for weeks lo..hi."""
    return [(int(i), str(c), str(w), str(r_)) for i, c, w, r_ in _all(db, _SKIPS_OF, lo=lo, hi=hi)]


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
) -> cyc.LockFacts:
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
    pos = tuple(cyc.PositiveRead(int(b), a) for b, a in rows)
    starts = ([repair_at] if repair_at is not None else []) + [p.at for p in pos]
    negatives: list[cyc.NegativeRead] = []
    for i, since in enumerate(starts):
        until = starts[i + 1] if i + 1 < len(starts) else at
        negatives.extend(
            cyc.NegativeRead(int(b), c, a)
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
    return cyc.LockFacts(
        repair_at=repair_at,
        repair_id=int(repair[0]) if repair else None,
        positives=pos,
        negatives=tuple(negatives),
        requalify_bis=requalify_bis,
        requalify_bis_after_repair=after_repair,
    )


_LAB = (
    "EXISTS (SELECT 1 FROM bi_lab_events e WHERE e.bi_id = b.id AND e.kind = 'mailed') AS mailed, "
    "EXISTS (SELECT 1 FROM bi_lab_events e WHERE e.bi_id = b.id AND e.kind = 'invalid') "
    "AS invalid "
)
_BI_EVIDENCE = _q(
    "SELECT b.id, c.at AS cycle_at, r.result, r.at, "
    + _LAB
    + "FROM bis b JOIN cycles c ON c.id = b.cycle_id "
    f"LEFT JOIN bi_reads r ON r.bi_id = b.id AND r.valid = :yes AND {_NV_READ} "
    f"WHERE c.sterilizer_id = :st AND c.at >= :lo AND c.at <= :hi AND {_NV_CYCLE} "
    "ORDER BY c.at, c.id",
    ("lo", "hi"),
    id=Integer,
    cycle_at=UTCDateTime,
    at=UTCDateTime,
    mailed=Boolean,
    invalid=Boolean,
)


def bi_evidence(
    db: Any, sterilizer_id: int, lo: dt.datetime, hi: dt.datetime
) -> tuple[cyc.BiEvidence, ...]:
    """BIs on cycles (not voided) of the sterilizer with event time in [lo, hi], each with its
    valid read (not voided) if any. The rule applies its own half-open window."""
    return tuple(
        cyc.BiEvidence(int(i), c, res, a, bool(m), bool(inv))
        for i, c, res, a, m, inv in _all(db, _BI_EVIDENCE, st=sterilizer_id, lo=lo, hi=hi, yes=True)
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
) -> tuple[cyc.AirTest, ...]:
    """Air-removal tests (not voided) with event time in [lo, hi)."""
    return tuple(
        cyc.AirTest(int(i), a, str(res))
        for i, a, res in _all(db, _AIR, st=sterilizer_id, lo=lo, hi=hi)
    )


def air_tests_of_day(
    db: Any, sterilizer_id: int, at: dt.datetime, tz: ZoneInfo
) -> tuple[cyc.AirTest, ...]:
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
    bis: tuple[cyc.BiEvidence, ...] | None = None,
    air: tuple[cyc.AirTest, ...] | None = None,
    with_lock: bool = True,
) -> cyc.CycleFacts:
    """Everything the cycle rules need about a cycle at `at` (`cycle record`, `status`, the
    monthly report's gaps). `bis` / `air` may be passed pre-loaded by a batch reader, as long as
    they hold at least the window's BIs / that day's tests."""
    lock = (
        cyc.lock_state(
            lock_facts(db, sterilizer_id, at, pack.requalify_bis, pack.requalify_bis_after_repair)
        )
        if with_lock
        else cyc.UNLOCKED
    )
    if bis is None:
        bis = bi_evidence(db, sterilizer_id, cyc.bi_window_start(at, pack.bi_interval_days), at)
    if air is None:
        air = air_tests_of_day(db, sterilizer_id, at, tz)
    return cyc.CycleFacts(
        lab_result_days=pack.lab_result_days,
        declared_week=declared_week(db, sterilizer_id, at, tz),
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
    facts: cyc.CycleFacts  # a load without a BI, now: what the cycle rules would say


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
    due = bi_due_until(db, sterilizer_id, now, pack.bi_interval_days, pack.lab_result_days)
    return SterilizerState(
        locked=facts.lock.locked,
        lock_reason=facts.lock.reason,
        requalify_remaining=facts.lock.remaining,
        bi_due_at=due,
        bi_overdue=bool(cyc.bi_overdue(facts)),
        air_removal_today=cyc.air_removal_today(facts.air_tests, now, tz),
        air_removal_required=str(row[1]) in pack.air_removal_types,
        facts=facts,
    )
