"""Sterilization records (SPEC §6.3): cycles, BIs and their reads, air-removal tests.

The use cases only: every fact they decide on (the lock, the weekly BI, the day's air-removal
tests, suspect loads) and every rule is in the compliance core (`sterilog/compliance/`), which
the gate, status, trace and the reports read too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from sterilog.clock import iso
from sterilog.compliance import cycle_rules, facts, history
from sterilog.compliance.vocab import BI_RESULTS, CONTROL_RESULTS, PASS_FAIL
from sterilog.compliance.voids import counts
from sterilog.errors import Blocked, UnknownRecord, UserError
from sterilog.models import (
    AirRemovalTest,
    BiDetail,
    BiLabEvent,
    BiologicalIndicator,
    BiRead,
    Cycle,
    CyclePack,
    Pack,
    Program,
    SessionPack,
    Sterilizer,
)
from sterilog.services import bi_lab
from sterilog.services import validate as v
from sterilog.services.base import Ctx

MAX_LOAD_NO = 1_000_000_000


def _sterilizer(ctx: Ctx, code: str) -> Sterilizer:
    return ctx.by_code(Sterilizer, v.ident(code, "sterilizer ID"), "sterilizer")


# --- cycle record ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleRecorded:
    cycle: Cycle
    sterilizer: str
    program: str
    packs: list[str]
    bi: BiologicalIndicator | None
    failures: list[str]
    lock: cycle_rules.Lock


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
    bi_expires: str | None = None,
    bi_control_lot: str | None = None,
    at: dt.datetime | None = None,
) -> CycleRecorded:
    s = ctx.session
    pack_rules = ctx.clinic.rules
    readings = cycle_rules.Readings(
        temp_c=v.number(temp_c, "--temp-c", low=v.TEMP_C[0], high=v.TEMP_C[1], unit=" °C"),
        hold_min=v.number(
            hold_min,
            "--hold-min",
            low=v.HOLD_MIN[0],
            high=v.HOLD_MIN[1],
            unit=" min",
            inclusive_low=True,
        ),
        ci=v.choice(ci, "--ci", PASS_FAIL),
        ci_type=ci_type,
    )
    if ci_type is not None and not 1 <= ci_type <= 6:
        raise UserError(f"--ci-type must be an ISO 11140-1 type from 1 to 6, got {ci_type}")
    lot = v.text(bi_lot, "--bi-lot", required=False, limit=100)
    if bi_lot is not None and lot is None:
        raise UserError("--bi-lot must not be empty")
    control_lot = v.text(bi_control_lot, "--bi-control-lot", required=False, limit=100)
    if lot is None and (bi_expires is not None or bi_control_lot is not None):
        raise UserError("--bi-expires and --bi-control-lot describe the BI: give --bi-lot too")
    if control_lot is not None and control_lot != lot:
        raise UserError(
            f"the control's lot {control_lot!r} is not the BI's lot {lot!r}; a spore test needs "
            "a control from the same lot (CDC 2003)"
        )
    expires = bi_lab.parse_expiry(bi_expires) if bi_expires is not None else None
    if lot is not None and expires is None and pack_rules.require_bi_expiry:
        raise UserError(
            f"the rule pack {pack_rules.name!r} requires the BI's expiry: give --bi-expires "
            "YYYY-MM[-DD] from the BI's label"
        )
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
    if expires is not None and expires < when.astimezone(ctx.clinic.tz).date():
        raise UserError(
            f"BI lot {lot} expired on {expires.isoformat()}; an expired BI proves nothing. "
            "Use a BI from an unexpired lot"
        )
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

    cycle_facts = history.cycle_facts(
        s,
        sterilizer_id=st.id,
        sterilizer=st.code,
        sterilizer_type=st.type,
        at=when,
        tz=ctx.clinic.tz,
        pack=pack_rules,
        is_test=not pack_rows,
        carries_bi=lot is not None,
    )
    lock = cycle_facts.lock
    reasons = cycle_rules.check_cycle(cycle_facts)
    if reasons:
        raise Blocked(reasons, f"cycle on {st.code} blocked")

    failures = cycle_rules.cycle_failures(
        readings,
        cycle_rules.ProgramSpec(prog.name, prog.temp_c, prog.hold_min),
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
    if bi is not None and (expires is not None or control_lot is not None):
        s.flush()
        detail = BiDetail(
            bi_id=bi.id, expires=expires, control_lot=control_lot, recorded_at=ctx.now
        )
        ctx.add(detail)
        rows.append(detail)
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
    suspects = facts.suspect_load_ids(session, st_id)
    out = []
    from sterilog.compliance.rules import load_status
    from sterilog.models import CycleCi, ImportedCycle

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
    from sterilog.services import late_marks

    marks = late_marks.mark(session, Cycle, (r["load_id"] for r in out))
    return [{**r, **marks[r["load_id"]]} for r in out]


# --- air-removal tests -------------------------------------------------------------------------


def record_air_removal(
    ctx: Ctx, *, sterilizer: str, result: str, at: dt.datetime | None = None
) -> tuple[AirRemovalTest, Sterilizer]:
    outcome = v.choice(result, "--result", PASS_FAIL)
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
    exposure_id: int | None = None


def read_bi(
    ctx: Ctx,
    bi_id: int,
    *,
    result: str,
    control: str,
    at: dt.datetime | None = None,
    report_no: str | None = None,
    control_lot: str | None = None,
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
    report = v.text(report_no, "--report-no", required=False, limit=100)
    if report_no is not None and report is None:
        raise UserError("--report-no must not be empty")
    ctl_lot = v.text(control_lot, "--control-lot", required=False, limit=100)
    if ctl_lot is not None and ctl_lot != bi.lot:
        raise UserError(
            f"the control's lot {ctl_lot!r} is not BI {bi.id}'s lot {bi.lot!r}; read it "
            "against a control from the same lot"
        )
    if bi_lab.is_invalid(s, bi.id):
        raise UserError(f"BI {bi.id} was declared invalid (`bi invalid`); it cannot be read")
    done = history.bi_result(s, bi.id)
    if done is not None and done.valid:
        raise UserError(
            f"BI {bi.id} was already read {done.result} with a valid control at "
            f"{iso(done.read_at)}; a valid read is final"
        )
    st_code = s.execute(
        select(Sterilizer.code).where(Sterilizer.id == cycle.sterilizer_id)
    ).scalar_one()
    pack = ctx.clinic.rules
    before = _lock(s, cycle.sterilizer_id, ctx.now, pack)
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
    written: list[Any] = [row]
    if report is not None:
        s.flush()
        event = BiLabEvent(
            bi_id=bi.id,
            kind="report",
            note=report,
            read_id=row.id,
            at=when,
            recorded_at=ctx.now,
            operator_id=ctx.actor_id,
        )
        ctx.add(event)
        written.append(event)
    s.flush()
    suspects: list[int] = []
    affected = 0
    opened: list[Any] = []
    if row.valid and outcome == "positive":
        suspects = facts.suspect_loads_of_bi(s, bi.id)
        affected = sessions_using(s, suspects)
        opened = _open_exposure(ctx, bi.id, cycle.id, st_code, suspects)
    ctx.audit("bi.read", [*written, *opened])
    after = _lock(s, cycle.sterilizer_id, ctx.now, pack)
    return BiReadResult(
        read=row,
        cycle=cycle,
        sterilizer=st_code,
        suspect_loads=suspects,
        sessions_affected=affected,
        locked=after.locked,
        was_locked=before.locked,
        remaining=after.remaining,
        exposure_id=opened_id(opened),
    )


def _open_exposure(
    ctx: Ctx, bi_id: int, cycle_id: int, sterilizer: str, suspects: list[int]
) -> list[Any]:
    """Issue 13: the clients treated with packs of the loads this BI made suspect (the list
    `trace bi` gives) become an exposure to notify."""
    from sterilog.services import exposures, trace

    summary = f"positive BI {bi_id} (load {cycle_id}, sterilizer {sterilizer})"
    sessions = trace.loads_sessions(ctx.session, suspects)
    return exposures.open_rows(ctx, "bi", bi_id, summary, sessions)


def opened_id(rows: list[Any]) -> int | None:
    from sterilog.services.exposures import opened_id as first

    return first(rows)


def _lock(s: Session, sterilizer_id: int, at: dt.datetime, pack: Any) -> cycle_rules.Lock:
    return cycle_rules.lock_state(
        history.lock_facts(
            s, sterilizer_id, at, pack.requalify_bis, pack.requalify_bis_after_repair
        )
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
    """Every BI as it counts (compliance.history: voided reads never count)."""
    results = history.bi_results(session)
    lab = bi_lab.lab_states(session)
    out = []
    for bi_id, cycle, st_code in session.execute(
        select(BiologicalIndicator.id, Cycle, Sterilizer.code)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .join(Sterilizer, Sterilizer.id == Cycle.sterilizer_id)
        .order_by(Cycle.at, Cycle.id)
    ).all():
        b = results[int(bi_id)]
        if pending and not b.pending:
            continue
        out.append(
            {
                "bi_id": b.bi_id,
                "load_id": cycle.id,
                "load_no": cycle.load_no,
                "sterilizer": st_code,
                "lot": b.lot,
                "placed_at": iso(cycle.at),
                "result": b.result,
                "control": b.control,
                "valid": b.valid,
                "read_at": iso(b.read_at),
                "read_id": b.read_id,
                "pending": b.pending,
                "state": bi_lab.state_of(b, lab.get(b.bi_id)),
                "lab": lab[b.bi_id].lab if b.bi_id in lab else None,
            }
        )
    # The late mark is the counted read's (a pending BI without a read has none).
    from sterilog.services import late_marks

    read_ids: list[int | None] = [r["read_id"] for r in out]  # type: ignore[misc]
    marks = late_marks.mark(session, BiRead, read_ids)
    return [
        {**r, **marks.get(rid or 0, late_marks.unmarked())}
        for r, rid in zip(out, read_ids, strict=True)
    ]
