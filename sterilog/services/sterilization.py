"""Sterilization records (SPEC §6.3): cycles, BIs and their reads, air-removal tests.

Also the read functions the gate, status and trace use: `sterilizer_state`, `suspect_load_ids`,
`is_load_suspect`. They run a few indexed queries each and never scan a whole table.

Suspect loads after a positive BI read P on failing load F of sterilizer S: every load of S
ordered after L and run at or before P's read time, where L is the last load of S ordered
before F whose BI had read negative with a valid control by P's read time. The set is fixed by
what was known at the read, so `bi read`, `trace bi` and the gate always agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from sterilog import sterilization as rules
from sterilog.clock import iso, local_day_bounds
from sterilog.errors import Blocked, UnknownRecord, UserError
from sterilog.models import (
    AirRemovalTest,
    BiologicalIndicator,
    BiRead,
    Cycle,
    CyclePack,
    Pack,
    Program,
    SessionPack,
    Sterilizer,
    SterilizerService,
)
from sterilog.rulepack import RulePack
from sterilog.services import validate as v
from sterilog.services.base import Ctx
from sterilog.services.voids import counts

CI_RESULTS = ("pass", "fail")
AIR_RESULTS = ("pass", "fail")
BI_RESULTS = ("negative", "positive")
CONTROL_RESULTS = ("positive", "negative")
MAX_LOAD_NO = 1_000_000_000


def _sterilizer(ctx: Ctx, code: str) -> Sterilizer:
    return ctx.by_code(Sterilizer, v.ident(code, "sterilizer ID"), "sterilizer")


# --- shared read functions (gate, status, trace) -----------------------------------------------


@dataclass(frozen=True)
class SterilizerState:
    locked: bool
    lock_reason: str | None
    requalify_remaining: int
    bi_due_at: dt.datetime | None  # first instant a cycle without a BI is blocked; None: no BI
    bi_overdue: bool
    air_removal_today: str | None  # latest test of the clinic day at or before now
    air_removal_required: bool  # the sterilizer's type needs a daily test (rule pack)


def sterilizer_state(
    session: Session,
    sterilizer_id: int,
    now: dt.datetime,
    rules_: RulePack,
    tz: ZoneInfo | None = None,
) -> SterilizerState:
    """The sterilizer as the gate and `status` see it at `now`. A handful of indexed queries."""
    if tz is None:
        from sterilog.services.base import load_clinic

        tz = load_clinic(session).tz
    st_type = session.execute(
        select(Sterilizer.type).where(Sterilizer.id == sterilizer_id)
    ).scalar_one()
    lock = rules.lock_state(lock_facts(session, sterilizer_id, now, rules_))
    due = rules.bi_due_at(
        _latest_qualifying_bi_cycle(session, sterilizer_id, now), rules_.bi_interval_days
    )
    air = rules.air_removal_today(_air_tests(session, sterilizer_id, now, tz), now, tz)
    return SterilizerState(
        locked=lock.locked,
        lock_reason=lock.reason,
        requalify_remaining=lock.remaining,
        bi_due_at=due,
        bi_overdue=due is None or now >= due,
        air_removal_today=air,
        air_removal_required=st_type in rules_.air_removal_types,
    )


@dataclass(frozen=True)
class _Positive:
    bi_id: int
    read_at: dt.datetime
    cycle_id: int
    cycle_at: dt.datetime
    sterilizer_id: int


def _positives(session: Session, sterilizer_id: int | None) -> list[_Positive]:
    """Valid positive reads (rare: a handful in a clinic's life)."""
    q = (
        select(BiRead.bi_id, BiRead.at, Cycle.id, Cycle.at, Cycle.sterilizer_id)
        .join(BiologicalIndicator, BiologicalIndicator.id == BiRead.bi_id)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .where(
            BiRead.valid.is_(True),
            BiRead.result == "positive",
            counts(BiRead),
            counts(Cycle),
        )
        .order_by(BiRead.at, BiRead.id)
    )
    if sterilizer_id is not None:
        q = q.where(Cycle.sterilizer_id == sterilizer_id)
    return [_Positive(int(a), b, int(c), d, int(e)) for a, b, c, d, e in session.execute(q).all()]


def _after(at: dt.datetime, ident: int) -> ColumnElement[bool]:
    """Cycles ordered after (at, id): event time, ties by record order."""
    return or_(Cycle.at > at, and_(Cycle.at == at, Cycle.id > ident))


def _suspect_range(session: Session, p: _Positive) -> tuple[dt.datetime, int] | None:
    """The load after which suspicion starts (the last negative-BI load before the failing one
    as known at the read), or None: every load before it is suspect."""
    row = session.execute(
        select(Cycle.at, Cycle.id)
        .join(BiologicalIndicator, BiologicalIndicator.cycle_id == Cycle.id)
        .join(BiRead, BiRead.bi_id == BiologicalIndicator.id)
        .where(
            Cycle.sterilizer_id == p.sterilizer_id,
            BiRead.valid.is_(True),
            BiRead.result == "negative",
            BiRead.at <= p.read_at,
            counts(BiRead),
            counts(Cycle),
            or_(Cycle.at < p.cycle_at, and_(Cycle.at == p.cycle_at, Cycle.id < p.cycle_id)),
        )
        .order_by(Cycle.at.desc(), Cycle.id.desc())
        .limit(1)
    ).first()
    return (row[0], int(row[1])) if row else None


def _suspects_of(session: Session, p: _Positive) -> list[int]:
    start = _suspect_range(session, p)
    q = select(Cycle.id).where(
        Cycle.sterilizer_id == p.sterilizer_id, Cycle.at <= p.read_at, counts(Cycle)
    )
    if start is not None:
        q = q.where(_after(*start))
    return [int(i) for i in session.execute(q.order_by(Cycle.at, Cycle.id)).scalars()]


def suspect_load_ids(session: Session, sterilizer_id: int | None = None) -> set[int]:
    """Every suspect load (of one sterilizer, or of all)."""
    out: set[int] = set()
    for p in _positives(session, sterilizer_id):
        out.update(_suspects_of(session, p))
    return out


def is_load_suspect(session: Session, cycle: Cycle) -> bool:
    """Cheap: only the positive valid reads of the cycle's sterilizer are looked at."""
    for p in _positives(session, cycle.sterilizer_id):
        if cycle.at > p.read_at:
            continue
        start = _suspect_range(session, p)
        if start is None or (cycle.at, cycle.id) > start:
            return True
    return False


# --- facts for the rules -----------------------------------------------------------------------


def lock_facts(
    session: Session, sterilizer_id: int, at: dt.datetime, pack: RulePack
) -> rules.LockFacts:
    """The lock's facts as of `at`, loaded in a few bounded queries.

    Only the latest repair matters (it restarts requalification), and only positives after it;
    without a repair only the latest positive matters. Per stretch between two triggers at most
    `requalify_bis_after_repair` negatives can count, so that many are loaded per stretch.
    """
    repair = session.execute(
        select(SterilizerService.id, SterilizerService.at)
        .where(
            SterilizerService.sterilizer_id == sterilizer_id,
            SterilizerService.repair.is_(True),
            SterilizerService.at <= at,
            counts(SterilizerService),
        )
        .order_by(SterilizerService.at.desc(), SterilizerService.id.desc())
        .limit(1)
    ).first()
    repair_at = repair[1] if repair else None
    q = (
        select(BiRead.bi_id, BiRead.at)
        .join(BiologicalIndicator, BiologicalIndicator.id == BiRead.bi_id)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .where(
            Cycle.sterilizer_id == sterilizer_id,
            BiRead.valid.is_(True),
            BiRead.result == "positive",
            BiRead.at <= at,
            counts(BiRead),
            counts(Cycle),
        )
    )
    if repair_at is not None:
        q = q.where(BiRead.at > repair_at)
        rows = session.execute(q.order_by(BiRead.at, BiRead.id)).all()
    else:
        rows = session.execute(q.order_by(BiRead.at.desc(), BiRead.id.desc()).limit(1)).all()
    positives = tuple(rules.PositiveRead(int(b), a) for b, a in rows)
    starts = ([repair_at] if repair_at is not None else []) + [p.at for p in positives]
    negatives: list[rules.NegativeRead] = []
    for i, since in enumerate(starts):
        until = starts[i + 1] if i + 1 < len(starts) else at
        negatives.extend(
            rules.NegativeRead(int(b), c, a)
            for b, c, a in session.execute(
                select(BiRead.bi_id, Cycle.at, BiRead.at)
                .join(BiologicalIndicator, BiologicalIndicator.id == BiRead.bi_id)
                .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
                .where(
                    Cycle.sterilizer_id == sterilizer_id,
                    BiRead.valid.is_(True),
                    BiRead.result == "negative",
                    BiRead.at > since,
                    BiRead.at <= until,
                    Cycle.at > since,
                    counts(BiRead),
                    counts(Cycle),
                )
                .order_by(BiRead.at, BiRead.id)
                .limit(pack.requalify_bis_after_repair)
            ).all()
        )
    return rules.LockFacts(
        repair_at=repair_at,
        repair_id=int(repair[0]) if repair else None,
        positives=positives,
        negatives=tuple(negatives),
        requalify_bis=pack.requalify_bis,
        requalify_bis_after_repair=pack.requalify_bis_after_repair,
    )


def _latest_qualifying_bi_cycle(
    session: Session, sterilizer_id: int, at: dt.datetime
) -> dt.datetime | None:
    """The latest BI cycle at or before `at` whose BI had not read positive (valid) by `at`."""
    positive = exists().where(
        BiRead.bi_id == BiologicalIndicator.id,
        BiRead.valid.is_(True),
        BiRead.result == "positive",
        BiRead.at <= at,
        counts(BiRead),
    )
    return session.execute(
        select(Cycle.at)
        .join(BiologicalIndicator, BiologicalIndicator.cycle_id == Cycle.id)
        .where(Cycle.sterilizer_id == sterilizer_id, Cycle.at <= at, ~positive, counts(Cycle))
        .order_by(Cycle.at.desc())
        .limit(1)
    ).scalar_one_or_none()


def _bi_evidence(
    session: Session, sterilizer_id: int, at: dt.datetime, interval_days: int
) -> tuple[rules.BiEvidence, ...]:
    """BI cycles in the closed window [at - interval, at]; the rule applies the half-open one."""
    rows = session.execute(
        select(BiologicalIndicator.id, Cycle.at, BiRead.result, BiRead.at)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .outerjoin(
            BiRead,
            and_(BiRead.bi_id == BiologicalIndicator.id, BiRead.valid.is_(True), counts(BiRead)),
        )
        .where(
            Cycle.sterilizer_id == sterilizer_id,
            Cycle.at >= rules.bi_window_start(at, interval_days),
            Cycle.at <= at,
            counts(Cycle),
        )
    ).all()
    return tuple(rules.BiEvidence(int(i), c, r, a) for i, c, r, a in rows)


def _air_tests(
    session: Session, sterilizer_id: int, at: dt.datetime, tz: ZoneInfo
) -> tuple[rules.AirTest, ...]:
    """The tests of `at`'s clinic day (the rule applies 'at or before')."""
    start, end = local_day_bounds(at.astimezone(tz).date(), tz)
    rows = session.execute(
        select(AirRemovalTest.id, AirRemovalTest.at, AirRemovalTest.result).where(
            AirRemovalTest.sterilizer_id == sterilizer_id,
            AirRemovalTest.at >= start,
            AirRemovalTest.at < end,
            counts(AirRemovalTest),
        )
    ).all()
    return tuple(rules.AirTest(int(i), a, r) for i, a, r in rows)


# --- cycle record ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleRecorded:
    cycle: Cycle
    sterilizer: str
    program: str
    packs: list[str]
    bi: BiologicalIndicator | None
    failures: list[str]
    lock: rules.Lock


def record_cycle(
    ctx: Ctx,
    *,
    sterilizer: str,
    program: str,
    temp_c: float,
    hold_min: float,
    ci: str,
    ci_type: int | None = None,
    packs: Sequence[str] = (),
    load_no: int | None = None,
    bi_lot: str | None = None,
    at: dt.datetime | None = None,
) -> CycleRecorded:
    s = ctx.session
    pack_rules = ctx.clinic.rules
    readings = rules.Readings(
        temp_c=v.number(temp_c, "--temp-c", low=v.TEMP_C[0], high=v.TEMP_C[1], unit=" °C"),
        hold_min=v.number(
            hold_min,
            "--hold-min",
            low=v.HOLD_MIN[0],
            high=v.HOLD_MIN[1],
            unit=" min",
            inclusive_low=True,
        ),
        ci=v.choice(ci, "--ci", CI_RESULTS),
        ci_type=ci_type,
    )
    if ci_type is not None and not 1 <= ci_type <= 6:
        raise UserError(f"--ci-type must be an ISO 11140-1 type from 1 to 6, got {ci_type}")
    lot = v.text(bi_lot, "--bi-lot", required=False, limit=100)
    if bi_lot is not None and lot is None:
        raise UserError("--bi-lot must not be empty")
    st = _sterilizer(ctx, sterilizer)
    prog_name = v.ident(program, "--program")
    prog = s.execute(
        select(Program).where(Program.sterilizer_id == st.id, Program.name == prog_name)
    ).scalar_one_or_none()
    if prog is None:
        names = s.execute(
            select(Program.name).where(Program.sterilizer_id == st.id).order_by(Program.id)
        ).scalars()
        raise UserError(
            f"unknown program {prog_name!r} for sterilizer {st.code}; its programs: "
            f"{', '.join(names) or 'none'} (add one with `sterilog sterilizer program`)"
        )
    pack_rows: list[Pack] = []
    for code in packs:
        row = ctx.by_code(Pack, v.ident(code, "pack ID"), "pack")
        if row in pack_rows:
            raise UserError(f"pack {code!r} is given twice")
        pack_rows.append(row)
    when = ctx.event_time(at)
    if load_no is not None:
        if not 1 <= load_no <= MAX_LOAD_NO:
            raise UserError(f"--load-no must be from 1 to {MAX_LOAD_NO}, got {load_no}")
        taken = s.execute(
            select(Cycle.id).where(Cycle.sterilizer_id == st.id, Cycle.load_no == load_no)
        ).scalar_one_or_none()
        if taken is not None:
            raise UserError(
                f"load number {load_no} of sterilizer {st.code} already exists (load ID "
                f"{taken}); omit --load-no to take the next number"
            )
        number = load_no
    else:
        top = s.execute(
            select(func.max(Cycle.load_no)).where(Cycle.sterilizer_id == st.id)
        ).scalar_one_or_none()
        number = int(top or 0) + 1

    lock = rules.lock_state(lock_facts(s, st.id, when, pack_rules))
    facts = rules.CycleFacts(
        sterilizer=st.code,
        sterilizer_type=st.type,
        at=when,
        tz=ctx.clinic.tz,
        is_test=not pack_rows,
        carries_bi=lot is not None,
        lock=lock,
        air_tests=_air_tests(s, st.id, when, ctx.clinic.tz),
        bis=_bi_evidence(s, st.id, when, pack_rules.bi_interval_days),
        air_removal_types=pack_rules.air_removal_types,
        bi_interval_days=pack_rules.bi_interval_days,
    )
    reasons = rules.check_cycle(facts)
    if reasons:
        raise Blocked(reasons, f"cycle on {st.code} blocked")

    failures = rules.cycle_failures(
        readings,
        rules.ProgramSpec(prog.name, prog.temp_c, prog.hold_min),
        pack_rules.min_ci_type,
    )
    cycle = Cycle(
        sterilizer_id=st.id,
        program_id=prog.id,
        load_no=number,
        temp_c=readings.temp_c,
        hold_min=readings.hold_min,
        ci=readings.ci,
        ci_type=ci_type,
        passed=not failures,
        at=when,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(cycle)
    s.flush()
    rows: list[Any] = [cycle]
    rows += [CyclePack(cycle_id=cycle.id, pack_id=p.id, recorded_at=ctx.now) for p in pack_rows]
    bi = None
    if lot is not None:
        bi = BiologicalIndicator(cycle_id=cycle.id, lot=lot, recorded_at=ctx.now)
        rows.append(bi)
    ctx.add(*rows[1:])
    ctx.audit("cycle.record", rows)
    return CycleRecorded(
        cycle=cycle,
        sterilizer=st.code,
        program=prog.name,
        packs=[p.code for p in pack_rows],
        bi=bi,
        failures=failures,
        lock=lock,
    )


def list_cycles(
    session: Session,
    *,
    sterilizer: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Cycles with event time in [start, end), oldest first."""
    conds: list[ColumnElement[bool]] = []
    st_id: int | None = None
    if sterilizer is not None:
        st_id = session.execute(
            select(Sterilizer.id).where(Sterilizer.code == sterilizer)
        ).scalar_one_or_none()
        if st_id is None:
            raise UnknownRecord("sterilizer", sterilizer)
        conds.append(Cycle.sterilizer_id == st_id)
    if start is not None:
        conds.append(Cycle.at >= start)
    if end is not None:
        conds.append(Cycle.at < end)
    packs: dict[int, list[str]] = {}
    for cid, code in session.execute(
        select(CyclePack.cycle_id, Pack.code)
        .join(Pack, Pack.id == CyclePack.pack_id)
        .join(Cycle, Cycle.id == CyclePack.cycle_id)
        .where(*conds)
        .order_by(CyclePack.id)
    ).all():
        packs.setdefault(int(cid), []).append(code)
    suspects = suspect_load_ids(session, st_id)
    out = []
    from sterilog.models import CycleCi, ImportedCycle
    from sterilog.services.device_import import load_status

    for c, st_code, prog_name, bi_id, voided, ci_passed, device_no in session.execute(
        select(
            Cycle,
            Sterilizer.code,
            Program.name,
            BiologicalIndicator.id,
            ~counts(Cycle),
            CycleCi.passed,
            ImportedCycle.device_cycle_no,
        )
        .join(Sterilizer, Sterilizer.id == Cycle.sterilizer_id)
        .join(Program, Program.id == Cycle.program_id)
        .outerjoin(BiologicalIndicator, BiologicalIndicator.cycle_id == Cycle.id)
        .outerjoin(CycleCi, CycleCi.cycle_id == Cycle.id)
        .outerjoin(ImportedCycle, ImportedCycle.cycle_id == Cycle.id)
        .where(*conds)
        .order_by(Cycle.at, Cycle.id)
    ).all():
        out.append(
            {
                "load_id": c.id,
                "load_no": c.load_no,
                "sterilizer": st_code,
                "program": prog_name,
                "status": load_status(c.passed, c.ci, ci_passed),
                "source": "typed" if device_no is None else "imported",
                "device_cycle_no": device_no,
                "packs": packs.get(c.id, []),
                "bi_id": bi_id,
                "at": iso(c.at),
                "suspect": c.id in suspects,
                "voided": bool(voided),
                "temp_c": c.temp_c,
                "hold_min": c.hold_min,
                "ci": c.ci,
                "ci_type": c.ci_type,
            }
        )
    return out


# --- air-removal tests -------------------------------------------------------------------------


def record_air_removal(
    ctx: Ctx, *, sterilizer: str, result: str, at: dt.datetime | None = None
) -> tuple[AirRemovalTest, Sterilizer]:
    outcome = v.choice(result, "--result", AIR_RESULTS)
    st = _sterilizer(ctx, sterilizer)
    row = AirRemovalTest(
        sterilizer_id=st.id,
        result=outcome,
        at=ctx.event_time(at),
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("air_removal.record", [row])
    return row, st


# --- biological indicators ---------------------------------------------------------------------


def parse_bi_id(raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 18 or int(text) < 1:
        raise UserError(
            f"BI ID {raw!r} is not a BI number; `sterilog bi list --pending` shows them"
        )
    return int(text)


@dataclass(frozen=True)
class BiReadResult:
    read: BiRead
    cycle: Cycle
    sterilizer: str
    suspect_loads: list[int]
    sessions_affected: int
    locked: bool
    was_locked: bool
    remaining: int


def read_bi(
    ctx: Ctx, bi_id: int, *, result: str, control: str, at: dt.datetime | None = None
) -> BiReadResult:
    s = ctx.session
    outcome = v.choice(result, "--result", BI_RESULTS)
    ctl = v.choice(control, "--control", CONTROL_RESULTS)
    bi = s.get(BiologicalIndicator, bi_id)
    if bi is None:
        raise UnknownRecord("BI", bi_id)
    cycle = s.get(Cycle, bi.cycle_id)
    assert cycle is not None
    when = ctx.event_time(at)
    if when < cycle.at:
        raise UserError(
            f"the read time {iso(when)} is earlier than its load {cycle.id} ({iso(cycle.at)}); "
            "a BI is read after the cycle ran"
        )
    done = s.execute(
        select(BiRead).where(BiRead.bi_id == bi.id, BiRead.valid.is_(True), counts(BiRead)).limit(1)
    ).scalar_one_or_none()
    if done is not None:
        raise UserError(
            f"BI {bi.id} was already read {done.result} with a valid control at "
            f"{iso(done.at)}; a valid read is final"
        )
    st_code = s.execute(
        select(Sterilizer.code).where(Sterilizer.id == cycle.sterilizer_id)
    ).scalar_one()
    pack = ctx.clinic.rules
    before = rules.lock_state(lock_facts(s, cycle.sterilizer_id, ctx.now, pack))
    row = BiRead(
        bi_id=bi.id,
        result=outcome,
        control=ctl,
        valid=ctl == "positive",
        at=when,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("bi.read", [row])
    suspects: list[int] = []
    affected = 0
    if row.valid and outcome == "positive":
        suspects = _suspects_of(s, _Positive(bi.id, when, cycle.id, cycle.at, cycle.sterilizer_id))
        affected = sessions_using(s, suspects)
    after = rules.lock_state(lock_facts(s, cycle.sterilizer_id, ctx.now, pack))
    return BiReadResult(
        read=row,
        cycle=cycle,
        sterilizer=st_code,
        suspect_loads=suspects,
        sessions_affected=affected,
        locked=after.locked,
        was_locked=before.locked,
        remaining=after.remaining,
    )


def sessions_using(session: Session, cycle_ids: Sequence[int]) -> int:
    """How many sessions used a pack from one of these loads."""
    if not cycle_ids:
        return 0
    return int(
        session.execute(
            select(func.count(func.distinct(SessionPack.session_id))).where(
                SessionPack.cycle_id.in_(list(cycle_ids))
            )
        ).scalar_one()
    )


def list_bis(session: Session, *, pending: bool = False) -> list[dict[str, Any]]:
    reads: dict[int, list[BiRead]] = {}
    for r in session.execute(
        select(BiRead).where(counts(BiRead)).order_by(BiRead.at, BiRead.id)
    ).scalars():
        reads.setdefault(r.bi_id, []).append(r)
    out = []
    for bi, cycle, st_code in session.execute(
        select(BiologicalIndicator, Cycle, Sterilizer.code)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .join(Sterilizer, Sterilizer.id == Cycle.sterilizer_id)
        .order_by(Cycle.at, Cycle.id)
    ).all():
        mine = reads.get(bi.id, [])
        valid = next((r for r in mine if r.valid), None)
        if pending and valid is not None:
            continue
        shown = valid or (mine[-1] if mine else None)
        out.append(
            {
                "bi_id": bi.id,
                "load_id": cycle.id,
                "load_no": cycle.load_no,
                "sterilizer": st_code,
                "lot": bi.lot,
                "placed_at": iso(cycle.at),
                "result": valid.result if valid else None,
                "control": shown.control if shown else None,
                "valid": shown.valid if shown else None,
                "read_at": iso(shown.at) if shown else None,
                "read_id": shown.id if shown else None,
                "pending": valid is None,
            }
        )
    return out
