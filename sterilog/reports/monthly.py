"""The monthly compliance report (SPEC §8): gather with `rows`, lay out with `render`.

`rows` runs a bounded number of set-based queries whatever the size of the month (one for all
cycles with their packs aggregated, one for all sessions joined to room, practitioner and
device, one for the clean gaps of every session, ...), never one query per row of a big
section. `render` is pure ReportLab over the plain data.

Gaps (each one stamps every page INCOMPLETE) are the `gap` rows of the one rule table
(`sterilog/compliance/table.py`, listed in docs/gate.md): each applies the gate's or
`cycle record`'s own rule function to the facts as of the record's own time, read through
`sterilog/compliance/history.py` (the same plumbing and void filter as the gate's queries,
batched per month):

- a cycle that `sterilizer-bi-overdue` blocks (no BI in the rule pack's interval before it);
- a cycle that `air-removal-test-missing` / `-failed` blocks (one line per sterilizer and day);
- a cycle without a chemical-indicator result;
- a session that `room-not-cleaned` or `device-not-reprocessed` blocks as of its start;
- a session started in the month that is still open.

Voided records (SPEC §7) do not count for anything here; they are printed struck through.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session as DbSession

from sterilog import audit
from sterilog.audit import ClockAnomaly
from sterilog.clock import local_day_bounds
from sterilog.compliance import cycle_rules as cyc
from sterilog.compliance import facts, history
from sterilog.compliance import rules as crules
from sterilog.compliance.voids import counts, voids_touching
from sterilog.models import (
    AirRemovalTest,
    AuditEntry,
    BiologicalIndicator,
    BiRead,
    CartridgeLot,
    CartridgeReceipt,
    CartridgeUnit,
    Cycle,
    CyclePack,
    Device,
    DeviceClean,
    Discard,
    Disinfectant,
    Incident,
    Pack,
    Program,
    Recall,
    Refusal,
    Room,
    RoomClean,
    Session,
    SessionEnd,
    SessionPack,
    Signature,
    Staff,
    Sterilizer,
)
from sterilog.reports import appendix, decision
from sterilog.reports.appendix import Appendix
from sterilog.reports.decision import Decision, decide
from sterilog.reports.late import LateEntry
from sterilog.reports.marks import Marks as _Marks
from sterilog.reports.marks import mono_style as _mono_style
from sterilog.rulepack import RulePack

DASH = "\u2014"

# --- plain data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A span of clinic days: [start, end) in UTC, and its label."""

    label: str
    first_day: dt.date
    last_day: dt.date
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class GapRow:
    area: str
    what: str


@dataclass(frozen=True)
class Verdict:
    area: str
    verdict: str  # "OK", "GAPS" or "ATTENTION"
    detail: str


@dataclass(frozen=True)
class CycleRow:
    load_id: int
    at: dt.datetime
    sterilizer: str
    load_no: int
    program: str
    program_temp_c: float
    program_hold_min: float
    temp_c: float
    hold_min: float
    ci: str | None
    ci_type: int | None
    bi: str | None
    packs: tuple[str, ...]
    operator: str
    passed: bool
    suspect: bool
    voided: bool
    # Issue 15: where the readings came from, and the documents kept with the load.
    source: str = "typed"  # "typed" | "imported"
    device_cycle_no: int | None = None
    ci_pending: bool = False  # imported, chemical indicator not read yet
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttachmentRow:
    attachment_id: int
    record: str  # "load 12", "sterilizer AC1", ...
    filename: str
    size: int
    sha256: str
    note: str | None
    recorded_at: dt.datetime


@dataclass(frozen=True)
class BiRow:
    bi_id: int
    load_id: int
    load_no: int
    sterilizer: str
    lot: str
    placed_at: dt.datetime
    read_id: int | None
    read_at: dt.datetime | None
    result: str | None
    control: str | None
    valid: bool | None
    operator: str
    voided: bool


@dataclass(frozen=True)
class AirRow:
    test_id: int
    at: dt.datetime
    sterilizer: str
    result: str
    operator: str
    voided: bool


@dataclass(frozen=True)
class CleanRow:
    kind_of_record: str  # "room-clean" or "device-clean" (the void kind)
    record_id: int
    at: dt.datetime
    target: str
    kind: str
    product: str
    contact_min: float
    operator: str
    note: str | None
    voided: bool


@dataclass(frozen=True)
class SessionRow:
    session_id: int
    at: dt.datetime
    ended_at: dt.datetime | None
    room: str
    practitioner: str
    device: str
    gtin: str
    lot: str
    serial: str | None
    expiry: dt.date
    packs: tuple[str, ...]
    client: str


@dataclass(frozen=True)
class RefusalRow:
    refusal_id: int
    at: dt.datetime
    room: str
    device: str
    practitioner: str
    client: str
    cartridge: str
    codes: tuple[str, ...]


@dataclass(frozen=True)
class StockRow:
    gtin: str
    lot: str
    expiry: dt.date
    received: int
    used: int
    discarded: int
    expired: int
    recalled: bool
    on_hand_at_end: int


@dataclass(frozen=True)
class ReceiptRow:
    at: dt.datetime
    gtin: str
    lot: str
    expiry: dt.date
    quantity: int
    supplier: str | None
    invoice: str | None
    operator: str
    first_id: int = 0  # the delivery's first receipt row (late-entry lookup)


@dataclass(frozen=True)
class DiscardRow:
    discard_id: int
    at: dt.datetime
    gtin: str
    lot: str
    serial: str | None
    reason: str
    operator: str
    voided: bool


@dataclass(frozen=True)
class AffectedSession:
    session_id: int
    at: dt.datetime
    client: str
    room: str
    practitioner: str


@dataclass(frozen=True)
class RecallRow:
    recall_id: int
    at: dt.datetime
    gtin: str
    lot: str
    reason: str
    operator: str
    voided: bool
    sessions: tuple[AffectedSession, ...]


@dataclass(frozen=True)
class IncidentRow:
    incident_id: int
    at: dt.datetime
    kind: str
    severity: str | None
    note: str
    operator: str
    voided: bool
    trace: dict[str, Any]  # session_detail of its session; {} for one without a session


@dataclass(frozen=True)
class VoidRow:
    kind: str
    record_id: int
    record_at: dt.datetime
    summary: str
    reason: str
    by: str
    at: dt.datetime


@dataclass(frozen=True)
class SignatureRow:
    name: str
    at: dt.datetime
    meaning: str
    head: str
    signature_id: int = 0
    since: str = ""  # bound to the month: unchanged since, or what changed (signoff.bindings)


@dataclass(frozen=True)
class Integrity:
    entries_in_period: int
    ok: bool
    entries: int
    head: str
    problems: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MonthlyData:
    period: Period
    rules_name: str
    gaps: list[GapRow]
    verdicts: list[Verdict]
    sessions_per_day: list[tuple[dt.date, int, int]]  # day, sessions, refusals
    cycles_per_week: list[tuple[str, int, int]]  # ISO week label, passed, failed
    cycles: list[CycleRow]
    bis: list[BiRow]
    air_tests: list[AirRow]
    cleans: list[CleanRow]
    sessions: list[SessionRow]
    refusals: list[RefusalRow]
    stock: list[StockRow]
    receipts: list[ReceiptRow]
    discards: list[DiscardRow]
    recalls: list[RecallRow]
    incidents: list[IncidentRow]
    voids: list[VoidRow]
    integrity: Integrity
    signatures: list[SignatureRow]
    counts: dict[str, int] = field(default_factory=dict)
    # Time and identity (sterilog.reports.late, audit.clock_anomalies): shown, never gaps.
    late: dict[tuple[str, int], LateEntry] = field(default_factory=dict)
    late_closers: list[tuple[LateEntry, int]] = field(default_factory=list)
    clock_anomalies: list[ClockAnomaly] = field(default_factory=list)
    attachments: list[AttachmentRow] = field(default_factory=list)
    # Issue 16: weeks declared without a spore test (`bi skip`): listed, never gaps.
    declared_weeks: list[tuple[str, str, str]] = field(default_factory=list)
    # Page 1 decides (issue 13, sterilog.reports.decision): exposures, locks, why not green.
    decision: Decision = field(default_factory=Decision)
    # passed loads of the week later made suspect by a positive BI (their own chart series)
    suspect_per_week: dict[str, int] = field(default_factory=dict)
    appendix: Appendix = field(default_factory=Appendix)  # sterilog.reports.appendix

    @property
    def incomplete(self) -> bool:
        return bool(self.gaps)


# --- gathering --------------------------------------------------------------------------------


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    first = dt.date(year, month, 1)
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    return Period(
        label=first.strftime("%B %Y"),
        first_day=first,
        last_day=last,
        start=local_day_bounds(first, tz)[0],
        end=local_day_bounds(last, tz)[1],
    )


def day_period(first: dt.date, last: dt.date, tz: ZoneInfo) -> Period:
    label = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return Period(label, first, last, local_day_bounds(first, tz)[0], local_day_bounds(last, tz)[1])


def staff_names(db: DbSession) -> dict[int, str]:
    """Staff id -> name (a clinic has tens of staff: one query, then O(1) per row)."""
    return {int(i): str(n) for i, n in db.execute(select(Staff.id, Staff.name)).all()}


def _in(column: Any, period: Period) -> Any:
    return and_(column >= period.start, column < period.end)


def _voided_ids(db: DbSession, kind: str) -> set[int]:
    return facts.voided_ids(db, kind)


def rows(
    db: DbSession,
    year: int,
    month: int,
    *,
    tz: ZoneInfo,
    now: dt.datetime,
    rules: RulePack,
) -> MonthlyData:
    """Everything the monthly report prints, as plain data, as the database says at `now`."""
    period = month_period(year, month, tz)
    names = staff_names(db)

    def who(staff_id: int | None) -> str:
        return names.get(staff_id, DASH) if staff_id is not None else DASH

    # -- sterilization: every cycle of the month, packs and BI aggregated in two queries -------
    packs_of: dict[int, list[str]] = defaultdict(list)
    for cycle_id, code in db.execute(
        select(CyclePack.cycle_id, Pack.code)
        .join(Pack, Pack.id == CyclePack.pack_id)
        .join(Cycle, Cycle.id == CyclePack.cycle_id)
        .where(_in(Cycle.at, period))
        .order_by(CyclePack.id)
    ).all():
        packs_of[int(cycle_id)].append(str(code))
    suspects = facts.suspect_load_ids(db)
    voided_cycles = _voided_ids(db, "cycle")
    voided_reads = _voided_ids(db, "bi-read")
    bi_text: dict[int, str] = {}
    bis: list[BiRow] = []
    bi_q = (
        select(
            BiologicalIndicator.id,
            BiologicalIndicator.lot,
            Cycle.id,
            Cycle.load_no,
            Cycle.at,
            Sterilizer.code,
            BiRead.id,
            BiRead.at,
            BiRead.result,
            BiRead.control,
            BiRead.valid,
            BiRead.operator_id,
        )
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .join(Sterilizer, Sterilizer.id == Cycle.sterilizer_id)
        .outerjoin(BiRead, BiRead.bi_id == BiologicalIndicator.id)
        .where(or_(_in(Cycle.at, period), _in(BiRead.at, period)))
        .order_by(Cycle.at, Cycle.id, BiRead.at, BiRead.id)
    )
    for bi_id, lot, cid, load_no, placed, st, rid, rat, res, ctl, valid, op in db.execute(bi_q):
        row = BiRow(
            bi_id=int(bi_id),
            load_id=int(cid),
            load_no=int(load_no),
            sterilizer=str(st),
            lot=str(lot),
            placed_at=placed,
            read_id=int(rid) if rid is not None else None,
            read_at=rat,
            result=res,
            control=ctl,
            valid=valid,
            operator=who(op),
            voided=rid is not None and int(rid) in voided_reads,
        )
        bis.append(row)
        if not row.voided:
            if row.read_id is None:
                bi_text.setdefault(row.load_id, f"BI {bi_id} ({lot}): not read")
            elif row.valid:
                bi_text[row.load_id] = f"BI {bi_id} ({lot}): {res}"
            else:
                bi_text.setdefault(row.load_id, f"BI {bi_id} ({lot}): invalid read")
    from sterilog.compliance.rules import load_status
    from sterilog.compliance.vocab import LOAD_CI_PENDING, LOAD_FAILED
    from sterilog.models import CycleCi, ImportedCycle
    from sterilog.services.attachments import attachments_by_record

    device_no: dict[int, int] = {}
    ci_read: dict[int, bool] = {}
    ci_later: dict[int, tuple[str, int | None]] = {}  # an imported load's CI, read after import
    for cid, no, read, read_ci, read_type in db.execute(
        select(
            Cycle.id, ImportedCycle.device_cycle_no, CycleCi.passed, CycleCi.ci, CycleCi.ci_type
        )
        .outerjoin(ImportedCycle, ImportedCycle.cycle_id == Cycle.id)
        .outerjoin(CycleCi, CycleCi.cycle_id == Cycle.id)
        .where(_in(Cycle.at, period))
    ).all():
        if no is not None:
            device_no[int(cid)] = int(no)
        if read is not None:
            ci_read[int(cid)] = bool(read)
            ci_later[int(cid)] = (str(read_ci), read_type)
    attached = attachments_by_record(db)
    cycles: list[CycleRow] = []
    for c, st_code, p_name, p_temp, p_hold, bi_id, bi_lot in db.execute(
        select(
            Cycle,
            Sterilizer.code,
            Program.name,
            Program.temp_c,
            Program.hold_min,
            BiologicalIndicator.id,
            BiologicalIndicator.lot,
        )
        .join(Sterilizer, Sterilizer.id == Cycle.sterilizer_id)
        .join(Program, Program.id == Cycle.program_id)
        .outerjoin(BiologicalIndicator, BiologicalIndicator.cycle_id == Cycle.id)
        .where(_in(Cycle.at, period))
        .order_by(Cycle.at, Cycle.id)
    ).all():
        bi_label = bi_text.get(c.id) or (f"BI {bi_id} ({bi_lot}): not read" if bi_id else None)
        cycles.append(
            CycleRow(
                load_id=c.id,
                at=c.at,
                sterilizer=st_code,
                load_no=c.load_no,
                program=p_name,
                program_temp_c=p_temp,
                program_hold_min=p_hold,
                temp_c=c.temp_c,
                hold_min=c.hold_min,
                ci=ci_later[c.id][0] if c.id in ci_later else c.ci,
                ci_type=ci_later[c.id][1] if c.id in ci_later else c.ci_type,
                bi=bi_label,
                packs=tuple(packs_of.get(c.id, ())),
                operator=who(c.operator_id),
                passed=load_status(c.passed, c.ci, ci_read.get(c.id)) != LOAD_FAILED,
                suspect=c.id in suspects,
                voided=c.id in voided_cycles,
                source="imported" if c.id in device_no else "typed",
                device_cycle_no=device_no.get(c.id),
                ci_pending=load_status(c.passed, c.ci, ci_read.get(c.id)) == LOAD_CI_PENDING,
                attachments=tuple(a.filename for a in attached.get(("load", c.id), [])),
            )
        )

    voided_air = _voided_ids(db, "air-removal")
    air_tests = [
        AirRow(int(i), at, str(st), str(res), who(op), int(i) in voided_air)
        for i, at, st, res, op in db.execute(
            select(
                AirRemovalTest.id,
                AirRemovalTest.at,
                Sterilizer.code,
                AirRemovalTest.result,
                AirRemovalTest.operator_id,
            )
            .join(Sterilizer, Sterilizer.id == AirRemovalTest.sterilizer_id)
            .where(_in(AirRemovalTest.at, period))
            .order_by(AirRemovalTest.at, AirRemovalTest.id)
        ).all()
    ]

    # -- cleaning: rooms and devices merged by time ---------------------------------------------
    voided_rc = _voided_ids(db, "room-clean")
    voided_dc = _voided_ids(db, "device-clean")
    cleans = [
        CleanRow(
            "room-clean",
            int(i),
            at,
            f"Room {code}",
            kind,
            prod,
            cmin,
            who(op),
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
            .where(_in(RoomClean.at, period))
        ).all()
    ]
    cleans += [
        CleanRow(
            "device-clean",
            int(i),
            at,
            f"Device {code}",
            "device",
            prod,
            cmin,
            who(op),
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
            .where(_in(DeviceClean.at, period))
        ).all()
    ]
    cleans.sort(key=lambda r: (r.at, r.kind_of_record, r.record_id))

    # -- sessions: one joined query, packs aggregated in one more ------------------------------
    session_packs: dict[int, list[str]] = defaultdict(list)
    for sid, code in db.execute(
        select(SessionPack.session_id, Pack.code)
        .join(Pack, Pack.id == SessionPack.pack_id)
        .join(Session, Session.id == SessionPack.session_id)
        .where(_in(Session.started_at, period))
        .order_by(SessionPack.id)
    ).all():
        session_packs[int(sid)].append(str(code))
    sessions = [
        SessionRow(
            session_id=int(sid),
            at=started,
            ended_at=ended,
            room=room,
            practitioner=name,
            device=device,
            gtin=gtin,
            lot=lot,
            serial=serial,
            expiry=expiry,
            packs=tuple(session_packs.get(int(sid), ())),
            client=client,
        )
        for sid, started, ended, room, name, device, gtin, lot, serial, expiry, client in (
            db.execute(
                select(
                    Session.id,
                    Session.started_at,
                    SessionEnd.at,
                    Room.code,
                    Staff.name,
                    Device.code,
                    Session.gtin,
                    Session.lot,
                    Session.serial,
                    Session.expiry,
                    Session.client,
                )
                .join(Room, Room.id == Session.room_id)
                .join(Staff, Staff.id == Session.practitioner_id)
                .join(Device, Device.id == Session.device_id)
                .outerjoin(SessionEnd, SessionEnd.session_id == Session.id)
                .where(_in(Session.started_at, period))
                .order_by(Session.started_at, Session.id)
            ).all()
        )
    ]
    practitioner_names = {
        str(code): str(name) for code, name in db.execute(select(Staff.code, Staff.name)).all()
    }
    refusals = [
        RefusalRow(
            refusal_id=r.id,
            at=r.at,
            room=r.room,
            device=r.device,
            practitioner=practitioner_names.get(r.practitioner, r.practitioner),
            client=r.client,
            cartridge=(f"{r.gtin} lot {r.lot}" if r.gtin else r.cartridge_scan)
            + (f" serial {r.serial}" if r.serial else ""),
            codes=tuple(str(x.get("code")) for x in json.loads(r.reasons)),
        )
        for r in db.execute(
            select(Refusal).where(_in(Refusal.at, period)).order_by(Refusal.at, Refusal.id)
        ).scalars()
    ]

    # -- cartridges ------------------------------------------------------------------------------
    # One row per delivery: a box of serialized cartridges is one receipt per scanned unit.
    group = (
        CartridgeReceipt.at,
        CartridgeLot.gtin,
        CartridgeLot.lot,
        CartridgeLot.expiry,
        CartridgeReceipt.supplier,
        CartridgeReceipt.invoice,
        CartridgeReceipt.operator_id,
    )
    receipts = [
        ReceiptRow(at, gtin, lot, expiry, int(qty), sup, inv, who(op), int(first))
        for at, gtin, lot, expiry, sup, inv, op, qty, first in db.execute(
            select(*group, func.sum(CartridgeReceipt.quantity), func.min(CartridgeReceipt.id))
            .join(CartridgeLot, CartridgeLot.id == CartridgeReceipt.lot_id)
            .where(_in(CartridgeReceipt.at, period))
            .group_by(*group)
            .order_by(CartridgeReceipt.at, func.min(CartridgeReceipt.id))
        ).all()
    ]
    voided_discards = _voided_ids(db, "discard")
    discards = [
        DiscardRow(int(i), at, gtin, lot, serial, reason, who(op), int(i) in voided_discards)
        for i, at, gtin, lot, serial, reason, op in db.execute(
            select(
                Discard.id,
                Discard.at,
                CartridgeLot.gtin,
                CartridgeLot.lot,
                CartridgeUnit.serial,
                Discard.reason,
                Discard.operator_id,
            )
            .join(CartridgeUnit, CartridgeUnit.id == Discard.unit_id)
            .join(CartridgeLot, CartridgeLot.id == CartridgeUnit.lot_id)
            .where(_in(Discard.at, period))
            .order_by(Discard.at, Discard.id)
        ).all()
    ]
    voided_recalls = _voided_ids(db, "recall")
    recalls: list[RecallRow] = []
    for rid, at, gtin, lot, reason, op in db.execute(
        select(
            Recall.id,
            Recall.at,
            CartridgeLot.gtin,
            CartridgeLot.lot,
            Recall.reason,
            Recall.operator_id,
        )
        .join(CartridgeLot, CartridgeLot.id == Recall.lot_id)
        .where(_in(Recall.at, period))
        .order_by(Recall.at, Recall.id)
    ).all():
        affected = tuple(
            AffectedSession(int(s_id), s_at, client, room, name)
            for s_id, s_at, client, room, name in db.execute(
                select(Session.id, Session.started_at, Session.client, Room.code, Staff.name)
                .join(Room, Room.id == Session.room_id)
                .join(Staff, Staff.id == Session.practitioner_id)
                .where(Session.gtin == gtin, Session.lot == lot)
                .order_by(Session.started_at, Session.id)
            ).all()
        )
        recalls.append(
            RecallRow(
                int(rid), at, gtin, lot, reason, who(op), int(rid) in voided_recalls, affected
            )
        )
    stock = _stock(db, period, tz)

    # -- incidents with their trace (few: the trace service is called per incident) -------------
    from sterilog.services.trace import session_detail

    voided_incidents = _voided_ids(db, "incident")
    incidents = [
        IncidentRow(
            incident_id=i.id,
            at=i.at,
            kind=i.kind,
            severity=i.severity,
            note=i.note,
            operator=who(i.operator_id),
            voided=i.id in voided_incidents,
            trace=session_detail(db, i.session_id) if i.session_id is not None else {},
        )
        for i in db.execute(
            select(Incident).where(_in(Incident.at, period)).order_by(Incident.at, Incident.id)
        ).scalars()
    ]

    # -- voids, integrity, signatures -----------------------------------------------------------
    voids = _voids(db, period, who)
    verification = audit.verify(db)
    in_period = int(db.execute(select(func.count()).where(_in(AuditEntry.at, period))).scalar_one())
    integrity = Integrity(
        entries_in_period=in_period,
        ok=verification.ok,
        entries=verification.entries,
        head=verification.head,
        problems=tuple((p.record, p.message) for p in verification.problems[:50]),
    )
    from sterilog.services.signoff import bindings

    bound = bindings(db, f"{year:04d}-{month:02d}", tz)
    signatures = [
        SignatureRow(s.name, s.at, s.meaning, s.head, s.id, bound[s.id].text(tz))
        for s in db.execute(
            select(Signature)
            .where(Signature.month == f"{year:04d}-{month:02d}")
            .order_by(Signature.at, Signature.id)
        ).scalars()
    ]

    # -- gaps and verdicts ------------------------------------------------------------------------
    gaps: list[GapRow] = []
    gaps += _cycle_gaps(db, period, tz, rules)
    gaps += _continuity_gaps(db, period, tz)
    gaps += [
        GapRow(
            "sterilization",
            f"load {row.load_id} (#{row.load_no} on {row.sterilizer}): "
            "no chemical-indicator result",
        )
        for row in cycles
        if (row.ci is None or (row.ci_pending and row.packs)) and not row.voided
    ]
    gaps += _clean_gaps(db, period, tz)
    gaps += [
        GapRow("sessions", f"session {s.session_id} (room {s.room}) was never ended")
        for s in sessions
        if s.ended_at is None
    ]

    per_day: dict[dt.date, list[int]] = {}
    day = period.first_day
    while day <= period.last_day:
        per_day[day] = [0, 0]
        day += dt.timedelta(days=1)
    for s in sessions:
        per_day[s.at.astimezone(tz).date()][0] += 1
    for r in refusals:
        per_day[r.at.astimezone(tz).date()][1] += 1
    per_week: dict[str, list[int]] = {}
    suspect_week: Counter[str] = Counter()
    for week_start in _weeks(period):
        iso_year, iso_week, _ = week_start.isocalendar()
        per_week[f"{iso_year}-W{iso_week:02d}"] = [0, 0]
    for one in cycles:
        if one.voided:
            continue
        iso_year, iso_week, _ = one.at.astimezone(tz).date().isocalendar()
        per_week[f"{iso_year}-W{iso_week:02d}"][0 if one.passed else 1] += 1
        if one.passed and one.suspect:
            suspect_week[f"{iso_year}-W{iso_week:02d}"] += 1

    data = MonthlyData(
        period=period,
        rules_name=rules.name,
        gaps=gaps,
        verdicts=[],
        sessions_per_day=[(d, v[0], v[1]) for d, v in per_day.items()],
        cycles_per_week=[(w, v[0], v[1]) for w, v in per_week.items()],
        cycles=cycles,
        bis=bis,
        air_tests=air_tests,
        cleans=cleans,
        sessions=sessions,
        refusals=refusals,
        stock=stock,
        receipts=receipts,
        discards=discards,
        recalls=recalls,
        incidents=incidents,
        voids=voids,
        integrity=integrity,
        signatures=signatures,
        attachments=_attachments(period, cycles, bis, attached),
        declared_weeks=_declared_weeks(db, period),
        suspect_per_week=dict(suspect_week),
    )
    data.verdicts.extend(_verdicts(data))
    _time_and_identity(db, data, now, rules, who)
    decide(db, data, rules, data.decision)
    a = appendix.rows(db, data)
    data.appendix.sterilizers[:] = a.sterilizers
    data.appendix.staff[:] = a.staff
    data.appendix.disinfectants[:] = a.disinfectants
    data.appendix.devices[:] = a.devices
    return data


def _time_and_identity(
    db: DbSession, data: MonthlyData, now: dt.datetime, rules: RulePack, who: Any
) -> None:
    """Late entries of the month, the late cleans that close a gap, clock anomalies."""
    from sterilog.reports.late import gap_closers, late_entries

    period = data.period
    data.late.update(late_entries(db, period.start, period.end, rules.late_entry_minutes, who))
    data.late_closers.extend(gap_closers(db, data.late, period.start, period.end))
    data.clock_anomalies.extend(
        a
        for a in audit.clock_anomalies(db, now)
        if period.start <= dt.datetime.fromisoformat(a.at.replace("Z", "+00:00")) < period.end
    )


def _continuity_gaps(db: DbSession, period: Period, tz: ZoneInfo) -> list[GapRow]:
    """Issue 15: device cycles missing between imported ones, or dated out of order, whose later
    cycle falls in the period (per sterilizer)."""
    from sterilog.services.device_import import continuity

    return [
        GapRow("sterilization", a.message(tz))
        for a in continuity(db)
        if period.start <= a.at < period.end
    ]


def _attachments(
    period: Period,
    cycles: Sequence[CycleRow],
    bis: Sequence[BiRow],
    attached: dict[tuple[str, int], list[Any]],
) -> list[AttachmentRow]:
    """Documents kept with the month's loads and BIs, and every document attached this month."""
    keys = {("load", c.load_id) for c in cycles} | {("bi", b.bi_id) for b in bis}
    records: dict[int, list[tuple[str, int]]] = {}
    infos_by_id: dict[int, Any] = {}
    for (kind, rid), infos in attached.items():
        for a in infos:
            if (kind, rid) in keys or period.start <= a.recorded_at < period.end:
                records.setdefault(a.id, []).append((kind, rid))
                infos_by_id[a.id] = a
    out = []
    for att_id in sorted(records):
        a = infos_by_id[att_id]
        by_kind: dict[str, list[int]] = {}
        for kind, rid in sorted(records[att_id]):
            by_kind.setdefault(kind, []).append(rid)
        label = "; ".join(
            f"{kind}{'s' if len(ids) > 1 else ''} {', '.join(str(i) for i in ids)}"
            for kind, ids in by_kind.items()
        )
        out.append(
            AttachmentRow(att_id, label, a.filename, a.size, a.sha256, a.note, a.recorded_at)
        )
    return out


def _declared_weeks(db: DbSession, period: Period) -> list[tuple[str, str, str]]:
    """(sterilizer, ISO week, reason) of the month's weeks declared without a spore test."""
    labels = [f"{y}-W{w:02d}" for y, w, _ in (m.isocalendar() for m in _weeks(period))]
    return [(c, w, r) for _, c, w, r in history.declared_weeks(db, labels[0], labels[-1])]


def _declared_table(d: MonthlyData, table: Any) -> list[Any]:
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    return list(
        table(
            ["Sterilizer", "Week", "Declared: no load, no spore test, because"],
            [[c, w, r] for c, w, r in d.declared_weeks],
            [30 * mm, 25 * mm, pdf.CONTENT_WIDTH - 55 * mm],
            empty="No week declared without a spore test.",
        )
    )


def _weeks(period: Period) -> list[dt.date]:
    """Mondays of the ISO weeks overlapping the period."""
    monday = period.first_day - dt.timedelta(days=period.first_day.weekday())
    out = []
    while monday <= period.last_day:
        out.append(monday)
        monday += dt.timedelta(days=7)
    return out


def _cycle_gaps(db: DbSession, period: Period, tz: ZoneInfo, pack: RulePack) -> list[GapRow]:
    """`gap-bi-overdue` and `gap-air-removal` (compliance.rules.GAP_RULES): every cycle of the
    month (not voided) judged by `cycle record`'s own rules as of its own time.

    Batch reads: per sterilizer, the BIs from one interval before the month to its end and the
    month's air-removal tests, each once; then the rule functions per cycle in memory.
    """
    cycles = db.execute(
        select(
            Cycle.id,
            Cycle.at,
            Cycle.load_no,
            Cycle.sterilizer_id,
            exists().where(BiologicalIndicator.cycle_id == Cycle.id),
            exists().where(CyclePack.cycle_id == Cycle.id),
        )
        .where(_in(Cycle.at, period), counts(Cycle))
        .order_by(Cycle.at, Cycle.id)
    ).all()
    if not cycles:
        return []
    info = {sid: (code, kind) for sid, code, kind in facts.sterilizers(db)}
    lo = cyc.bi_window_start(period.start, pack.bi_interval_days)
    day_lo = local_day_bounds(period.first_day, tz)[0]
    evidence: dict[int, tuple[cyc.BiEvidence, ...]] = {}
    tests: dict[int, tuple[cyc.AirTest, ...]] = {}
    bi_gaps: list[GapRow] = []
    air_days: dict[tuple[str, dt.date], list[int]] = {}
    for cid, at, load_no, st_id, has_bi, has_packs in cycles:
        st_id = int(st_id)
        code, kind = info[st_id]
        if st_id not in evidence:
            evidence[st_id] = history.bi_evidence(db, st_id, lo, period.end)
            tests[st_id] = history.air_tests(db, st_id, day_lo, period.end)
        f = history.cycle_facts(
            db,
            sterilizer_id=st_id,
            sterilizer=code,
            sterilizer_type=kind,
            at=at,
            tz=tz,
            pack=pack,
            is_test=not has_packs,
            carries_bi=bool(has_bi),
            bis=evidence[st_id],
            air=tests[st_id],
            with_lock=False,
        )
        if cyc.bi_overdue(f):
            bi_gaps.append(
                GapRow(
                    "spore testing",
                    f"sterilizer {code}, load {cid} (#{load_no}, "
                    f"{at.astimezone(tz).strftime('%Y-%m-%d %H:%M')}): no BI incubating or read "
                    f"negative with a valid control in the {pack.bi_interval_days} day(s) "
                    "before it",
                )
            )
        if cyc.air_removal_missing(f) or cyc.air_removal_failed(f):
            air_days.setdefault((code, at.astimezone(tz).date()), []).append(int(cid))
    air_gaps = [
        GapRow(
            "air-removal tests",
            f"sterilizer {code}, {day.isoformat()}: "
            f"{_plural(len(loads), 'load')} ({', '.join(str(x) for x in loads)}) ran without a "
            "passing air-removal test that day before them",
        )
        for (code, day), loads in sorted(air_days.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    return bi_gaps + air_gaps


def _clean_gaps(db: DbSession, period: Period, tz: ZoneInfo) -> list[GapRow]:
    """`gap-room-not-cleaned` and `gap-device-not-reprocessed`: every session of the month
    judged by the gate's own rules over the facts as of its start (compliance.history.clean_states:
    linear in the month's sessions and cleans, one boundary lookup per room and device)."""
    sessions = db.execute(
        select(
            Session.id,
            Session.started_at,
            Session.recorded_at,
            Session.room_id,
            Session.device_id,
        )
        .where(_in(Session.started_at, period))
        .order_by(Session.started_at, Session.id)
    ).all()
    if not sessions:
        return []
    rooms = dict(db.execute(select(Room.id, Room.code)).all())
    devices = dict(db.execute(select(Device.id, Device.code)).all())
    room_states = history.clean_states(
        db,
        "room",
        [
            history.SessionStart(int(i), int(rm), crules.Moment(at, rec))
            for i, at, rec, rm, _ in sessions
        ],
    )
    device_states = history.clean_states(
        db,
        "device",
        [
            history.SessionStart(int(i), int(dv), crules.Moment(at, rec))
            for i, at, rec, _, dv in sessions
        ],
    )
    found: list[GapRow] = []
    for sid, at, _, room_id, device_id in sessions:
        bare = _bare_gate(at, tz)
        room = history.room_facts_at(rooms[room_id], room_states[int(sid)])
        device = history.device_facts_at(devices[device_id], device_states[int(sid)])
        for msg in crules.room_cleaned(dataclasses.replace(bare, room=room)):
            found.append(GapRow("cleaning", f"session {sid}: {msg}"))
        for msg in crules.device_reprocessed(dataclasses.replace(bare, device=device)):
            found.append(GapRow("cleaning", f"session {sid}: {msg}"))
    return found


def _bare_gate(at: dt.datetime, tz: ZoneInfo) -> crules.GateFacts:
    return crules.GateFacts(
        now=at,
        today=at.astimezone(tz).date(),
        cartridge=crules.CartridgeFacts(raw="", gtin="", lot="", serial=None),
        device=crules.DeviceFacts(code=""),
        room=crules.RoomFacts(code=""),
        practitioner=crules.PractitionerFacts(code="", role="practitioner"),
    )


def _stock(db: DbSession, period: Period, tz: ZoneInfo) -> list[StockRow]:
    """Per lot: movements in the month and units on hand at its end (group-by queries)."""
    received = Counter(
        {
            int(lot): int(n)
            for lot, n in db.execute(
                select(CartridgeReceipt.lot_id, func.sum(CartridgeReceipt.quantity))
                .where(_in(CartridgeReceipt.at, period))
                .group_by(CartridgeReceipt.lot_id)
            ).all()
        }
    )
    received_end = Counter(
        {
            int(lot): int(n)
            for lot, n in db.execute(
                select(CartridgeUnit.lot_id, func.count())
                .join(CartridgeReceipt, CartridgeReceipt.id == CartridgeUnit.receipt_id)
                .where(CartridgeReceipt.at < period.end)
                .group_by(CartridgeUnit.lot_id)
            ).all()
        }
    )

    def per_lot(query: Any) -> Counter[int]:
        return Counter({int(lot): int(n) for lot, n in db.execute(query).all()})

    used_q = (
        select(CartridgeUnit.lot_id, func.count())
        .select_from(Session)
        .join(CartridgeUnit, CartridgeUnit.id == Session.unit_id)
        .group_by(CartridgeUnit.lot_id)
    )
    used = per_lot(used_q.where(_in(Session.started_at, period)))
    used_end = per_lot(used_q.where(Session.started_at < period.end))
    discard_q = (
        select(CartridgeUnit.lot_id, func.count())
        .select_from(Discard)
        .join(CartridgeUnit, CartridgeUnit.id == Discard.unit_id)
        .where(counts(Discard))
        .group_by(CartridgeUnit.lot_id)
    )
    discarded = per_lot(discard_q.where(_in(Discard.at, period)))
    discarded_end = per_lot(discard_q.where(Discard.at < period.end))
    recalled_by_end = {
        int(lot)
        for lot in db.execute(
            select(Recall.lot_id).where(Recall.at < period.end, counts(Recall))
        ).scalars()
    }
    recalled_in_month = {
        int(lot)
        for lot in db.execute(
            select(Recall.lot_id).where(_in(Recall.at, period), counts(Recall))
        ).scalars()
    }
    out = []
    for raw_id, gtin, lot_code, expiry in db.execute(
        select(CartridgeLot.id, CartridgeLot.gtin, CartridgeLot.lot, CartridgeLot.expiry).order_by(
            CartridgeLot.gtin, CartridgeLot.lot
        )
    ).all():
        lot_id = int(raw_id)
        left = received_end[lot_id] - used_end[lot_id] - discarded_end[lot_id]
        expires_in_month = period.first_day <= expiry <= period.last_day
        expired_before = expiry < period.first_day
        moved = received[lot_id] or used[lot_id] or discarded[lot_id] or lot_id in recalled_in_month
        if not moved and not expires_in_month and (left <= 0 or expired_before):
            continue
        if received_end[lot_id] == 0:
            continue
        out.append(
            StockRow(
                gtin=gtin,
                lot=lot_code,
                expiry=expiry,
                received=received[lot_id],
                used=used[lot_id],
                discarded=discarded[lot_id],
                expired=left if expires_in_month else 0,
                recalled=lot_id in recalled_by_end,
                on_hand_at_end=0
                if (expiry <= period.last_day or lot_id in recalled_by_end)
                else left,
            )
        )
    return out


_VOID_SUMMARY: dict[str, Callable[[Any], str]] = {
    "cycle": lambda r: f"load {r.id} (#{r.load_no}), {'passed' if r.passed else 'failed'}",
    "bi-read": lambda r: f"BI {r.bi_id} read {r.result}, control {r.control}",
    "air-removal": lambda r: f"air-removal test {r.id}: {r.result}",
    "room-clean": lambda r: f"room clean {r.id} ({r.kind})",
    "device-clean": lambda r: f"device clean {r.id}",
    "incident": lambda r: (
        f"incident {r.id} on session {r.session_id}: {r.kind}"
        if r.session_id is not None
        else f"incident {r.id} (no session): {r.kind}"
    ),
    "recall": lambda r: f"recall {r.id}: {r.reason}",
    "discard": lambda r: f"discard {r.id}: {r.reason}",
    "service": lambda r: f"sterilizer service {r.id}: {r.note}",
    "bi-skip": lambda r: f"declared week {r.week} without a spore test: {r.reason}",
}


def _voids(db: DbSession, period: Period, who: Callable[[int | None], str]) -> list[VoidRow]:
    """Voids made in the month, and voids of records whose event is in the month."""
    out = [
        VoidRow(
            kind=kind,
            record_id=void.record_id,
            record_at=record.at,
            summary=_VOID_SUMMARY[kind](record),
            reason=void.reason,
            by=who(void.operator_id),
            at=void.at,
        )
        for kind, void, record in voids_touching(db, period.start, period.end)
    ]
    out.sort(key=lambda r: (r.at, r.kind, r.record_id))
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _verdicts(d: MonthlyData) -> list[Verdict]:
    by_area = Counter(g.area for g in d.gaps)

    def verdict(area: str, detail: str, attention: bool = False) -> Verdict:
        if by_area[area]:
            return Verdict(area, "GAPS", f"{_plural(by_area[area], 'gap')}. {detail}")
        return Verdict(area, "ATTENTION" if attention else "OK", detail)

    live = [c for c in d.cycles if not c.voided]
    failed = sum(1 for c in live if not c.passed)
    suspect = sum(1 for c in live if c.suspect)
    reads = [b for b in d.bis if b.read_id is not None and not b.voided]
    positive = sum(1 for b in reads if b.valid and b.result == "positive")
    invalid = sum(1 for b in reads if not b.valid)
    placed = len({b.bi_id for b in d.bis if d.period.start <= b.placed_at < d.period.end})
    air = [a for a in d.air_tests if not a.voided]
    air_failed = sum(1 for a in air if a.result != "pass")
    cleans = [c for c in d.cleans if not c.voided]
    recalls = [r for r in d.recalls if not r.voided]
    open_now = sum(1 for s in d.sessions if s.ended_at is None)
    return [
        verdict(
            "sterilization",
            f"{_plural(len(live), 'cycle')}: {failed} failed, {suspect} suspect"
            + (" (their packs are blocked at the gate); " if suspect else "; ")
            + f"{sum(1 for c in live if c.source == 'imported')} imported from the sterilizers' "
            f"records, {sum(1 for c in live if c.source == 'typed')} typed"
            + (
                f", {pending} awaiting their chemical indicator reading."
                if (pending := sum(1 for c in live if c.ci_pending))
                else "."
            ),
            attention=bool(failed or suspect),
        ),
        verdict(
            "spore testing",
            f"{_plural(placed, 'BI')} placed; {_plural(len(reads), 'read')}: {positive} positive, "
            f"{invalid} invalid.",
            attention=bool(positive or invalid),
        ),
        verdict(
            "air-removal tests",
            f"{_plural(len(air), 'test')}, {air_failed} failed.",
            attention=bool(air_failed),
        ),
        verdict(
            "cleaning",
            f"{_plural(sum(1 for c in cleans if c.kind != 'device'), 'room clean')}, "
            f"{_plural(sum(1 for c in cleans if c.kind == 'device'), 'device clean')}"
            + (
                f", {voided_cleans} voided."
                if (voided_cleans := len(d.cleans) - len(cleans))
                else "."
            ),
            attention=bool(voided_cleans),
        ),
        verdict(
            "cartridges",
            f"{sum(r.quantity for r in d.receipts)} received, {len(d.sessions)} used, "
            f"{sum(1 for x in d.discards if not x.voided)} discarded, "
            f"{sum(s.expired for s in d.stock)} expired unused, "
            f"{_plural(len(recalls), 'recall')}.",
            attention=bool(recalls),
        ),
        verdict(
            "sessions",
            f"{_plural(len(d.sessions), 'session')}, {_plural(len(d.refusals), 'refusal')} "
            f"at the gate, {open_now} still open, "
            f"{_plural(sum(1 for i in d.incidents if not i.voided), 'incident')}.",
            attention=bool(d.refusals or open_now or any(not i.voided for i in d.incidents)),
        ),
    ]


# --- layout ----------------------------------------------------------------------------------


def fmt_num(value: float | None) -> str:
    return DASH if value is None else f"{value:g}"


def render(
    data: MonthlyData,
    *,
    generated_at: dt.datetime,
    clinic: str,
    tz_name: str,
    author: str = "sterilog",
    target: Any = None,
    progress: Callable[[int], None] | None = None,
    training: bool = False,
) -> bytes:
    """The monthly report as PDF bytes (also written to `target`, a path or file, if given)."""
    from sterilog.reports import pdf

    story = _story(data, clinic=clinic, tz_name=tz_name)
    return pdf.build_pdf(
        target,
        story,
        title="Monthly compliance report",
        clinic=clinic,
        period=data.period.label,
        subject=f"Sterilization and equipment compliance, {data.period.label}",
        author=author,
        generated_at=generated_at,
        tz_name=tz_name,
        incomplete=data.incomplete,
        anchor=data.integrity.head,
        progress=progress,
        training=training,
    )


SECTIONS = (
    "1. Summary",
    "2. Charts",
    "3. Sterilization",
    "4. Cleaning log",
    "5. Sessions and refusals",
    "6. Cartridge stock",
    "7. Incidents",
    "8. Voided records",
    "9. Integrity and sign-off",
)


@dataclass(frozen=True)
class _Page:
    """What every section's layout needs besides the data: time formatting and marks."""

    t: Callable[[dt.datetime | None], str]
    lt: Callable[[str, int | None, dt.datetime | None], str]
    marks: _Marks
    tz_name: str
    clinic: str


def _story(d: MonthlyData, *, clinic: str, tz_name: str) -> list[Any]:
    from reportlab.platypus import Paragraph

    from sterilog.reports import pdf
    from sterilog.reports.pdf import local_time, para

    def t(moment: dt.datetime | None) -> str:
        return local_time(moment, tz_name) if moment is not None else DASH

    def lt(table: str, record_id: int | None, moment: dt.datetime | None) -> str:
        """A row's time; a late entry also says when it was entered and by whom."""
        return t(moment) + _late_note(d, table, record_id, t)

    marks = _Marks()
    story: list[Any] = [
        Paragraph("Monthly compliance report", pdf.STYLES.title),
        para(
            f"{clinic} \u2014 {d.period.label} ({d.period.first_day.isoformat()} to "
            f"{d.period.last_day.isoformat()}). Times are local to {tz_name}.",
            pdf.STYLES.body,
        ),
    ]
    c = _Page(t, lt, marks, tz_name, clinic)
    for section in SECTION_FUNCTIONS:
        story += section(d, c)
    story += pdf.portrait_pages()
    story += appendix.flowables(d.appendix, t, d.period.last_day)
    return story


def _summary(d: MonthlyData, c: _Page) -> list[Any]:
    """Section Summary."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, key_values, para, table

    t = c.t
    marks = c.marks
    tz_name = c.tz_name
    clinic = c.clinic
    story: list[Any] = []
    story += heading(SECTIONS[0])
    story.append(
        key_values(
            [
                ("Clinic", clinic),
                ("Period", f"{d.period.label}: {d.period.first_day} to {d.period.last_day}"),
                ("Time zone", tz_name),
                ("Rule pack", d.rules_name),
                ("Overall", _overall(d, marks)),
                *_decision_items(d, marks, tz_name),
                (
                    "Late entries",
                    marks.warn(
                        f"{len(d.late)} late entr{'y' if len(d.late) == 1 else 'ies'} "
                        "(entered long after the event; per area below)"
                    )
                    if d.late
                    else "None",
                ),
                (
                    "Clock anomalies",
                    marks.alert(
                        f"{len(d.clock_anomalies)} audit entr"
                        + ("y" if len(d.clock_anomalies) == 1 else "ies")
                        + " out of time order (a clock was moved; see section 9)"
                    )
                    if d.clock_anomalies
                    else "None",
                ),
            ]
        )
    )
    story += _late_summary(d, t)
    story += heading("Verdict per area", 2)
    story += table(
        ["Area", "Verdict", "Detail"],
        [[v.area.capitalize(), marks.verdict(v.verdict), v.detail] for v in d.verdicts],
        [38 * mm, 24 * mm, pdf.CONTENT_WIDTH - 62 * mm],
    )
    story += heading("Gaps", 2)
    story.append(
        para(
            "A gap is a record the law or the rule pack expects that is missing: a week of "
            "loads without a valid negative spore test, a day of loads on a B or S sterilizer "
            "without a passing air-removal test before the first load, a cycle without a "
            "chemical-indicator result, a session without a room or device clean before it, "
            "a session never ended.",
            pdf.STYLES.small,
        )
    )
    story += table(
        ["Area", "Gap"],
        [[g.area.capitalize(), g.what] for g in d.gaps],
        [38 * mm, pdf.CONTENT_WIDTH - 38 * mm],
        empty="No gaps.",
    )
    story += _declared_table(d, table)
    story += _episodes(d, t)
    story += _exceptions(d, t)
    return story


def _charts(d: MonthlyData, c: _Page) -> list[Any]:
    """Section Charts."""
    from reportlab.platypus import KeepTogether

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    story: list[Any] = []
    story += heading(SECTIONS[1])
    story.append(
        KeepTogether(
            [*heading("Sessions and refusals per day", 2), _day_chart(d, pdf.CONTENT_WIDTH)]
        )
    )
    story.append(
        KeepTogether(
            [
                *heading("Cycles passed, suspect and failed per ISO week", 2),
                _week_chart(d, pdf.CONTENT_WIDTH),
            ]
        )
    )
    return story


def _sterilization(d: MonthlyData, c: _Page) -> list[Any]:
    """Section Sterilization."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    story: list[Any] = []
    story += pdf.landscape_pages()
    story += heading(SECTIONS[2])
    for part in (_sterilization_log, _bi_log, _documents_log, _air_removal_log):
        story += part(d, c)
    return story


def _sterilization_log(d: MonthlyData, c: _Page) -> list[Any]:
    """Sterilization log."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, para

    lt = c.lt
    marks = c.marks
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Sterilization log", 2)
    story.append(
        para(
            "Every cycle of the month. FAILED: mechanical or chemical monitoring failed; "
            "SUSPECT: run between the last negative spore test and a positive one. Packs of "
            "failed and suspect loads are blocked at the gate. Source: imported (read from the "
            "sterilizer's own record, device cycle number; hold computed from its trace) or "
            "typed (entered by hand).",
            pdf.STYLES.small,
        )
    )
    story += _tbl(
        [
            "Time",
            "Sterilizer",
            "Load",
            "Program",
            "Readings",
            "CI",
            "BI",
            "Packs",
            "Operator",
            "Source",
            "Status",
        ],
        [
            [
                lt("cycles", c.load_id, c.at),
                c.sterilizer,
                f"#{c.load_no} (ID {c.load_id})",
                f"{c.program} (\u2265{fmt_num(c.program_temp_c)} \u00b0C, "
                f"{fmt_num(c.program_hold_min)} min)",
                (
                    f"{fmt_num(c.temp_c)} \u00b0C, {fmt_num(c.hold_min)} min"
                    if c.source == "typed"
                    else f"min {fmt_num(c.temp_c)} \u00b0C, hold "
                    f"{int(c.hold_min * 60 + 0.5) // 60}:{int(c.hold_min * 60 + 0.5) % 60:02d}"
                ),
                "not read"
                if c.ci_pending
                else DASH
                if c.ci is None
                else c.ci + (f" (type {c.ci_type})" if c.ci_type else ""),
                c.bi or DASH,
                ", ".join(c.packs) or "(test cycle)",
                c.operator,
                (f"imported, device #{c.device_cycle_no}" if c.source == "imported" else "typed")
                + "".join(f"; {name}" for name in c.attachments),
                (
                    "voided"
                    if c.voided
                    else "CI not read"
                    if c.ci_pending
                    else marks.status(c.passed, c.suspect)
                ),
            ]
            for c in d.cycles
        ],
        [
            T,
            14,
            Fit("#000 (ID 0000)"),
            33,
            Fit("000.0 °C, 00.0 min"),
            Fit("pass (type 0)"),
            26,
            34,
            24,
            28,
            18,
        ],
        width,
        strike_rows=[i for i, c in enumerate(d.cycles) if c.voided],
    )
    return story


def _bi_log(d: MonthlyData, c: _Page) -> list[Any]:
    """Spore-test (BI) log."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    t = c.t
    lt = c.lt
    marks = c.marks
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Spore-test (BI) log", 2)
    story += _tbl(
        [
            "BI",
            "Placed",
            "Sterilizer",
            "Load",
            "BI lot",
            "Read",
            "Result",
            "Control",
            "Outcome",
            "Read by",
        ],
        [
            [
                str(b.bi_id),
                t(b.placed_at),
                b.sterilizer,
                f"#{b.load_no} (ID {b.load_id})",
                b.lot,
                lt("bi_reads", b.read_id, b.read_at),
                b.result or DASH,
                b.control or DASH,
                "voided" if b.voided else marks.bi(b),
                b.operator if b.read_id is not None else DASH,
            ]
            for b in d.bis
        ],
        [Fit("0000"), T, 18, 20, 20, T, 16, 16, 46, 30],
        width,
        strike_rows=[i for i, b in enumerate(d.bis) if b.voided],
    )
    return story


def _documents_log(d: MonthlyData, c: _Page) -> list[Any]:
    """Documents kept with the records."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    t = c.t
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Documents kept with the records", 2)
    story += _tbl(
        ["Attachment", "Record", "File", "Bytes", "SHA-256", "Note", "Attached"],
        [
            [
                str(a.attachment_id),
                a.record,
                a.filename,
                str(a.size),
                a.sha256,
                a.note or "",
                t(a.recorded_at),
            ]
            for a in d.attachments
        ],
        [Fit("Attachment"), 26, 40, Fit("00000000"), 70, 40, T],
        width,
    )
    return story


def _air_removal_log(d: MonthlyData, c: _Page) -> list[Any]:
    """Air-removal (Bowie-Dick / Helix) test log."""
    from reportlab.lib.units import mm

    from sterilog.reports.pdf import heading

    lt = c.lt
    marks = c.marks
    story: list[Any] = []
    story += heading("Air-removal (Bowie-Dick / Helix) test log", 2)
    story += _tbl(
        ["Time", "Sterilizer", "Result", "Operator"],
        [
            [
                lt("air_removal_tests", a.test_id, a.at),
                a.sterilizer,
                "voided" if a.voided else marks.passfail(a.result),
                a.operator,
            ]
            for a in d.air_tests
        ],
        [T, 40, 30, 60],
        160 * mm,
        strike_rows=[i for i, a in enumerate(d.air_tests) if a.voided],
    )
    return story


def _cleaning(d: MonthlyData, c: _Page) -> list[Any]:
    """Section Cleaning."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    lt = c.lt
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading(SECTIONS[3])
    story += _tbl(
        ["Time", "Room / device", "Kind", "Product", "Contact (min)", "By", "Note"],
        [
            [
                lt(c.kind_of_record.replace("-", "_") + "s", c.record_id, c.at),
                c.target,
                c.kind,
                c.product,
                fmt_num(c.contact_min),
                c.operator,
                c.note or "",
            ]
            for c in d.cleans
        ],
        [T, 30, 24, 38, Fit("Contact (min)  "), 36, 86],
        width,
        strike_rows=[i for i, c in enumerate(d.cleans) if c.voided],
        align=["LEFT", "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT", "LEFT"],
    )
    return story


def _sessions(d: MonthlyData, c: _Page) -> list[Any]:
    """Section Sessions and refusals."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    lt = c.lt
    marks = c.marks
    tz_name = c.tz_name
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading(SECTIONS[4])
    story += heading(f"Sessions ({len(d.sessions)})", 2)
    story += _tbl(
        [
            "ID",
            "Started",
            "Ended",
            "Room",
            "Practitioner",
            "Device",
            "Cartridge GTIN",
            "Lot",
            "Serial",
            "Expiry",
            "Packs",
            "Client",
        ],
        [
            [
                str(s.session_id),
                lt("sessions", s.session_id, s.at),
                _ended(s, tz_name) if s.ended_at else marks.alert("OPEN"),
                s.room,
                s.practitioner,
                s.device,
                s.gtin,
                s.lot,
                s.serial or DASH,
                s.expiry.isoformat(),
                ", ".join(s.packs) or DASH,
                s.client,
            ]
            for s in d.sessions
        ],
        [Fit("000000"), T, Fit("Ended  "), 10, 34, 18, Fit(GTIN_SAMPLE), 24, 18, D, 34, 30],
        width,
    )
    story += heading(f"Refusals at the gate ({len(d.refusals)})", 2)
    story += _tbl(
        ["Time", "Room", "Device", "Practitioner", "Client", "Cartridge", "Reason codes"],
        [
            [
                lt("refusals", r.refusal_id, r.at),
                r.room,
                r.device,
                r.practitioner,
                r.client,
                r.cartridge,
                ", ".join(r.codes),
            ]
            for r in d.refusals
        ],
        [T, 16, 20, 30, 30, 60, 91],
        width,
    )
    return story


def _cartridges(d: MonthlyData, c: _Page) -> list[Any]:
    """Section Cartridge stock."""

    from sterilog.reports.pdf import heading

    story: list[Any] = []
    story += heading(SECTIONS[5])
    for part in (_lot_movements, _deliveries, _discards, _recalls):
        story += part(d, c)
    return story


def _lot_movements(d: MonthlyData, c: _Page) -> list[Any]:
    """Movements per lot."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Movements per lot", 2)
    story += _tbl(
        [
            "GTIN",
            "Lot",
            "Expiry",
            "Received",
            "Used",
            "Discarded",
            "Expired unused",
            "Recalled",
            "On hand at month end",
        ],
        [
            [
                s.gtin,
                s.lot,
                s.expiry.isoformat(),
                str(s.received),
                str(s.used),
                str(s.discarded),
                str(s.expired),
                "RECALLED" if s.recalled else "no",
                str(s.on_hand_at_end),
            ]
            for s in d.stock
        ],
        [Fit(GTIN_SAMPLE), 30, D, 20, 20, 20, 24, 22, 30],
        width,
        align=["LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "LEFT", "RIGHT"],
    )
    return story


def _deliveries(d: MonthlyData, c: _Page) -> list[Any]:
    """Deliveries received."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    lt = c.lt
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Deliveries received", 2)
    story += _tbl(
        ["Time", "GTIN", "Lot", "Expiry", "Quantity", "Supplier", "Invoice", "Received by"],
        [
            [
                lt("cartridge_receipts", r.first_id, r.at),
                r.gtin,
                r.lot,
                r.expiry.isoformat(),
                str(r.quantity),
                r.supplier or DASH,
                r.invoice or DASH,
                r.operator,
            ]
            for r in d.receipts
        ],
        [T, Fit(GTIN_SAMPLE), 24, D, 16, 50, 40, 40],
        width,
        align=["LEFT", "LEFT", "LEFT", "LEFT", "RIGHT", "LEFT", "LEFT", "LEFT"],
    )
    return story


def _discards(d: MonthlyData, c: _Page) -> list[Any]:
    """Discarded units."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading

    lt = c.lt
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading("Discarded units", 2)
    story += _tbl(
        ["Time", "GTIN", "Lot", "Serial", "Reason", "By"],
        [
            [
                lt("discards", x.discard_id, x.at),
                x.gtin,
                x.lot,
                x.serial or DASH,
                x.reason,
                x.operator,
            ]
            for x in d.discards
        ],
        [T, Fit(GTIN_SAMPLE), 24, 20, 100, 40],
        width,
        strike_rows=[i for i, x in enumerate(d.discards) if x.voided],
    )
    return story


def _recalls(d: MonthlyData, c: _Page) -> list[Any]:
    """Recalls and the sessions that used the recalled lot."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph

    from sterilog.reports import pdf
    from sterilog.reports.pdf import esc, heading, para

    t = c.t
    lt = c.lt
    story: list[Any] = []
    story += heading("Recalls and the sessions that used the recalled lot", 2)
    if not d.recalls:
        story.append(para("No recalls this month.", pdf.STYLES.small))
    for r in d.recalls:
        text = (
            f"Recall {r.recall_id}: lot {r.lot} of GTIN {r.gtin}, "
            f"{lt('recalls', r.recall_id, r.at)}, by {r.operator}. "
            f"Reason: {r.reason}. {_plural(len(r.sessions), 'session')} used this lot."
        )
        struck = f"<strike>{esc(text)}</strike> (voided)" if r.voided else esc(text)
        story.append(Paragraph(struck, pdf.STYLES.body))
        story += _tbl(
            ["Session", "Started", "Client", "Room", "Practitioner"],
            [[str(s.session_id), t(s.at), s.client, s.room, s.practitioner] for s in r.sessions],
            [20, T, 60, 30, 60],
            200 * mm,
            empty="No session used this lot.",
        )
    return story


def _incidents(d: MonthlyData, c: _Page) -> list[Any]:
    """Section Incidents."""
    from reportlab.platypus import KeepTogether

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, para

    t = c.t
    marks = c.marks
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading(SECTIONS[6])
    if not d.incidents:
        story.append(para("No incidents recorded this month.", pdf.STYLES.small))
    for inc in d.incidents:
        story.append(
            KeepTogether(
                _incident_block(
                    inc, t, width, marks, _late_note(d, "incidents", inc.incident_id, t)
                )
            )
        )
    return story


def _voided(d: MonthlyData, c: _Page) -> list[Any]:
    """Section Voided records."""

    from sterilog.reports import pdf
    from sterilog.reports.pdf import heading, para

    t = c.t
    marks = c.marks
    width = pdf.LANDSCAPE_CONTENT_WIDTH
    story: list[Any] = []
    story += heading(SECTIONS[7])
    story.append(
        para(
            "A voided record was entered by mistake and stops counting everywhere (the gate, "
            "status and the gaps above); it is never erased. Voided rows are also struck "
            "through in the logs above.",
            pdf.STYLES.small,
        )
    )
    story += _tbl(
        ["Kind", "Record", "Record time", "Void reason", "Voided by", "Voided at"],
        [
            [v.kind, marks.struck(v.summary), t(v.record_at), v.reason, v.by, t(v.at)]
            for v in d.voids
        ],
        [22, 70, T, 80, 34, T],
        width,
        empty="No voided records.",
    )
    return story


def _integrity(d: MonthlyData, c: _Page) -> list[Any]:
    """Section Integrity."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph

    from sterilog.reports import pdf
    from sterilog.reports.pdf import esc, heading, key_values, para, table

    t = c.t
    marks = c.marks
    story: list[Any] = []
    story += pdf.portrait_pages()
    story += heading(SECTIONS[8])
    integ = d.integrity
    story.append(
        key_values(
            [
                ("Audit entries in the period", str(integ.entries_in_period)),
                (
                    "Verification of the whole chain",
                    marks.ok(f"OK: {integ.entries} entries verified, every record matches")
                    if integ.ok
                    else marks.alert(
                        f"FAILED: {_plural(len(integ.problems), 'problem')} in "
                        f"{integ.entries} entries"
                    ),
                ),
                ("Chain head (SEQ:HASH)", Paragraph(esc(integ.head), _mono_style())),
            ],
            key_width=50 * mm,
        )
    )
    if integ.problems:
        story += table(
            ["Record", "Problem"],
            [[a, b] for a, b in integ.problems],
            [45 * mm, pdf.CONTENT_WIDTH - 45 * mm],
        )
    story.append(pdf.qr_flowable(integ.head, 32))
    story.append(para("Anyone can check this report against the database with:", pdf.STYLES.small))
    story.append(Paragraph(esc(f"sterilog audit verify --anchor {integ.head}"), _mono_style()))
    if d.clock_anomalies:
        story += heading("Clock anomalies", 2)
        story += table(
            ["Entry", "Time", "Problem"],
            [[f"#{a.seq}", a.at, a.message] for a in d.clock_anomalies],
            [20 * mm, 40 * mm, pdf.CONTENT_WIDTH - 60 * mm],
        )
    story += heading("Signatures", 2)
    if d.signatures:
        story += table(
            ["Name", "Time", "Meaning", "Chain head when signed"],
            [[s.name, t(s.at), s.meaning, s.head] for s in d.signatures],
            _widths(
                [40, T, 16, Fit("0" * 72, mono=True)],
                pdf.CONTENT_WIDTH,
                ["Name", "Time", "Meaning", "Chain head when signed"],
            ),
            mono_cols=[3],
        )
        story += table(
            ["Signature", "Since signing"],
            [
                [
                    f"#{s.signature_id} {s.name}",
                    marks.alert(s.since) if "changed" in s.since else s.since,
                ]
                for s in d.signatures
            ],
            [40 * mm, pdf.CONTENT_WIDTH - 40 * mm],
        )
    else:
        story.append(
            para(
                "Not yet signed electronically for this month (sterilog sign MONTH --meaning "
                "reviewed|approved). Sign by hand below:",
                pdf.STYLES.small,
            )
        )
        story.append(_signature_lines())
    return story


SECTION_FUNCTIONS: tuple[Callable[[MonthlyData, _Page], list[Any]], ...] = (
    _summary,
    _charts,
    _sterilization,
    _cleaning,
    _sessions,
    _cartridges,
    _incidents,
    _voided,
    _integrity,
)


def _overall(d: MonthlyData, marks: _Marks) -> Any:
    """Green only when nothing of docs/reports.md's verdict rules stands (issue 13)."""
    reasons = list(d.decision.reasons)
    if d.gaps:
        return marks.alert(
            f"INCOMPLETE: {_plural(len(d.gaps), 'gap')} in the record (listed below)"
            + ("; also " + "; ".join(reasons[1:]) if len(reasons) > 1 else "")
        )
    if reasons:
        return marks.alert("ATTENTION: " + "; ".join(reasons))
    return marks.ok("Complete: no gaps found in the record for this month; nothing open")


def _decision_items(d: MonthlyData, marks: _Marks, tz_name: str) -> list[tuple[str, Any]]:
    paint = {"alert": marks.alert, "warn": marks.warn, "ok": marks.ok}
    return [
        (label, paint[mark](text) if mark in paint else text)
        for label, text, mark in decision.summary_items(d, d.decision, ZoneInfo(tz_name))
    ]


def _exceptions(d: MonthlyData, t: Any) -> list[Any]:
    """Exceptions first (issue 13): what an inspector looks at before the full logs below."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    rows = decision.exceptions(d)
    story = pdf.heading("Exceptions", 2)
    story.append(
        pdf.para(
            "Failed and suspect loads, refusals at the gate, incidents and voids of the month, "
            "in time order; every record is also in the full logs below.",
            pdf.STYLES.small,
        )
    )
    story += pdf.table(
        ["Time", "Kind", "Record", "What"],
        [[t(e.at), e.kind, e.record, e.what] for e in rows],
        [30 * mm, 24 * mm, 30 * mm, pdf.CONTENT_WIDTH - 84 * mm],
        empty="No exceptions.",
    )
    return story


def _episodes(d: MonthlyData, t: Any) -> list[Any]:
    """Each positive-BI episode of the month as one block (issue 13)."""
    from sterilog.reports import episode, pdf

    def ti(value: str | None) -> str:
        return str(t(dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None))

    story: list[Any] = []
    for ep in d.decision.episodes:
        story += episode.flowables(ep, ti, pdf.CONTENT_WIDTH)
    return story


def _late_note(d: MonthlyData, table: str, record_id: int | None, t: Any) -> str:
    entry = d.late.get((table, record_id)) if record_id is not None else None
    if entry is None:
        return ""
    return f" (LATE ENTRY: entered {t(entry.recorded_at)} by {entry.by})"


def _late_summary(d: MonthlyData, t: Any) -> list[Any]:
    """Summary: late entries per area, and the late cleans that close what would be a gap."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf
    from sterilog.reports.late import per_area
    from sterilog.reports.pdf import heading, para, table

    if not d.late:
        return []
    out: list[Any] = heading("Late entries", 2)
    out.append(
        para(
            "A late entry was entered more than the rule pack's late-entry time after the event "
            "it records (a paper backlog, or a back-dated record). Each is marked in its table "
            "with when and by whom it was entered.",
            pdf.STYLES.small,
        )
    )
    out += table(
        ["Area", "Late entries"],
        [[area.capitalize(), str(n)] for area, n in sorted(per_area(d.late).items())],
        [60 * mm, 30 * mm],
    )
    if d.late_closers:
        out += heading("Late entries that close what would otherwise be a gap", 2)
        out += table(
            ["Record", "Event time", "Entered", "By", "Session it covers"],
            [
                [
                    f"{e.table} #{e.record_id}",
                    t(e.at),
                    t(e.recorded_at),
                    e.by,
                    f"session {sid} (started before the clean was entered)",
                ]
                for e, sid in d.late_closers
            ],
            [32 * mm, 30 * mm, 30 * mm, 30 * mm, pdf.CONTENT_WIDTH - 122 * mm],
        )
    return out


def _signature_lines() -> Any:
    """Blank lines to sign on paper: name, signature, date, meaning."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Table, TableStyle

    from sterilog.reports import pdf

    widths = [55 * mm, 60 * mm, 30 * mm, pdf.CONTENT_WIDTH - 145 * mm]
    return Table(
        [["", "", "", ""], ["Name", "Signature", "Date", "Reviewed / approved"]],
        colWidths=widths,
        rowHeights=[16 * mm, None],
        hAlign="LEFT",
        style=TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), pdf.FONT, 7.5),
                ("TEXTCOLOR", (0, 1), (-1, 1), pdf.MUTED),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, pdf.INK),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 8 * mm),
            ]
        ),
    )


def _ended(s: SessionRow, tz_name: str) -> str:
    """The end time; the date only when the session ended on another day than it started."""
    from sterilog.reports.pdf import local_time

    if s.ended_at is None:
        return "OPEN"
    start, end = local_time(s.at, tz_name), local_time(s.ended_at, tz_name)
    return end[11:] if start[:10] == end[:10] else end


@dataclass(frozen=True)
class Fit:
    """A column exactly as wide as `sample` on one line."""

    sample: str
    mono: bool = False


T = Fit("0000-00-00 00:00")  # a local time
D = Fit("0000-00-00")  # a date
GTIN_SAMPLE = "00000000000000"


def _widths(
    columns: Sequence[float | Fit], total: float, header: Sequence[str] = ()
) -> list[float]:
    """Column widths filling `total` points: `Fit` columns fit their sample, the others share
    what is left in the given proportions; no column is narrower than its header's longest
    word (so a header never breaks inside a word)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    from sterilog.reports.pdf import FONT_BOLD, fit_width

    floor = [stringWidth(max(h.split() or [""], key=len), FONT_BOLD, 7.5) + 7.0 for h in header] + [
        0.0
    ] * (len(columns) - len(header))
    fixed = {
        i: max(fit_width(c.sample, mono=c.mono), floor[i])
        for i, c in enumerate(columns)
        if isinstance(c, Fit)
    }
    weights = {i: float(c) for i, c in enumerate(columns) if not isinstance(c, Fit)}
    while True:
        left = total - sum(fixed.values())
        whole = sum(weights.values()) or 1.0
        share = {i: left * w / whole for i, w in weights.items()}
        narrow = [i for i, w in share.items() if w < floor[i]]
        if not narrow:
            break
        for i in narrow:
            fixed[i] = floor[i]
            del weights[i]
    return [fixed[i] if i in fixed else share[i] for i in range(len(columns))]


def _tbl(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    columns: Sequence[float | Fit],
    total: float,
    **options: Any,
) -> list[Any]:
    """`pdf.table` with widths from `_widths`."""
    from sterilog.reports.pdf import table

    return table(header, rows, _widths(columns, total, header), **options)


def _incident_block(
    inc: IncidentRow,
    t: Callable[[dt.datetime | None], str],
    width: float,
    marks: _Marks,
    late: str = "",
) -> list[Any]:
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph

    from sterilog.clock import parse_instant
    from sterilog.reports import pdf
    from sterilog.reports.pdf import esc, heading, table

    d = inc.trace

    def ti(value: str | None) -> str:
        return t(parse_instant(value)) if value else DASH

    title = (
        f"Incident {inc.incident_id}: {inc.kind}"
        + (f" ({inc.severity})" if inc.severity else "")
        + f", {t(inc.at)}{late}, recorded by {inc.operator}"
    )
    out: list[Any] = heading(title + (" \u2014 VOIDED" if inc.voided else ""), 2)
    note = f"Note: {inc.note}"
    out.append(
        Paragraph(f"<strike>{esc(note)}</strike>" if inc.voided else esc(note), pdf.STYLES.body)
    )
    if not d:  # no client session (a staff exposure): the note and its time are the record
        out.append(Paragraph(esc("No client session."), pdf.STYLES.body))
        return out
    c = d["cartridge"]
    dev = d["device"]
    lc = dev["last_clean"]
    rc = d["room_detail"]["last_clean"]
    p = d["practitioner_detail"]
    rows: list[list[Any]] = [
        [
            "Session",
            f"{d['session_id']}, client {d['client']}, started {ti(d['started_at'])}, "
            f"ended {ti(d['ended_at']) if d['ended_at'] else 'OPEN'}",
        ],
        [
            "Practitioner",
            f"{p['name']} ({p['id']}), licence {p['license'] or DASH}"
            f" until {p['license_expires'] or DASH}",
        ],
        [
            "Cartridge",
            f"GTIN {c['gtin']} lot {c['lot']} serial {c['serial'] or DASH}, expiry {c['expiry']}",
        ],
        [
            "Device",
            f"{dev['serial']} ({dev['model']}); last clean before: "
            + (
                f"{ti(lc['at'])} {lc['disinfectant']} {fmt_num(lc['contact_min'])} min"
                if lc
                else "NONE"
            ),
        ],
        [
            "Room",
            f"{d['room']}; last clean before: "
            + (
                f"{ti(rc['at'])} {rc['kind']} {rc['disinfectant']} {fmt_num(rc['contact_min'])} min"
                if rc
                else "NONE"
            ),
        ],
    ]
    for pk in d["packs"]:
        ld = pk["load"]
        status = ld["status"] + (", SUSPECT" if ld["suspect"] else "")
        rows.append(
            [
                f"Pack {pk['pack']}",
                f"{pk['contents']} \u2192 load {ld['load_id']} (#{ld['load_no']} on "
                f"{ld['sterilizer']}, {ld['program']}, {ti(ld['at'])}): "
                f"{fmt_num(ld['temp_c'])} \u00b0C, {fmt_num(ld['hold_min'])} min, "
                f"CI {ld['ci'] or DASH}, {status}",
            ]
        )
    if not d["packs"]:
        rows.append(["Packs", "none used"])
    out += table(["Trace", "Detail"], rows, [35 * mm, width - 35 * mm])
    return out


def _day_chart(d: MonthlyData, width: float) -> Any:
    """Sessions per day, and under them refusals per day on their own scale (next to hundreds
    of sessions a handful of refusals would be a pixel high)."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors

    from sterilog.reports import pdf

    height = 250.0
    drawing = Drawing(width, height)
    names = [str(day.day) for day, _, _ in d.sessions_per_day]
    grey = colors.HexColor("#5B6573")
    for series, colour, y, h, label in (
        ([n for _, n, _ in d.sessions_per_day], pdf.ACCENT, 120, 110, "Sessions per day"),
        ([r for _, _, r in d.sessions_per_day], pdf.ALERT, 30, 60, "Refusals per day"),
    ):
        chart = VerticalBarChart()
        chart.x, chart.y = 30, y
        chart.width, chart.height = width - 40, h
        chart.data = [series]
        chart.categoryAxis.categoryNames = names
        _style_chart(chart, max([*series, 1]))
        chart.bars[0].fillColor = colour
        chart.groupSpacing = 2
        drawing.add(chart)
        drawing.add(
            String(
                30,
                y + h + 4,
                f"{label} (total {sum(series)})",
                fontName=pdf.FONT,
                fontSize=7.5,
                fillColor=colour,
            )
        )
    drawing.add(String(30, 8, "Day of the month", fontName=pdf.FONT, fontSize=7, fillColor=grey))
    return drawing


def _week_chart(d: MonthlyData, width: float) -> Any:
    """Passed, suspect (passed, then made suspect by a positive BI) and failed loads per week,
    stacked: a suspect load is never counted as passed."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.charts.legends import Legend
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib import colors

    from sterilog.reports import pdf

    height = 170.0
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y = 30, 25
    chart.width, chart.height = width - 40, height - 50
    suspect = [d.suspect_per_week.get(w, 0) for w, _, _ in d.cycles_per_week]
    passed = [p - s for (_, p, _), s in zip(d.cycles_per_week, suspect, strict=True)]
    failed = [f for _, _, f in d.cycles_per_week]
    chart.data = [passed, suspect, failed]
    chart.categoryAxis.categoryNames = [w for w, _, _ in d.cycles_per_week]
    chart.categoryAxis.style = "stacked"
    totals = [p + s + f for p, s, f in zip(passed, suspect, failed, strict=True)]
    _style_chart(chart, max([*totals, 1]))
    amber = colors.HexColor("#C77700")
    chart.bars[0].fillColor = pdf.ACCENT
    chart.bars[1].fillColor = amber
    chart.bars[2].fillColor = pdf.ALERT
    chart.barWidth = 18
    drawing.add(chart)
    drawing.add(
        _legend(
            Legend,
            [(pdf.ACCENT, "Passed"), (amber, "Suspect"), (pdf.ALERT, "Failed")],
            width - 230,
            height - 8,
        )
    )
    return drawing


def _style_chart(chart: Any, top: int) -> None:
    from reportlab.lib import colors

    from sterilog.reports import pdf

    step = max(1, -(-top // 5))
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = step * 5 if top > 0 else 5
    chart.valueAxis.valueStep = step
    chart.valueAxis.labels.fontName = pdf.FONT
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.gridStrokeColor = colors.HexColor("#E2E6EC")
    chart.valueAxis.visibleGrid = True
    chart.categoryAxis.labels.fontName = pdf.FONT
    chart.categoryAxis.labels.fontSize = 6.5
    chart.categoryAxis.labels.boxAnchor = "n"
    chart.bars.strokeColor = None


def _legend(legend_cls: Any, items: Iterable[tuple[Any, str]], x: float, y: float) -> Any:
    from sterilog.reports import pdf

    legend = legend_cls()
    legend.x, legend.y = x, y
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.deltax = 70
    legend.fontName = pdf.FONT
    legend.fontSize = 7.5
    legend.colorNamePairs = list(items)
    legend.boxAnchor = "nw"
    return legend
