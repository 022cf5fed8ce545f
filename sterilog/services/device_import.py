"""`cycle import`: the autoclave's own cycle records become loads and air-removal tests.

The parsers (sterilog/importers) read the file; here the cycles are matched to the sterilizer
(serial) and its programs, judged (sterilization.imported_cycle_failures: the device's verdict
and the hold computed from its trace), and recorded with the raw file as an attachment whose
SHA-256 is in the audit entry. Everything is checked before anything is written: one bad file
or one mismatch writes nothing.

Also the continuity of the device's cycle counter and clock (`continuity`), which `status`,
`trace load` and the monthly report show.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sterilog import importers
from sterilog.compliance import cycle_rules, history, rules, vocab
from sterilog.compliance.vocab import NO_CI
from sterilog.errors import Blocked, UnknownRecord, UserError
from sterilog.importers import DeviceCycle, hold_stats
from sterilog.models import (
    AirRemovalTest,
    Attachment,
    BiologicalIndicator,
    Cycle,
    CycleCi,
    CyclePack,
    ImportedCycle,
    Pack,
    Program,
    Sterilizer,
    SterilizerSerial,
)
from sterilog.services import attachments as att
from sterilog.services import validate as v
from sterilog.services.base import Ctx

TEMP_TOLERANCE_C = 0.5  # a program "fits" a record within this of its temperature ...
HOLD_TOLERANCE_MIN = 0.05  # ... and this of its holding time (printers round)


def current_serial(session: Session, sterilizer_id: int) -> str | None:
    """The serial in force: the latest `sterilizer update --serial`, else the one added with."""
    newer = session.execute(
        select(SterilizerSerial.serial)
        .where(SterilizerSerial.sterilizer_id == sterilizer_id)
        .order_by(SterilizerSerial.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if newer is not None:
        return str(newer)
    return session.execute(
        select(Sterilizer.serial).where(Sterilizer.id == sterilizer_id)
    ).scalar_one_or_none()


def update_serial(ctx: Ctx, code: str, serial: str) -> SterilizerSerial:
    st = ctx.by_code(Sterilizer, v.ident(code, "sterilizer ID"), "sterilizer")
    value = v.name(serial, "--serial")
    assert value is not None
    if value == current_serial(ctx.session, st.id):
        raise UserError(f"sterilizer {st.code}'s serial is already {value!r}")
    row = SterilizerSerial(
        sterilizer_id=st.id, serial=value, recorded_at=ctx.now, operator_id=ctx.actor_id
    )
    ctx.add(row)
    ctx.audit("sterilizer.update", [row])
    return row


# --- import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    name: str
    data: bytes


@dataclass
class ImportedRow:
    device_cycle_no: int
    kind: str  # "load" | "air-removal"
    load_id: int | None
    load_no: int | None
    air_test_id: int | None
    program: str
    started_at: dt.datetime
    hold_s: float
    temp_min_c: float | None
    temp_max_c: float | None
    pressure_min_kpa: float | None
    pressure_max_kpa: float | None
    device_ok: bool
    device_reason: str | None
    device_hold_s: float | None
    status: str  # one of vocab.LOAD_STATUSES
    failures: list[str]
    file: str
    sha256: str


@dataclass
class ImportResult:
    sterilizer: str
    serial: str
    cycles: list[ImportedRow] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _program_for(programs: Sequence[Program], c: DeviceCycle, st: str, name: str) -> Program:
    if c.set_temp_c is None or c.set_hold_min is None:
        raise UserError(
            f"{name}: device cycle {c.cycle_no} does not state its program's temperature and "
            f"time ({c.program!r}); it cannot be matched to a program of {st}"
        )
    temp, hold = c.set_temp_c, c.set_hold_min
    fits = [
        p
        for p in programs
        if abs(p.temp_c - temp) <= TEMP_TOLERANCE_C and abs(p.hold_min - hold) <= HOLD_TOLERANCE_MIN
    ]
    if not fits:
        known = ", ".join(f"{p.name} {p.temp_c:g} °C/{p.hold_min:g} min" for p in programs)
        raise UserError(
            f"{name}: device cycle {c.cycle_no} ran {c.program!r} ({c.set_temp_c:.1f} °C / "
            f"{c.set_hold_min:g} min) and no program of {st} fits it (its programs: "
            f"{known or 'none'}); add one with `sterilog sterilizer program {st} NAME "
            f"--temp-c {c.set_temp_c:.1f} --hold-min {c.set_hold_min:g}`"
        )
    return min(fits, key=lambda p: (abs(p.temp_c - temp), p.id))


def import_cycles(
    ctx: Ctx,
    *,
    sterilizer: str,
    files: Sequence[SourceFile],
    fmt: str = "auto",
    packs: Sequence[str] = (),
    ci: str | None = None,
    ci_type: int | None = None,
    bi_lot: str | None = None,
) -> ImportResult:
    s = ctx.session
    if fmt != "auto" and fmt not in importers.FORMATS:
        raise UserError(f"--format must be auto or one of {', '.join(importers.FORMATS)}")
    if not files:
        raise UserError("give at least one FILE")
    single = packs or ci is not None or bi_lot is not None or ci_type is not None
    if single and len(files) != 1:
        raise UserError("--pack, --ci, --ci-type and --bi-lot go with one FILE only")
    if ci_type is not None and ci is None:
        raise UserError("--ci-type goes with --ci")
    if ci is not None:
        ci = v.choice(ci, "--ci", vocab.PASS_FAIL)
    if ci_type is not None and not 1 <= ci_type <= 6:
        raise UserError(f"--ci-type must be an ISO 11140-1 type from 1 to 6, got {ci_type}")
    lot = v.text(bi_lot, "--bi-lot", required=False, limit=100)
    if bi_lot is not None and lot is None:
        raise UserError("--bi-lot must not be empty")
    st = ctx.by_code(Sterilizer, v.ident(sterilizer, "sterilizer ID"), "sterilizer")
    serial = current_serial(s, st.id)
    if serial is None:
        raise UserError(
            f"sterilizer {st.code} has no serial on file, so its records cannot be matched; "
            f"set it with `sterilog sterilizer update {st.code} --serial SERIAL`"
        )
    pack_rows: list[Pack] = []
    for code in packs:
        row = ctx.by_code(Pack, v.ident(code, "pack ID"), "pack")
        if row in pack_rows:
            raise UserError(f"pack {code!r} is given twice")
        pack_rows.append(row)
    programs = list(
        s.execute(select(Program).where(Program.sterilizer_id == st.id).order_by(Program.id))
        .scalars()
        .all()
    )
    tz = ctx.clinic.tz

    # 1. Read and check everything; nothing is written until all of it is sound.
    parsed: list[tuple[SourceFile, str, list[DeviceCycle]]] = []
    for f in files:
        att.check_size(f.name, f.data)
        try:
            used, cycles = importers.parse(f.data, fmt)
        except UserError as exc:
            raise UserError(f"{f.name}: {exc.message}") from None
        parsed.append((f, used, cycles))
    result = ImportResult(sterilizer=st.code, serial=serial)
    seen: set[int] = set()
    plan: list[tuple[SourceFile, str, list[tuple[DeviceCycle, Program, dt.datetime]]]] = []
    for f, used, cycles in parsed:
        todo = []
        for c in cycles:
            if c.serial != serial:
                raise UserError(
                    f"{f.name}: device cycle {c.cycle_no} was recorded by serial {c.serial!r}, "
                    f"but sterilizer {st.code}'s serial is {serial!r}; import it for the "
                    "sterilizer that ran it, or correct the serial with `sterilog sterilizer "
                    "update`"
                )
            prog = _program_for(programs, c, st.code, f.name)
            at = c.started_at.replace(tzinfo=tz).astimezone(dt.UTC)
            if at > ctx.now:
                raise UserError(
                    f"{f.name}: device cycle {c.cycle_no} is dated {c.started_at:%Y-%m-%d %H:%M}"
                    ", in the future; check the sterilizer's clock"
                )
            dup = s.execute(
                select(ImportedCycle.id).where(
                    ImportedCycle.serial == serial, ImportedCycle.device_cycle_no == c.cycle_no
                )
            ).scalar_one_or_none()
            if dup is not None or c.cycle_no in seen:
                if c.cycle_no not in result.skipped:
                    result.skipped.append(c.cycle_no)
                continue
            seen.add(c.cycle_no)
            todo.append((c, prog, at))
        if todo:
            plan.append((f, used, todo))
        else:
            result.skipped_files.append(f.name)
    planned = [c for _, _, todo in plan for c in todo]
    if (pack_rows or lot is not None or ci is not None) and not planned:
        taken = s.execute(
            select(ImportedCycle.device_cycle_no, ImportedCycle.cycle_id).where(
                ImportedCycle.serial == serial,
                ImportedCycle.device_cycle_no.in_(result.skipped),
            )
        ).all()
        where = ", ".join(
            f"device cycle {no}" + (f" is load {cid}" if cid is not None else "")
            for no, cid in taken
        )
        raise UserError(
            f"the file's cycle was already imported ({where}); --pack, --ci and --bi-lot "
            "cannot be added to it now (use `sterilog cycle ci` for its CI)"
        )
    if pack_rows and any(c.air_removal_test for c, _, _ in planned):
        raise UserError("the file holds an air-removal test cycle; packs do not go in it")
    if pack_rows and len(planned) > 1:
        raise UserError("--pack needs a file with one cycle; this one holds several")

    # 2. Write: per file its attachment, then per cycle the load or test and its evidence.
    rows: list[Any] = []
    for f, used, todo in plan:
        source = att.new_attachment(
            ctx,
            kind="sterilizer",
            record_id=st.id,
            filename=f.name,
            data=f.data,
            note=f"device cycle record ({used}) imported by `cycle import`",
        )
        rows.append(source)
        for c, prog, at in todo:
            rows.extend(_record(ctx, st, prog, c, at, source, pack_rows, ci, ci_type, lot, result))
            if pack_rows:
                _check_rules(ctx, st, at, pack_rows, lot)
    if rows:
        ctx.audit("cycle.import", rows)
    return result


def _check_rules(
    ctx: Ctx, st: Sterilizer, at: dt.datetime, packs: Sequence[Pack], lot: str | None
) -> None:
    """A load with packs is held to the rules a typed one is (`cycle record`): packs must not be
    put on a load the sterilizer was not allowed to run."""
    s = ctx.session
    pack_rules = ctx.clinic.rules
    facts = history.cycle_facts(
        s,
        sterilizer_id=st.id,
        sterilizer=st.code,
        sterilizer_type=st.type,
        at=at,
        tz=ctx.clinic.tz,
        pack=pack_rules,
        is_test=False,
        carries_bi=lot is not None,
    )
    # The cycle being imported is already flushed: its own BI must not count for itself twice,
    # which `carries_bi` already expresses.
    reasons = cycle_rules.check_cycle(facts)
    if reasons:
        raise Blocked(reasons, f"load with packs on {st.code} blocked")


def _record(
    ctx: Ctx,
    st: Sterilizer,
    prog: Program,
    c: DeviceCycle,
    at: dt.datetime,
    source: Attachment,
    packs: Sequence[Pack],
    ci: str | None,
    ci_type: int | None,
    lot: str | None,
    result: ImportResult,
) -> list[Any]:
    s = ctx.session
    tz = ctx.clinic.tz
    h = hold_stats(c.samples, prog.temp_c)
    failures = cycle_rules.imported_cycle_failures(
        device_ok=c.device_ok,
        device_reason=c.device_reason,
        hold_s=h.hold_s,
        program=cycle_rules.ProgramSpec(prog.name, prog.temp_c, prog.hold_min),
        ci=ci,
        ci_type=ci_type,
        min_ci_type=ctx.clinic.rules.min_ci_type,
    )
    passed = not failures
    out: list[Any] = []
    cycle: Cycle | None = None
    air: AirRemovalTest | None = None
    if c.air_removal_test:
        air = AirRemovalTest(
            sterilizer_id=st.id,
            result="pass" if passed else "fail",
            at=at,
            recorded_at=ctx.now,
            operator_id=ctx.actor_id,
        )
        ctx.add(air)
        s.flush()
        out.append(air)
    else:
        top = s.execute(
            select(func.max(Cycle.load_no)).where(Cycle.sterilizer_id == st.id)
        ).scalar_one_or_none()
        cycle = Cycle(
            sterilizer_id=st.id,
            program_id=prog.id,
            load_no=int(top or 0) + 1,
            temp_c=h.temp_min_c if h.temp_min_c is not None else 0.0,
            hold_min=round(h.hold_s / 60.0, 4),
            ci=ci if ci is not None else NO_CI,
            ci_type=ci_type,
            passed=passed,
            at=at,
            recorded_at=ctx.now,
            operator_id=ctx.actor_id,
        )
        ctx.add(cycle)
        s.flush()
        out.append(cycle)
        extra: list[Any] = [
            CyclePack(cycle_id=cycle.id, pack_id=p.id, recorded_at=ctx.now) for p in packs
        ]
        if lot is not None:
            extra.append(BiologicalIndicator(cycle_id=cycle.id, lot=lot, recorded_at=ctx.now))
        ctx.add(*extra)
        s.flush()
        out.extend(extra)
    ended = c.ended_at.replace(tzinfo=tz).astimezone(dt.UTC) if c.ended_at else None
    ev = ImportedCycle(
        sterilizer_id=st.id,
        serial=c.serial,
        device_cycle_no=c.cycle_no,
        format=c.format,
        kind="air-removal" if air is not None else "load",
        cycle_id=cycle.id if cycle is not None else None,
        air_test_id=air.id if air is not None else None,
        source_id=source.id,
        lines=f"{c.first_line}-{c.last_line}",
        started_at=at,
        ended_at=ended,
        program_text=c.program[:200],
        set_temp_c=c.set_temp_c,
        set_hold_min=c.set_hold_min,
        device_ok=c.device_ok,
        device_reason=c.device_reason,
        device_hold_s=c.device_hold_s,
        hold_s=h.hold_s,
        temp_min_c=h.temp_min_c,
        temp_max_c=h.temp_max_c,
        pressure_min_kpa=h.pressure_min_kpa,
        pressure_max_kpa=h.pressure_max_kpa,
        pressure_unit=c.pressure_unit,
        samples=h.samples,
        passed=passed,
        failures=json.dumps(failures, ensure_ascii=False),
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(ev)
    s.flush()
    out.append(ev)
    if cycle is not None:  # a load: the one load status (its CI may be read later)
        status = rules.load_status(passed, cycle.ci, None)
    else:  # an air-removal test
        status = vocab.LOAD_PASSED if passed else vocab.LOAD_FAILED
    result.cycles.append(
        ImportedRow(
            device_cycle_no=c.cycle_no,
            kind=ev.kind,
            load_id=cycle.id if cycle else None,
            load_no=cycle.load_no if cycle else None,
            air_test_id=air.id if air else None,
            program=prog.name,
            started_at=at,
            hold_s=h.hold_s,
            temp_min_c=h.temp_min_c,
            temp_max_c=h.temp_max_c,
            pressure_min_kpa=h.pressure_min_kpa,
            pressure_max_kpa=h.pressure_max_kpa,
            device_ok=c.device_ok,
            device_reason=c.device_reason,
            device_hold_s=c.device_hold_s,
            status=status,
            failures=failures,
            file=source.filename,
            sha256=source.sha256,
        )
    )
    return out


# --- the CI of an imported load ----------------------------------------------------------------


def record_ci(ctx: Ctx, load_id: int, *, ci: str, ci_type: int | None) -> tuple[CycleCi, Cycle]:
    s = ctx.session
    value = v.choice(ci, "--ci", vocab.PASS_FAIL)
    if ci_type is not None and not 1 <= ci_type <= 6:
        raise UserError(f"--ci-type must be an ISO 11140-1 type from 1 to 6, got {ci_type}")
    cycle = s.get(Cycle, load_id)
    if cycle is None:
        raise UnknownRecord("load", load_id)
    if cycle.ci != NO_CI:
        raise UserError(
            f"load {load_id}'s chemical indicator was recorded with the cycle ({cycle.ci}); "
            "a CI reading is final"
        )
    done = s.execute(select(CycleCi).where(CycleCi.cycle_id == load_id)).scalar_one_or_none()
    if done is not None:
        raise UserError(
            f"load {load_id}'s chemical indicator was already read {done.ci}; a CI reading is final"
        )
    failures = cycle_rules.ci_failures(value, ci_type, ctx.clinic.rules.min_ci_type)
    row = CycleCi(
        cycle_id=load_id,
        ci=value,
        ci_type=ci_type,
        passed=not failures,
        at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("cycle.ci", [row])
    return row, cycle


# --- continuity of the device's counter and clock ----------------------------------------------


@dataclass(frozen=True)
class Anomaly:
    sterilizer: str
    serial: str
    kind: str  # "gap" | "order"
    previous_no: int
    previous_at: dt.datetime
    device_cycle_no: int
    at: dt.datetime
    missing: int  # cycles missing for a gap, 0 otherwise

    def message(self, tz: Any) -> str:
        def when(t: dt.datetime) -> str:
            return t.astimezone(tz).strftime("%Y-%m-%d %H:%M")

        if self.kind == "gap":
            first, last = self.previous_no + 1, self.device_cycle_no - 1
            span = str(first) if first == last else f"{first}-{last}"
            return (
                f"{self.sterilizer}: device cycle(s) {span} not imported ({self.missing} "
                f"missing between {self.previous_no} on {when(self.previous_at)} and "
                f"{self.device_cycle_no} on {when(self.at)})"
            )
        return (
            f"{self.sterilizer}: device cycle {self.device_cycle_no} is dated {when(self.at)}, "
            f"before cycle {self.previous_no} ({when(self.previous_at)}): the counter went "
            "backwards or the device clock was changed"
        )

    def as_dict(self, tz: Any) -> dict[str, Any]:
        from sterilog.clock import iso

        return {
            "sterilizer": self.sterilizer,
            "serial": self.serial,
            "kind": self.kind,
            "previous_no": self.previous_no,
            "previous_at": iso(self.previous_at),
            "device_cycle_no": self.device_cycle_no,
            "at": iso(self.at),
            "missing": self.missing,
            "message": self.message(tz),
        }


def continuity(session: Session, sterilizer_id: int | None = None) -> list[Anomaly]:
    """Gaps in the imported device cycle numbers, and cycles dated before the one numbered
    before them, per sterilizer and serial, in number order. One query, one pass."""
    q = (
        select(
            Sterilizer.code,
            ImportedCycle.serial,
            ImportedCycle.device_cycle_no,
            ImportedCycle.started_at,
        )
        .join(Sterilizer, Sterilizer.id == ImportedCycle.sterilizer_id)
        .order_by(Sterilizer.code, ImportedCycle.serial, ImportedCycle.device_cycle_no)
    )
    if sterilizer_id is not None:
        q = q.where(ImportedCycle.sterilizer_id == sterilizer_id)
    out: list[Anomaly] = []
    prev: tuple[str, str, int, dt.datetime] | None = None
    for code, serial, no, at in session.execute(q).all():
        if prev is not None and prev[0] == code and prev[1] == serial:
            if no > prev[2] + 1:
                out.append(Anomaly(code, serial, "gap", prev[2], prev[3], no, at, no - prev[2] - 1))
            if at < prev[3]:
                out.append(Anomaly(code, serial, "order", prev[2], prev[3], no, at, 0))
        prev = (code, serial, int(no), at)
    return out


def evidence_of_load(session: Session, cycle_id: int) -> dict[str, Any] | None:
    """The device evidence behind a load (None: it was typed)."""
    from sterilog.clock import iso

    row = session.execute(
        select(ImportedCycle, Attachment.filename, Attachment.sha256)
        .join(Attachment, Attachment.id == ImportedCycle.source_id)
        .where(ImportedCycle.cycle_id == cycle_id)
    ).first()
    if row is None:
        return None
    ev, name, digest = row
    return {
        "source": "imported",
        "device_serial": ev.serial,
        "device_cycle_no": ev.device_cycle_no,
        "format": ev.format,
        "file": name,
        "sha256": digest,
        "attachment_id": ev.source_id,
        "lines": ev.lines,
        "device_started_at": iso(ev.started_at),
        "program_text": ev.program_text,
        "device_ok": ev.device_ok,
        "device_reason": ev.device_reason,
        "device_hold_s": ev.device_hold_s,
        "hold_s": ev.hold_s,
        "temp_min_c": ev.temp_min_c,
        "temp_max_c": ev.temp_max_c,
        "pressure_min_kpa": ev.pressure_min_kpa,
        "pressure_max_kpa": ev.pressure_max_kpa,
        "pressure_unit": ev.pressure_unit,
        "failures": json.loads(ev.failures),
    }
