"""Export every record of a period, machine-readable (SPEC §6.7): one JSON file or a CSV folder.

- The period is clinic-local days, `--from` and `--to` both included. A record belongs to the
  period by its event time (`at`; sessions by `started_at`; BIs by the time of their load;
  cartridges by the time of their receipt). Rows come in event-time order, ties in recorded
  order (id).
- Every row carries the internal ids (`room_id`, ...) and, next to them, the human IDs a clinic
  uses (room code, staff code, device serial, pack IDs, sterilizer ID, disinfectant name).
  Voidable records carry `voided` and `void_id`; the void itself is in `voids`.
- Registers (staff, rooms, devices, ...) are exported whole, as reference tables: a record of
  the period may point at any of them. Staff PIN hashes are never exported.
- Rows are streamed from the database in batches and written as they come, so a year of a busy
  clinic never sits in memory. The whole export reads one snapshot of the database (SQLite: one
  read transaction; PostgreSQL: REPEATABLE READ, set by the CLI), so `meta.head` is exactly the
  audit head of the data exported.
- Output appears atomically (sterilog/output.py): it is written to a temporary name next to
  the target and renamed into place (or streamed to stdout with `-o -`, JSON only), so a
  failure never leaves a half-written export behind. Files are created readable by their owner
  only (they hold client references).
- CSV cells that a spreadsheet would run as a formula (beginning with `=`, `+`, `-`, `@`, tab
  or carriage return; OWASP "CSV injection") are prefixed with a single quote. The JSON export
  keeps every value exactly as recorded.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, select
from sqlalchemy.orm import Session as DbSession

from sterilog import audit, output, tempfiles
from sterilog.clock import iso, local_day_bounds
from sterilog.compliance.facts import suspect_load_ids
from sterilog.compliance.history import bi_results_of
from sterilog.compliance.rules import load_status
from sterilog.compliance.voids import KIND_OF, counts, void_ids, voids_stmt
from sterilog.errors import IntegrityFailure, UserError
from sterilog.lateness import is_late
from sterilog.models import (
    AirRemovalTest,
    Attachment,
    AuditEntry,
    BiDetail,
    BiLabEvent,
    BiologicalIndicator,
    BiRead,
    BiSkip,
    CartridgeLot,
    CartridgeReceipt,
    CartridgeUnit,
    Cycle,
    CycleCi,
    CyclePack,
    Device,
    DeviceClean,
    DeviceRetirement,
    Discard,
    Disinfectant,
    Exposure,
    ExposureClient,
    ExposureClosure,
    ExposureNotice,
    ImportedCycle,
    Incident,
    NotificationSent,
    Pack,
    PinEvent,
    Program,
    Recall,
    Refusal,
    RegisterChange,
    Room,
    RoomClean,
    Session,
    SessionEnd,
    SessionPack,
    Setting,
    Signature,
    Staff,
    StaffDeactivation,
    Sterilizer,
    SterilizerSerial,
    SterilizerService,
)
from sterilog.services.base import Clinic
from sterilog.services.device_import import current_serial

BATCH = 2000
FORMATS = ("json", "csv")
# OWASP CSV injection: a cell starting with one of these may be run as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = frozenset(FORMULA_START)
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)

Row = dict[str, Any]


# --- the environment every record type reads from ------------------------------------------


@dataclass
class Env:
    session: DbSession
    start: dt.datetime
    end: dt.datetime
    tz: ZoneInfo
    batch: int = BATCH
    date_from: dt.date | None = None  # the period's clinic days (for day-dated records)
    date_to: dt.date | None = None
    staff: dict[int, tuple[str, str]] = field(default_factory=dict)
    names: Any = None  # compliance.registers.StaffNames: a name as in force at a time
    rooms: dict[int, str] = field(default_factory=dict)
    devices: dict[int, str] = field(default_factory=dict)
    sterilizers: dict[int, str] = field(default_factory=dict)
    programs: dict[int, tuple[str, float, float]] = field(default_factory=dict)
    packs: dict[int, str] = field(default_factory=dict)
    disinfectants: dict[int, str] = field(default_factory=dict)
    lots: dict[int, tuple[str, str, dt.date]] = field(default_factory=dict)
    late_minutes: int = 60  # the clinic rule pack's records.late_entry_minutes
    _suspects: set[int] | None = field(default=None, init=False, repr=False)

    @property
    def suspects(self) -> set[int]:
        """Every suspect load, as `cycle list` judges it (`facts.suspect_load_ids`). Computed
        once per export: it depends only on the valid positive reads (a handful in a clinic's
        life), and the export reads one snapshot."""
        if self._suspects is None:
            self._suspects = suspect_load_ids(self.session)
        return self._suspects

    def load_registers(self) -> None:
        s = self.session
        self.staff = {i: (c, n) for i, c, n in s.execute(select(Staff.id, Staff.code, Staff.name))}
        from sterilog.compliance.registers import StaffNames

        self.names = StaffNames(s)
        self.rooms = _pairs(s.execute(select(Room.id, Room.code)))
        self.devices = _pairs(s.execute(select(Device.id, Device.code)))
        self.sterilizers = _pairs(s.execute(select(Sterilizer.id, Sterilizer.code)))
        self.programs = {
            i: (n, t, h)
            for i, n, t, h in s.execute(
                select(Program.id, Program.name, Program.temp_c, Program.hold_min)
            )
        }
        self.packs = _pairs(s.execute(select(Pack.id, Pack.code)))
        self.disinfectants = _pairs(s.execute(select(Disinfectant.id, Disinfectant.code)))
        self.lots = {
            i: (g, lot, e)
            for i, g, lot, e in s.execute(
                select(CartridgeLot.id, CartridgeLot.gtin, CartridgeLot.lot, CartridgeLot.expiry)
            )
        }

    def in_period(self, column: Any) -> ColumnElement[bool]:
        result: ColumnElement[bool] = (column >= self.start) & (column < self.end)
        return result

    def local(self, moment: dt.datetime | None) -> str | None:
        if moment is None:
            return None
        return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def staff_code(self, staff_id: int | None) -> str | None:
        return self.staff[staff_id][0] if staff_id in self.staff else None

    def batches(self, stmt: Select[Any]) -> Iterator[list[Row]]:
        """Stream a query in batches (a server-side cursor on PostgreSQL)."""
        result = self.session.execute(stmt.execution_options(yield_per=self.batch))
        keys = list(result.keys())
        for part in result.partitions():
            yield [dict(zip(keys, r, strict=True)) for r in part]

    def voids(self, kind: str, ids: Sequence[int]) -> dict[int, int]:
        """record id -> void id, for the voided ones among `ids`."""
        if not ids:
            return {}
        return void_ids(self.session, kind, ids)


def _pairs(result: Any) -> dict[Any, Any]:
    # Not dict(result): a Result has .keys(), so dict() would treat it as a mapping.
    return {row[0]: row[1] for row in result}


def _cols(model: Any, *, without: tuple[str, ...] = ()) -> list[Any]:
    return [c for c in model.__table__.c if c.name not in without]


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- columns: one description per exported column ----------------------------------------------

Getter = Callable[[Env, Row], Any]


@dataclass(frozen=True)
class Col:
    """One exported column: its name, how a row's value is made from the raw database row, and
    the database columns ("table.column") it carries. tests/test_export_complete.py compares
    the carried columns of every type with the schema, so a new table or column cannot be left
    out of the export unnoticed (NOT_EXPORTED lists the deliberate exceptions)."""

    name: str
    get: Getter
    source: tuple[str, ...] = ()


def _column(attr: Any) -> Any:
    return attr.property.columns[0]


def _qual(attr: Any) -> str:
    column = _column(attr)
    return f"{column.table.name}.{column.name}"


def val(attr: Any, name: str | None = None, *, key: str | None = None) -> Col:
    """A database column as it is (renamed `name`; read from the raw row's `key`)."""
    k = key or _column(attr).name
    return Col(name or _column(attr).name, lambda env, r: r[k], (_qual(attr),))


def day(attr: Any, name: str | None = None, *, key: str | None = None) -> Col:
    """A date column, as YYYY-MM-DD."""
    k = key or _column(attr).name
    return Col(name or _column(attr).name, lambda env, r: _date(r[k]), (_qual(attr),))


def as_json(attr: Any, name: str | None = None) -> Col:
    """A column holding JSON text, exported as the value it encodes."""
    k = _column(attr).name
    return Col(name or k, lambda env, r: json.loads(r[k]), (_qual(attr),))


def moment(
    attr: Any, name: str | None = None, *, key: str | None = None, local: bool = True
) -> tuple[Col, ...]:
    """A time column in UTC (`...Z`), and with `local` the same time in the clinic's zone
    as `<name>_local`."""
    n = name or _column(attr).name
    k = key or _column(attr).name
    utc = Col(n, lambda env, r: iso(r[k]), (_qual(attr),))
    if not local:
        return (utc,)
    return utc, Col(f"{n}_local", lambda env, r: env.local(r[k]))


Human = Callable[[Env, Any], Any]


def ref(attr: Any, name: str, human: Human, *, key: str | None = None) -> tuple[Col, Col]:
    """A reference by internal id, and next to it the human ID a clinic uses (`name`)."""
    k = key or _column(attr).name
    return (
        Col(_column(attr).name, lambda env, r: r[k], (_qual(attr),)),
        Col(name, lambda env, r: human(env, r[k])),
    )


def derived(name: str, get: Getter, *sources: Any) -> Col:
    """A value computed from the row (`sources`: the database columns it carries)."""
    return Col(name, get, tuple(_qual(s) for s in sources))


def _room(env: Env, i: Any) -> Any:
    return env.rooms.get(i)


def _device(env: Env, i: Any) -> Any:
    return env.devices.get(i)


def _staff(env: Env, i: Any) -> Any:
    return env.staff_code(i)


def _sterilizer(env: Env, i: Any) -> Any:
    return env.sterilizers.get(i)


def _pack(env: Env, i: Any) -> Any:
    return env.packs.get(i)


def _disinfectant(env: Env, i: Any) -> Any:
    return env.disinfectants.get(i)


def _lot(part: int) -> Getter:
    """GTIN (0), lot (1) or expiry (2) of the row's cartridge lot (`lot_id`)."""

    def get(env: Env, r: Row) -> Any:
        value: Any = env.lots.get(r["lot_id"], ("", "", None))[part]
        return _date(value) if part == 2 else value

    return get


def op(model: Any, *, late: bool = True) -> tuple[Col, ...]:
    """Who entered the record and when; `late` for a record entered more than the rule pack's
    records.late_entry_minutes after its event time."""
    table = model.__table__.c
    when = "at" if "at" in table else "started_at" if "started_at" in table else None
    cols = (*ref(model.operator_id, "operator", _staff), *moment(model.recorded_at, local=False))
    if not late:
        return cols
    return (
        *cols,
        Col("late", lambda env, r: is_late(r[when] if when else None, r["recorded_at"],
                                           env.late_minutes)),
    )  # fmt: skip


_VOID = "_void_id"  # set on voidable rows by RecordType.rows
VOID = (
    Col("voided", lambda env, r: r[_VOID] is not None),
    Col("void_id", lambda env, r: r[_VOID]),
)
VOID_COLS = tuple(c.name for c in VOID)
OP_COLS = ("operator_id", "operator", "recorded_at", "late")


# --- record types ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordType:
    """One exported type: its columns and how its rows are chosen.

    By default the rows of `model` whose event time `when` falls in the period, in `order`
    (default: `when`, then id); `reference` types (registers) are exported whole, by id.
    `query` replaces that for a type that needs a join (its rows placed by another record's
    time, or a column of another table); `each_batch` adds derived values to a batch of raw
    rows (lists of packs, a BI as it counts, ...). Rows of a voidable model get `voided` and
    `void_id` values.
    """

    name: str
    model: Any
    fields: tuple[Col, ...]
    when: Any = None
    reference: bool = False
    order: tuple[Any, ...] = ()
    query: Callable[[Env], Select[Any]] | None = None
    each_batch: Callable[[Env, list[Row]], None] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.fields)

    def statement(self, env: Env) -> Select[Any]:
        if self.query is not None:
            return self.query(env)
        stmt = select(*_cols(self.model))
        if not self.reference:
            stmt = stmt.where(env.in_period(self.when))
        order = self.order or ((self.model.id,) if self.reference else (self.when, self.model.id))
        return stmt.order_by(*order)

    def rows(self, env: Env) -> Iterator[Row]:
        kind = KIND_OF.get(self.model)
        fields = [(c.name, c.get) for c in self.fields]
        for batch in env.batches(self.statement(env)):
            if kind is not None:
                voids = env.voids(kind, [r["id"] for r in batch])
                for r in batch:
                    r[_VOID] = voids.get(r["id"])
            if self.each_batch is not None:
                self.each_batch(env, batch)
            for r in batch:
                yield {name: get(env, r) for name, get in fields}


# Deliberately not exported, each with its reason ("table.column", or "table.*" for a whole
# table). Everything else in the schema is carried by some type (tests/test_export_complete.py).
NOT_EXPORTED: dict[str, str] = {
    "staff.pin_hash": "a secret; `staff.has_pin` says whether a PIN is set",
    "pin_events.pin_hash": "a secret; `pin_events.kind` says a PIN was set",
    "attachments.data": "the document's bytes: a CSV export writes them under attachments/, "
    "every export has their size and SHA-256",
    "notify_settings.*": "where reminders are sent, not a compliance record; its webhook URL "
    "is a credential. What was sent is in `notifications_sent`",
}


# --- sessions ------------------------------------------------------------------------------------


def _sessions_query(env: Env) -> Select[Any]:
    return (
        select(*_cols(Session), SessionEnd.at.label("ended_at"), SessionEnd.note.label("end_note"))
        .outerjoin(SessionEnd, SessionEnd.session_id == Session.id)
        .where(env.in_period(Session.started_at))
        .order_by(Session.started_at, Session.id)
    )


def _session_packs_of(env: Env, batch: list[Row]) -> None:
    packs: dict[int, list[tuple[str, int]]] = {}
    for sid, pack_id, cycle_id in env.session.execute(
        select(SessionPack.session_id, SessionPack.pack_id, SessionPack.cycle_id)
        .where(SessionPack.session_id.in_([r["id"] for r in batch]))
        .order_by(SessionPack.id)
    ):
        packs.setdefault(sid, []).append((env.packs.get(pack_id, str(pack_id)), cycle_id))
    for r in batch:
        r["_packs"] = packs.get(r["id"], [])


SESSIONS = RecordType(
    "sessions",
    Session,
    (
        val(Session.id),
        *moment(Session.started_at),
        *moment(SessionEnd.at, "ended_at", key="ended_at", local=False),
        *ref(Session.room_id, "room", _room),
        *ref(Session.device_id, "device", _device),
        *ref(Session.practitioner_id, "practitioner", _staff),
        # as in force when the session started, as trace-back and the reports print it
        Col("practitioner_name", lambda env, r: env.names(r["practitioner_id"], r["started_at"])
            or ""),
        val(Session.client),
        val(Session.depth_mm),
        val(Session.unit_id),
        val(Session.gtin),
        val(Session.lot),
        val(Session.serial),
        day(Session.expiry),
        Col("packs", lambda env, r: [p for p, _ in r["_packs"]]),
        Col("load_ids", lambda env, r: [c for _, c in r["_packs"]]),
        val(SessionEnd.note, "end_note", key="end_note"),
        *op(Session),
    ),
    query=_sessions_query,
    each_batch=_session_packs_of,
)
SESSION_COLS = SESSIONS.columns

SESSION_ENDS = RecordType(
    "session_ends",
    SessionEnd,
    (
        val(SessionEnd.id),
        *moment(SessionEnd.at),
        val(SessionEnd.session_id),
        val(SessionEnd.note),
        *op(SessionEnd),
    ),
    when=SessionEnd.at,
)

SESSION_PACKS = RecordType(
    "session_packs",
    SessionPack,
    (
        val(SessionPack.id),
        val(SessionPack.session_id),
        *ref(SessionPack.pack_id, "pack", _pack),
        val(SessionPack.cycle_id, "load_id"),
        *moment(SessionPack.recorded_at, local=False),
    ),
    query=lambda env: (
        select(*_cols(SessionPack))
        .join(Session, Session.id == SessionPack.session_id)
        .where(env.in_period(Session.started_at))
        .order_by(Session.started_at, Session.id, SessionPack.id)
    ),
)

REFUSALS = RecordType(
    "refusals",
    Refusal,
    (
        val(Refusal.id),
        *moment(Refusal.at),
        val(Refusal.room),
        val(Refusal.device),
        val(Refusal.practitioner),
        val(Refusal.client),
        val(Refusal.cartridge_scan),
        val(Refusal.gtin),
        val(Refusal.lot),
        val(Refusal.serial),
        val(Refusal.depth_mm),
        as_json(Refusal.packs),
        Col("reason_codes", lambda env, r: [x["code"] for x in json.loads(r["reasons"])]),
        as_json(Refusal.reasons),
        *op(Refusal),
    ),
    when=Refusal.at,
)


# --- sterilization -------------------------------------------------------------------------------


def _cycle_details(env: Env, batch: list[Row]) -> None:
    ids = [r["id"] for r in batch]
    packs: dict[int, list[str]] = {}
    for cid, pack_id in env.session.execute(
        select(CyclePack.cycle_id, CyclePack.pack_id)
        .where(CyclePack.cycle_id.in_(ids))
        .order_by(CyclePack.id)
    ):
        packs.setdefault(cid, []).append(env.packs.get(pack_id, str(pack_id)))
    bis = {
        cid: (bid, lot)
        for cid, bid, lot in env.session.execute(
            select(
                BiologicalIndicator.cycle_id, BiologicalIndicator.id, BiologicalIndicator.lot
            ).where(BiologicalIndicator.cycle_id.in_(ids))
        )
    }
    ci_reads = _pairs(
        env.session.execute(
            select(CycleCi.cycle_id, CycleCi.passed).where(CycleCi.cycle_id.in_(ids))
        )
    )
    for r in batch:
        r["_packs"] = packs.get(r["id"], [])
        r["_bi"] = bis.get(r["id"], (None, None))
        r["_ci_read"] = ci_reads.get(r["id"])
        r["_suspect"] = r["id"] in env.suspects


def _program(part: int) -> Getter:
    return lambda env, r: env.programs.get(r["program_id"], ("", None, None))[part]


CYCLES = RecordType(
    "cycles",
    Cycle,
    (
        val(Cycle.id),
        *moment(Cycle.at),
        *ref(Cycle.sterilizer_id, "sterilizer", _sterilizer),
        val(Cycle.load_no),
        val(Cycle.program_id),
        Col("program", _program(0)),
        Col("program_temp_c", _program(1)),
        Col("program_hold_min", _program(2)),
        val(Cycle.temp_c),
        val(Cycle.hold_min),
        val(Cycle.ci),
        val(Cycle.ci_type),
        derived(
            "status", lambda env, r: load_status(r["passed"], r["ci"], r["_ci_read"]), Cycle.passed
        ),
        Col("packs", lambda env, r: r["_packs"]),
        Col("bi_id", lambda env, r: r["_bi"][0]),
        Col("bi_lot", lambda env, r: r["_bi"][1]),
        *op(Cycle),
        *VOID,
        Col("suspect", lambda env, r: r["_suspect"]),
    ),
    when=Cycle.at,
    each_batch=_cycle_details,
)
CYCLE_COLS = CYCLES.columns

CYCLE_PACKS = RecordType(
    "cycle_packs",
    CyclePack,
    (
        val(CyclePack.id),
        val(CyclePack.cycle_id, "load_id"),
        *ref(CyclePack.pack_id, "pack", _pack),
        *moment(CyclePack.recorded_at, local=False),
    ),
    query=lambda env: (
        select(*_cols(CyclePack))
        .join(Cycle, Cycle.id == CyclePack.cycle_id)
        .where(env.in_period(Cycle.at))
        .order_by(Cycle.at, Cycle.id, CyclePack.id)
    ),
)


def _counted_reads(env: Env, batch: list[Row]) -> None:
    """Each BI of the batch as it counts, by the one definition `bi list`, trace, the gate and
    the monthly report use (`compliance.history`): its valid read, else its latest invalid
    one, voided reads never. One query per batch."""
    results = bi_results_of(env.session, [(r["id"], r["cycle_id"], r["lot"]) for r in batch])
    for r in batch:
        r["_bi"] = results[r["id"]]


BIS = RecordType(
    "bis",
    BiologicalIndicator,
    (
        val(BiologicalIndicator.id),
        val(BiologicalIndicator.cycle_id, "load_id"),
        *ref(Cycle.sterilizer_id, "sterilizer", _sterilizer),
        val(BiologicalIndicator.lot),
        *moment(Cycle.at, "placed_at", key="placed_at"),
        Col("result", lambda env, r: r["_bi"].result),
        Col("control", lambda env, r: r["_bi"].control),
        Col("valid", lambda env, r: r["_bi"].valid),
        Col("read_at", lambda env, r: iso(r["_bi"].read_at)),
        *moment(BiologicalIndicator.recorded_at, local=False),
    ),
    query=lambda env: (
        select(*_cols(BiologicalIndicator), Cycle.at.label("placed_at"), Cycle.sterilizer_id)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .where(env.in_period(Cycle.at))
        .order_by(Cycle.at, Cycle.id)
    ),
    each_batch=_counted_reads,
)

BI_READS = RecordType(
    "bi_reads",
    BiRead,
    (
        val(BiRead.id),
        *moment(BiRead.at),
        val(BiRead.bi_id),
        val(BiologicalIndicator.cycle_id, "load_id"),
        val(BiRead.result),
        val(BiRead.control),
        val(BiRead.valid),
        *op(BiRead),
        *VOID,
    ),
    query=lambda env: (
        select(*_cols(BiRead), BiologicalIndicator.cycle_id)
        .join(BiologicalIndicator, BiologicalIndicator.id == BiRead.bi_id)
        .where(env.in_period(BiRead.at))
        .order_by(BiRead.at, BiRead.id)
    ),
)

BI_LAB_EVENTS = RecordType(
    "bi_lab_events",
    BiLabEvent,
    (
        val(BiLabEvent.id),
        *moment(BiLabEvent.at),
        val(BiLabEvent.bi_id),
        val(BiLabEvent.kind),
        val(BiLabEvent.lab),
        val(BiLabEvent.envelope),
        val(BiLabEvent.reason),
        val(BiLabEvent.note),
        val(BiLabEvent.read_id),
        *op(BiLabEvent),
    ),
    when=BiLabEvent.at,
)

BI_DETAILS = RecordType(
    "bi_details",
    BiDetail,
    (
        val(BiDetail.id),
        val(BiDetail.bi_id),
        day(BiDetail.expires),
        val(BiDetail.control_lot),
        *moment(BiDetail.recorded_at, local=False),
    ),
    query=lambda env: (
        select(*_cols(BiDetail))
        .join(BiologicalIndicator, BiologicalIndicator.id == BiDetail.bi_id)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .where(env.in_period(Cycle.at))
        .order_by(Cycle.at, BiDetail.id)
    ),
)

BI_SKIPS = RecordType(
    "bi_skips",
    BiSkip,
    (
        val(BiSkip.id),
        *moment(BiSkip.at),
        *ref(BiSkip.sterilizer_id, "sterilizer", _sterilizer),
        val(BiSkip.week),
        val(BiSkip.reason),
        *op(BiSkip),
        *VOID,
    ),
    when=BiSkip.at,
)

AIR_REMOVAL_TESTS = RecordType(
    "air_removal_tests",
    AirRemovalTest,
    (
        val(AirRemovalTest.id),
        *moment(AirRemovalTest.at),
        *ref(AirRemovalTest.sterilizer_id, "sterilizer", _sterilizer),
        val(AirRemovalTest.result),
        *op(AirRemovalTest),
        *VOID,
    ),
    when=AirRemovalTest.at,
)

STERILIZER_SERVICES = RecordType(
    "sterilizer_services",
    SterilizerService,
    (
        val(SterilizerService.id),
        *moment(SterilizerService.at),
        *ref(SterilizerService.sterilizer_id, "sterilizer", _sterilizer),
        val(SterilizerService.repair),
        val(SterilizerService.note),
        *op(SterilizerService),
        *VOID,
    ),
    when=SterilizerService.at,
)

CYCLE_CIS = RecordType(
    "cycle_cis",
    CycleCi,
    (
        val(CycleCi.id),
        *moment(CycleCi.at),
        val(CycleCi.cycle_id, "load_id"),
        val(CycleCi.ci),
        val(CycleCi.ci_type),
        val(CycleCi.passed),
        *op(CycleCi),
    ),
    when=CycleCi.at,
)

IMPORTED_CYCLES = RecordType(
    "imported_cycles",
    ImportedCycle,
    (
        val(ImportedCycle.id),
        *ref(ImportedCycle.sterilizer_id, "sterilizer", _sterilizer),
        val(ImportedCycle.serial),
        val(ImportedCycle.device_cycle_no),
        val(ImportedCycle.kind),
        val(ImportedCycle.cycle_id, "load_id"),
        val(ImportedCycle.air_test_id),
        val(ImportedCycle.format),
        val(ImportedCycle.source_id, "source_attachment_id"),
        val(ImportedCycle.lines),
        *moment(ImportedCycle.started_at),
        val(ImportedCycle.program_text),
        val(ImportedCycle.set_temp_c),
        val(ImportedCycle.set_hold_min),
        val(ImportedCycle.device_ok),
        val(ImportedCycle.device_reason),
        val(ImportedCycle.device_hold_s),
        val(ImportedCycle.hold_s),
        val(ImportedCycle.temp_min_c),
        val(ImportedCycle.temp_max_c),
        val(ImportedCycle.pressure_min_kpa),
        val(ImportedCycle.pressure_max_kpa),
        derived(
            "status", lambda env, r: "passed" if r["passed"] else "failed", ImportedCycle.passed
        ),
        as_json(ImportedCycle.failures),
        *op(ImportedCycle),
        *moment(ImportedCycle.ended_at),
        val(ImportedCycle.pressure_unit),
        val(ImportedCycle.samples),
    ),
    when=ImportedCycle.started_at,
    order=(ImportedCycle.sterilizer_id, ImportedCycle.serial, ImportedCycle.device_cycle_no),
)


# --- cleaning ------------------------------------------------------------------------------------

ROOM_CLEANS = RecordType(
    "room_cleans",
    RoomClean,
    (
        val(RoomClean.id),
        *moment(RoomClean.at),
        *ref(RoomClean.room_id, "room", _room),
        val(RoomClean.kind),
        *ref(RoomClean.disinfectant_id, "disinfectant", _disinfectant),
        val(RoomClean.contact_min),
        val(RoomClean.note),
        *op(RoomClean),
        *VOID,
    ),
    when=RoomClean.at,
)

DEVICE_CLEANS = RecordType(
    "device_cleans",
    DeviceClean,
    (
        val(DeviceClean.id),
        *moment(DeviceClean.at),
        *ref(DeviceClean.device_id, "device", _device),
        *ref(DeviceClean.disinfectant_id, "disinfectant", _disinfectant),
        val(DeviceClean.contact_min),
        val(DeviceClean.barrier_lot),
        *op(DeviceClean),
        *VOID,
    ),
    when=DeviceClean.at,
)


# --- cartridges ----------------------------------------------------------------------------------

CARTRIDGES = RecordType(
    "cartridges",
    CartridgeUnit,
    (
        val(CartridgeUnit.id),
        Col("gtin", _lot(0)),
        Col("lot", _lot(1)),
        val(CartridgeUnit.serial),
        Col("expiry", _lot(2)),
        val(CartridgeUnit.lot_id),
        val(CartridgeUnit.receipt_id),
        *moment(CartridgeReceipt.at, "received_at", key="received_at"),
        val(CartridgeReceipt.supplier),
        val(CartridgeReceipt.invoice),
        Col("session_id", lambda env, r: r["session_id"]),
        Col("discard_id", lambda env, r: r["discard_id"]),
        *moment(CartridgeUnit.recorded_at, local=False),
    ),
    # Every unit received in the period, with the session that used it (if any) and its discard
    # unless voided (a voided discard did not happen: `cartridge list` calls the unit in stock).
    query=lambda env: (
        select(
            *_cols(CartridgeUnit),
            CartridgeReceipt.at.label("received_at"),
            CartridgeReceipt.supplier,
            CartridgeReceipt.invoice,
            Session.id.label("session_id"),
            Discard.id.label("discard_id"),
        )
        .join(CartridgeReceipt, CartridgeReceipt.id == CartridgeUnit.receipt_id)
        .outerjoin(Session, Session.unit_id == CartridgeUnit.id)
        .outerjoin(Discard, and_(Discard.unit_id == CartridgeUnit.id, counts(Discard)))
        .where(env.in_period(CartridgeReceipt.at))
        .order_by(CartridgeReceipt.at, CartridgeUnit.id)
    ),
)

CARTRIDGE_RECEIPTS = RecordType(
    "cartridge_receipts",
    CartridgeReceipt,
    (
        val(CartridgeReceipt.id),
        *moment(CartridgeReceipt.at),
        val(CartridgeReceipt.lot_id),
        Col("gtin", _lot(0)),
        Col("lot", _lot(1)),
        Col("expiry", _lot(2)),
        val(CartridgeReceipt.quantity),
        val(CartridgeReceipt.supplier),
        val(CartridgeReceipt.invoice),
        val(CartridgeReceipt.scan),
        *op(CartridgeReceipt),
    ),
    when=CartridgeReceipt.at,
)

RECALLS = RecordType(
    "recalls",
    Recall,
    (
        val(Recall.id),
        *moment(Recall.at),
        val(Recall.lot_id),
        Col("gtin", _lot(0)),
        Col("lot", _lot(1)),
        val(Recall.reason),
        *op(Recall),
        *VOID,
    ),
    when=Recall.at,
)

DISCARDS = RecordType(
    "discards",
    Discard,
    (
        val(Discard.id),
        *moment(Discard.at),
        val(Discard.unit_id),
        Col("gtin", _lot(0)),
        Col("lot", _lot(1)),
        val(CartridgeUnit.serial),
        val(Discard.reason),
        *op(Discard),
        *VOID,
    ),
    query=lambda env: (
        select(*_cols(Discard), CartridgeUnit.lot_id, CartridgeUnit.serial)
        .join(CartridgeUnit, CartridgeUnit.id == Discard.unit_id)
        .where(env.in_period(Discard.at))
        .order_by(Discard.at, Discard.id)
    ),
)


# --- incidents and exposures ---------------------------------------------------------------------

INCIDENTS = RecordType(
    "incidents",
    Incident,
    (
        val(Incident.id),
        *moment(Incident.at),
        val(Incident.session_id),
        val(Session.client),
        val(Incident.kind),
        val(Incident.severity),
        val(Incident.note),
        *op(Incident),
        *VOID,
        # An incident with no client session (a staff needlestick) names what it can.
        *ref(Incident.room_id, "room", _room),
        *ref(Incident.device_id, "device", _device),
        *ref(Incident.staff_id, "staff", _staff),
    ),
    query=lambda env: (
        select(*_cols(Incident), Session.client)
        .outerjoin(Session, Session.id == Incident.session_id)  # some have no session
        .where(env.in_period(Incident.at))
        .order_by(Incident.at, Incident.id)
    ),
)

EXPOSURES = RecordType(
    "exposures",
    Exposure,
    (
        val(Exposure.id),
        *moment(Exposure.at),
        val(Exposure.cause),
        val(Exposure.source_id),
        val(Exposure.summary),
        *op(Exposure),
    ),
    when=Exposure.at,
)

EXPOSURE_CLIENTS = RecordType(
    "exposure_clients",
    ExposureClient,
    (
        val(ExposureClient.id),
        val(ExposureClient.exposure_id),
        val(ExposureClient.session_id),
        val(ExposureClient.client),
        *moment(ExposureClient.recorded_at, local=False),
    ),
    # The affected list of each exposure opened in the period.
    query=lambda env: (
        select(*_cols(ExposureClient))
        .join(Exposure, Exposure.id == ExposureClient.exposure_id)
        .where(env.in_period(Exposure.at))
        .order_by(Exposure.at, Exposure.id, ExposureClient.id)
    ),
)

EXPOSURE_NOTICES = RecordType(
    "exposure_notices",
    ExposureNotice,
    (
        val(ExposureNotice.id),
        *moment(ExposureNotice.at),
        val(ExposureNotice.exposure_id),
        val(ExposureNotice.client),
        val(ExposureNotice.how),
        val(ExposureNotice.note),
        *op(ExposureNotice),
    ),
    when=ExposureNotice.at,
)

EXPOSURE_CLOSURES = RecordType(
    "exposure_closures",
    ExposureClosure,
    (
        val(ExposureClosure.id),
        *moment(ExposureClosure.at),
        val(ExposureClosure.exposure_id),
        val(ExposureClosure.note),
        *op(ExposureClosure),
    ),
    when=ExposureClosure.at,
)

NOTIFICATIONS_SENT = RecordType(
    "notifications_sent",
    NotificationSent,
    (
        val(NotificationSent.id),
        day(NotificationSent.day),
        val(NotificationSent.item),
        val(NotificationSent.kind),
        val(NotificationSent.channels),
        val(NotificationSent.text),
        *moment(NotificationSent.recorded_at, local=False),
    ),
    # Dated by the clinic day it was sent for.
    query=lambda env: (
        select(*_cols(NotificationSent))
        .where(NotificationSent.day >= env.date_from, NotificationSent.day <= env.date_to)
        .order_by(NotificationSent.day, NotificationSent.id)
    ),
)


# --- corrections, sign-off, the audit log --------------------------------------------------------

_Voids = voids_stmt()  # the voids table's model (only the compliance core names it)

VOIDS = RecordType(
    "voids",
    _Voids,
    (
        val(_Voids.id),
        *moment(_Voids.at),
        val(_Voids.kind),
        val(_Voids.record_id),
        val(_Voids.reason),
        *op(_Voids),
    ),
    when=_Voids.at,
)

SIGNATURES = RecordType(
    "signatures",
    Signature,
    (
        val(Signature.id),
        *moment(Signature.at),
        val(Signature.month),
        val(Signature.meaning),
        *ref(Signature.staff_id, "staff", _staff),
        val(Signature.name),
        val(Signature.head),
        *moment(Signature.recorded_at, local=False),
        val(Signature.digest),
        val(Signature.marks),
    ),
    when=Signature.at,
)

AUDIT = RecordType(
    "audit",
    AuditEntry,
    (
        val(AuditEntry.seq),
        *moment(AuditEntry.at),
        val(AuditEntry.clock),
        val(AuditEntry.operator),
        val(AuditEntry.action),
        val(AuditEntry.records),
        val(AuditEntry.prev_hash),
        val(AuditEntry.hash),
    ),
    when=AuditEntry.at,
    order=(AuditEntry.seq,),
)

PIN_EVENTS = RecordType(
    "pin_events",
    PinEvent,
    (
        val(PinEvent.id),
        *moment(PinEvent.at),
        *ref(PinEvent.staff_id, "staff", _staff),
        val(PinEvent.kind),
        *op(PinEvent),
    ),
    when=PinEvent.at,
)


# --- registers (reference tables, exported whole) ------------------------------------------------


def _stopped(kind: str) -> Callable[[Env, list[Row]], None]:
    """Sets `_stopped`: when the entry was deactivated/retired, if that stands now (the rule in
    compliance.registers: a reinstatement at or after the last stop undoes it)."""
    from sterilog.compliance.registers import stopped_at

    def each_batch(env: Env, batch: list[Row]) -> None:
        stopped = stopped_at(env.session, kind, [r["id"] for r in batch])
        for r in batch:
            r["_stopped"] = stopped.get(r["id"])

    return each_batch


STAFF = RecordType(
    "staff",
    Staff,
    (
        val(Staff.id),
        val(Staff.code),
        val(Staff.name),
        val(Staff.role),
        val(Staff.license_no),
        day(Staff.license_expires),
        val(Staff.max_depth_mm),
        Col("has_pin", lambda env, r: bool(r["has_pin"])),
        Col("deactivated_at", lambda env, r: iso(r["_stopped"])),
        *moment(Staff.recorded_at, local=False),
    ),
    reference=True,
    query=lambda env: select(
        *_cols(Staff, without=("pin_hash",)), Staff.pin_hash.is_not(None).label("has_pin")
    ).order_by(Staff.id),
    each_batch=_stopped("staff"),
)

STAFF_DEACTIVATIONS = RecordType(
    "staff_deactivations",
    StaffDeactivation,
    (
        val(StaffDeactivation.id),
        *moment(StaffDeactivation.at),
        *ref(StaffDeactivation.staff_id, "staff", _staff),
        val(StaffDeactivation.reason),
        *op(StaffDeactivation),
    ),
    reference=True,
    order=(StaffDeactivation.at, StaffDeactivation.id),
)

ROOMS = RecordType(
    "rooms",
    Room,
    (val(Room.id), val(Room.code), val(Room.name), *moment(Room.recorded_at, local=False)),
    reference=True,
)

DEVICES = RecordType(
    "devices",
    Device,
    (
        val(Device.id),
        val(Device.code, "serial"),
        val(Device.model),
        val(Device.max_depth_mm),
        Col("retired_at", lambda env, r: iso(r["_stopped"])),
        *moment(Device.recorded_at, local=False),
    ),
    reference=True,
    each_batch=_stopped("device"),
)

DEVICE_RETIREMENTS = RecordType(
    "device_retirements",
    DeviceRetirement,
    (
        val(DeviceRetirement.id),
        *moment(DeviceRetirement.at),
        *ref(DeviceRetirement.device_id, "device", _device),
        val(DeviceRetirement.reason),
        *op(DeviceRetirement),
    ),
    reference=True,
    order=(DeviceRetirement.at, DeviceRetirement.id),
)

_REGISTER_OF: dict[str, Human] = {
    "staff": _staff,
    "device": _device,
    "disinfectant": _disinfectant,
}

REGISTER_CHANGES = RecordType(
    "register_changes",
    RegisterChange,
    (
        val(RegisterChange.id),
        *moment(RegisterChange.at),
        val(RegisterChange.kind),
        val(RegisterChange.record_id),
        # The corrected entry's ID: staff ID, device serial or disinfectant name.
        Col("record", lambda env, r: _REGISTER_OF[r["kind"]](env, r["record_id"])),
        val(RegisterChange.name),
        val(RegisterChange.role),
        val(RegisterChange.license_no),
        day(RegisterChange.license_expires),
        val(RegisterChange.max_depth_mm),
        val(RegisterChange.model),
        val(RegisterChange.contact_min),
        val(RegisterChange.reg_no),
        val(RegisterChange.level),
        val(RegisterChange.reinstate),
        *op(RegisterChange),
    ),
    reference=True,
    order=(RegisterChange.at, RegisterChange.id),
)


def _current_serials(env: Env, batch: list[Row]) -> None:
    for r in batch:
        r["_serial"] = current_serial(env.session, r["id"])


STERILIZERS = RecordType(
    "sterilizers",
    Sterilizer,
    (
        val(Sterilizer.id),
        val(Sterilizer.code),
        val(Sterilizer.model),
        val(Sterilizer.type),
        # The serial in force (the newest of sterilizer_serials, else the one added with).
        derived("serial", lambda env, r: r["_serial"], Sterilizer.serial),
        *moment(Sterilizer.recorded_at, local=False),
    ),
    reference=True,
    each_batch=_current_serials,
)

STERILIZER_SERIALS = RecordType(
    "sterilizer_serials",
    SterilizerSerial,
    (
        val(SterilizerSerial.id),
        *ref(SterilizerSerial.sterilizer_id, "sterilizer", _sterilizer),
        val(SterilizerSerial.serial),
        *op(SterilizerSerial, late=False),
    ),
    reference=True,
)

PROGRAMS = RecordType(
    "programs",
    Program,
    (
        val(Program.id),
        *ref(Program.sterilizer_id, "sterilizer", _sterilizer),
        val(Program.name),
        val(Program.temp_c),
        val(Program.hold_min),
        *moment(Program.recorded_at, local=False),
    ),
    reference=True,
)

PACKS = RecordType(
    "packs",
    Pack,
    (val(Pack.id), val(Pack.code), val(Pack.contents), *moment(Pack.recorded_at, local=False)),
    reference=True,
)

DISINFECTANTS = RecordType(
    "disinfectants",
    Disinfectant,
    (
        val(Disinfectant.id),
        val(Disinfectant.code, "name"),
        val(Disinfectant.contact_min),
        val(Disinfectant.reg_no),
        val(Disinfectant.level),
        *moment(Disinfectant.recorded_at, local=False),
    ),
    reference=True,
)

CARTRIDGE_LOTS = RecordType(
    "cartridge_lots",
    CartridgeLot,
    (
        val(CartridgeLot.id),
        val(CartridgeLot.gtin),
        val(CartridgeLot.lot),
        day(CartridgeLot.expiry),
        day(CartridgeLot.production_date),
        *moment(CartridgeLot.recorded_at, local=False),
    ),
    reference=True,
)

ATTACHMENTS = RecordType(
    "attachments",
    Attachment,
    (
        val(Attachment.id),
        val(Attachment.kind),
        val(Attachment.record_id),
        val(Attachment.filename),
        val(Attachment.media_type),
        val(Attachment.size),
        val(Attachment.sha256),
        val(Attachment.note),
        *op(Attachment, late=False),
    ),
    reference=True,
    # The documents' metadata; the bytes go to attachments/ in a CSV export.
    query=lambda env: select(*_cols(Attachment, without=("data",))).order_by(Attachment.id),
)

SETTINGS = RecordType(
    "settings",
    Setting,
    (
        val(Setting.id),
        val(Setting.clinic_name),
        val(Setting.tz),
        val(Setting.rules_name),
        val(Setting.rules_toml),
        val(Setting.scanner_gs),
        val(Setting.training),
        *moment(Setting.recorded_at, local=False),
    ),
    reference=True,
)


def attachment_file_name(att_id: int, filename: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in filename)[:120]
    return f"{att_id}-{safe or 'file'}"


# SPEC §6.7's types first, in its order; then the extra ones; the registers last.
TYPES: tuple[RecordType, ...] = (
    SESSIONS,
    REFUSALS,
    CYCLES,
    BIS,
    AIR_REMOVAL_TESTS,
    ROOM_CLEANS,
    DEVICE_CLEANS,
    CARTRIDGES,
    INCIDENTS,
    VOIDS,
    AUDIT,
    # --- more than SPEC §6.7 lists ---
    SESSION_PACKS,
    CYCLE_PACKS,
    BI_READS,
    BI_LAB_EVENTS,
    BI_DETAILS,
    BI_SKIPS,
    CARTRIDGE_RECEIPTS,
    RECALLS,
    DISCARDS,
    STERILIZER_SERVICES,
    SIGNATURES,
    IMPORTED_CYCLES,
    CYCLE_CIS,
    SESSION_ENDS,
    EXPOSURES,
    EXPOSURE_CLIENTS,
    EXPOSURE_NOTICES,
    EXPOSURE_CLOSURES,
    NOTIFICATIONS_SENT,
    PIN_EVENTS,
    # --- registers and their history, exported whole ---
    ATTACHMENTS,
    STAFF,
    STAFF_DEACTIVATIONS,
    ROOMS,
    DEVICES,
    DEVICE_RETIREMENTS,
    REGISTER_CHANGES,
    STERILIZERS,
    STERILIZER_SERIALS,
    PROGRAMS,
    PACKS,
    DISINFECTANTS,
    CARTRIDGE_LOTS,
    SETTINGS,
)

# --- writing -----------------------------------------------------------------------------------


@dataclass
class ExportResult:
    path: str
    format: str
    head: str
    counts: dict[str, int]
    files: list[dict[str, Any]]
    sha256: str | None = None


Progress = Callable[[str, int], None]


def neutralise(value: str) -> str:
    """Make a CSV cell inert in spreadsheets (OWASP CSV injection)."""
    return "'" + value if value[:1] in _FORMULA_START else value


def csv_cell(value: Any) -> str:
    kind = type(value)
    if kind is str:
        text: str = value
        return "'" + text if text[:1] in _FORMULA_START else text
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return repr(value)
    if kind is list or kind is dict:
        return neutralise(_COMPACT.encode(value))
    return neutralise(str(value))


def check_period(date_from: dt.date, date_to: dt.date) -> None:
    if date_to < date_from:
        raise UserError(
            f"--to {date_to.isoformat()} is before --from {date_from.isoformat()}; "
            "the period is --from to --to, both days included"
        )


def _check_csv_target(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise UserError(
            f"directory {str(parent)!r} does not exist; create it first or choose another -o"
        )
    if path.is_symlink():
        raise UserError(f"-o {str(path)!r} is a symbolic link; sterilog never writes through one")
    if path.exists():
        if not path.is_dir():
            raise UserError(f"-o {str(path)!r} is a file; --format csv writes a folder of files")
        if any(path.iterdir()):
            raise UserError(
                f"folder {str(path)!r} is not empty; choose a new or empty folder for the CSV "
                "export (nothing is overwritten)"
            )


def _open_private(path: Path, *, binary: bool = False) -> IO[Any]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    if binary:
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _counted(rows: Iterable[Row], name: str, progress: Progress | None) -> Iterator[Row]:
    for n, row in enumerate(rows, 1):
        yield row
        if progress is not None and n % BATCH == 0:
            progress(name, n)


def export(
    session: DbSession,
    clinic: Clinic,
    now: dt.datetime,
    date_from: dt.date,
    date_to: dt.date,
    fmt: str,
    out: Path | output.Target,
    *,
    progress: Progress | None = None,
    version: str = "",
) -> ExportResult:
    """Write the export of [date_from, date_to] (clinic days) to `out`. Nothing half-written."""
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    check_period(date_from, date_to)
    if fmt == "json":
        target = out if isinstance(out, output.Target) else output.check(str(out))
        path = Path(str(target.path)) if target.path is not None else Path(output.STDOUT)
    else:
        if isinstance(out, output.Target):
            if out.path is None:
                raise UserError("-o - (standard output) is for --format json; csv writes a folder")
            out = out.path
        path = out.expanduser().absolute()
        _check_csv_target(path)
    start = local_day_bounds(date_from, clinic.tz)[0]
    end = local_day_bounds(date_to, clinic.tz)[1]
    seq, digest = audit.head(session)
    head = f"{seq}:{digest}"
    env = Env(
        session=session,
        start=start,
        end=end,
        tz=clinic.tz,
        date_from=date_from,
        date_to=date_to,
        late_minutes=clinic.rules.late_entry_minutes,
    )
    env.load_registers()
    meta = {
        "clinic": clinic.name,
        "tz": clinic.tz_name,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "period_utc": {"start": iso(start), "end": iso(end)},
        "generated_at": iso(now),
        "head": head,
        "sterilog_version": version,
        "types": {t.name: list(t.columns) for t in TYPES},
        "reference_tables": [t.name for t in TYPES if t.reference],
    }
    if fmt == "json":
        counts, sha = _write_json(target, meta, env, progress)
        return ExportResult(str(target), fmt, head, counts, [], sha)
    counts, files = _write_csv(path, meta, env, progress)
    return ExportResult(str(path), fmt, head, counts, files)


def _dumps(value: Any) -> str:
    return _JSON.encode(value)


class _Hashing:
    """A text sink that encodes to UTF-8, writes to a binary stream and hashes what it wrote."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.hash = hashlib.sha256()

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.hash.update(data)
        self.fh.write(data)


def _write_json(
    target: output.Target, meta: dict[str, Any], env: Env, progress: Progress | None
) -> tuple[dict[str, int], str]:
    """One JSON document, through sterilog.output (private temp file renamed, or stdout)."""
    counts: dict[str, int] = {}
    with output.open_binary(target) as fh:
        f = _Hashing(fh)
        f.write('{"meta": ' + _dumps(meta))
        for t in TYPES:
            f.write(f",\n{_dumps(t.name)}: [")
            n = 0
            for row in _counted(t.rows(env), t.name, progress):
                f.write(("\n" if n == 0 else ",\n") + _dumps(row))
                n += 1
            f.write("\n]" if n else "]")
            counts[t.name] = n
        f.write(',\n"counts": ' + _dumps(counts) + "\n}\n")
    return counts, f.hash.hexdigest()


def _write_attachments(folder: Path, env: Env) -> list[dict[str, Any]]:
    """Every attachment's original bytes under attachments/, one at a time (bounded memory),
    each checked against its recorded SHA-256 before it is written."""
    out: list[dict[str, Any]] = []
    ids = list(env.session.execute(select(Attachment.id).order_by(Attachment.id)).scalars())
    if not ids:
        return out
    (folder / "attachments").mkdir()
    for att_id in ids:
        row = env.session.execute(
            select(
                Attachment.filename,
                Attachment.sha256,
                Attachment.data,
                Attachment.kind,
                Attachment.record_id,
            ).where(Attachment.id == att_id)
        ).one()
        data = bytes(row.data)
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise IntegrityFailure(
                f"attachment {att_id}'s bytes do not match its recorded SHA-256; run "
                "`sterilog audit verify` before exporting"
            )
        name = "attachments/" + attachment_file_name(att_id, row.filename)
        with _open_private(folder / name, binary=True) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        out.append(
            {
                "file": name,
                "attachment_id": att_id,
                "kind": row.kind,
                "record_id": row.record_id,
                "filename": row.filename,
                "bytes": len(data),
                "sha256": row.sha256,
            }
        )
    return out


def _write_csv(
    path: Path, meta: dict[str, Any], env: Env, progress: Progress | None
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    tmp = Path(tempfiles.mkdtemp(path.parent, path.name))
    counts: dict[str, int] = {}
    files: list[dict[str, Any]] = []
    try:
        for t in TYPES:
            name = f"{t.name}.csv"
            with _open_private(tmp / name) as f:
                writer = csv.writer(f)
                writer.writerow(t.columns)
                n = 0
                for row in _counted(t.rows(env), t.name, progress):
                    writer.writerow([csv_cell(row[c]) for c in t.columns])
                    n += 1
                f.flush()
                os.fsync(f.fileno())
            counts[t.name] = n
            files.append(
                {
                    "file": name,
                    "type": t.name,
                    "rows": n,
                    "bytes": (tmp / name).stat().st_size,
                    "sha256": _sha256(tmp / name),
                    "reference": t.reference,
                }
            )
        attached = _write_attachments(tmp, env)
        manifest = {
            "meta": {
                **{k: v for k, v in meta.items() if k != "types"},
                "encoding": "utf-8",
                "csv": "RFC 4180: comma-separated, header row, CRLF line ends",
            },
            "files": files,
            "attachments": attached,
        }
        with _open_private(tmp / "manifest.json") as f:
            f.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
            f.flush()
            os.fsync(f.fileno())
        if path.is_dir():
            path.rmdir()  # checked empty above; replaced by the finished folder
        os.rename(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts, files
