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

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session as DbSession

from sterilog import audit, output, tempfiles
from sterilog.clock import iso, local_day_bounds
from sterilog.compliance.rules import load_status
from sterilog.compliance.voids import void_ids, voids_stmt
from sterilog.errors import IntegrityFailure, UserError
from sterilog.models import (
    AirRemovalTest,
    Attachment,
    AuditEntry,
    BiologicalIndicator,
    BiRead,
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
    ImportedCycle,
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
    StaffDeactivation,
    Sterilizer,
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
    staff: dict[int, tuple[str, str]] = field(default_factory=dict)
    rooms: dict[int, str] = field(default_factory=dict)
    devices: dict[int, str] = field(default_factory=dict)
    sterilizers: dict[int, str] = field(default_factory=dict)
    programs: dict[int, tuple[str, float, float]] = field(default_factory=dict)
    packs: dict[int, str] = field(default_factory=dict)
    disinfectants: dict[int, str] = field(default_factory=dict)
    lots: dict[int, tuple[str, str, dt.date]] = field(default_factory=dict)
    late_minutes: int = 60  # the clinic rule pack's records.late_entry_minutes

    def load_registers(self) -> None:
        s = self.session
        self.staff = {i: (c, n) for i, c, n in s.execute(select(Staff.id, Staff.code, Staff.name))}
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


def _cols(model: Any) -> list[Any]:
    return list(model.__table__.c)


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _void_cols(row: Row, voids: dict[int, int]) -> Row:
    void_id = voids.get(row["id"])
    return {"voided": void_id is not None, "void_id": void_id}


VOID_COLS = ("voided", "void_id")
OP_COLS = ("operator_id", "operator", "recorded_at", "late")


def _op(env: Env, r: Row) -> Row:
    from sterilog.lateness import is_late

    at = r["at"] if "at" in r else r.get("started_at")
    return {
        "operator_id": r["operator_id"],
        "operator": env.staff_code(r["operator_id"]),
        "recorded_at": iso(r["recorded_at"]),
        "late": is_late(at, r["recorded_at"], env.late_minutes),
    }


# --- record types of the period ----------------------------------------------------------------


def _sessions(env: Env) -> Iterator[Row]:
    stmt = (
        select(*_cols(Session), SessionEnd.at.label("ended_at"), SessionEnd.note.label("end_note"))
        .outerjoin(SessionEnd, SessionEnd.session_id == Session.id)
        .where(env.in_period(Session.started_at))
        .order_by(Session.started_at, Session.id)
    )
    for batch in env.batches(stmt):
        ids = [r["id"] for r in batch]
        packs: dict[int, list[tuple[str, int]]] = {}
        for sid, pack_id, cycle_id in env.session.execute(
            select(SessionPack.session_id, SessionPack.pack_id, SessionPack.cycle_id)
            .where(SessionPack.session_id.in_(ids))
            .order_by(SessionPack.id)
        ):
            packs.setdefault(sid, []).append((env.packs.get(pack_id, str(pack_id)), cycle_id))
        for r in batch:
            used = packs.get(r["id"], [])
            staff = env.staff.get(r["practitioner_id"], ("", ""))
            yield {
                "id": r["id"],
                "started_at": iso(r["started_at"]),
                "started_at_local": env.local(r["started_at"]),
                "ended_at": iso(r["ended_at"]),
                "room_id": r["room_id"],
                "room": env.rooms.get(r["room_id"]),
                "device_id": r["device_id"],
                "device": env.devices.get(r["device_id"]),
                "practitioner_id": r["practitioner_id"],
                "practitioner": staff[0],
                "practitioner_name": staff[1],
                "client": r["client"],
                "depth_mm": r["depth_mm"],
                "unit_id": r["unit_id"],
                "gtin": r["gtin"],
                "lot": r["lot"],
                "serial": r["serial"],
                "expiry": _date(r["expiry"]),
                "packs": [p for p, _ in used],
                "load_ids": [c for _, c in used],
                "end_note": r["end_note"],
                **_op(env, r),
            }


SESSION_COLS = (
    "id", "started_at", "started_at_local", "ended_at", "room_id", "room", "device_id", "device",
    "practitioner_id", "practitioner", "practitioner_name", "client", "depth_mm", "unit_id",
    "gtin", "lot", "serial", "expiry", "packs", "load_ids", "end_note", *OP_COLS,
)  # fmt: skip


def _session_packs(env: Env) -> Iterator[Row]:
    stmt = (
        select(*_cols(SessionPack))
        .join(Session, Session.id == SessionPack.session_id)
        .where(env.in_period(Session.started_at))
        .order_by(Session.started_at, Session.id, SessionPack.id)
    )
    for batch in env.batches(stmt):
        for r in batch:
            yield {
                "id": r["id"],
                "session_id": r["session_id"],
                "pack_id": r["pack_id"],
                "pack": env.packs.get(r["pack_id"]),
                "load_id": r["cycle_id"],
            }


def _refusals(env: Env) -> Iterator[Row]:
    stmt = select(*_cols(Refusal)).where(env.in_period(Refusal.at)).order_by(Refusal.at, Refusal.id)
    for batch in env.batches(stmt):
        for r in batch:
            reasons = json.loads(r["reasons"])
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "room": r["room"],
                "device": r["device"],
                "practitioner": r["practitioner"],
                "client": r["client"],
                "cartridge_scan": r["cartridge_scan"],
                "gtin": r["gtin"],
                "lot": r["lot"],
                "serial": r["serial"],
                "depth_mm": r["depth_mm"],
                "packs": json.loads(r["packs"]),
                "reason_codes": [x["code"] for x in reasons],
                "reasons": reasons,
                **_op(env, r),
            }


def _cycles(env: Env) -> Iterator[Row]:
    stmt = select(*_cols(Cycle)).where(env.in_period(Cycle.at)).order_by(Cycle.at, Cycle.id)
    for batch in env.batches(stmt):
        ids = [r["id"] for r in batch]
        voids = env.voids("cycle", ids)
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
            program = env.programs.get(r["program_id"], ("", None, None))
            bi = bis.get(r["id"])
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "sterilizer_id": r["sterilizer_id"],
                "sterilizer": env.sterilizers.get(r["sterilizer_id"]),
                "load_no": r["load_no"],
                "program_id": r["program_id"],
                "program": program[0],
                "program_temp_c": program[1],
                "program_hold_min": program[2],
                "temp_c": r["temp_c"],
                "hold_min": r["hold_min"],
                "ci": r["ci"],
                "ci_type": r["ci_type"],
                "status": load_status(r["passed"], r["ci"], ci_reads.get(r["id"])),
                "packs": packs.get(r["id"], []),
                "bi_id": bi[0] if bi else None,
                "bi_lot": bi[1] if bi else None,
                **_op(env, r),
                **_void_cols(r, voids),
            }


CYCLE_COLS = (
    "id", "at", "at_local", "sterilizer_id", "sterilizer", "load_no", "program_id", "program",
    "program_temp_c", "program_hold_min", "temp_c", "hold_min", "ci", "ci_type", "status",
    "packs", "bi_id", "bi_lot", *OP_COLS, *VOID_COLS,
)  # fmt: skip


def _cycle_packs(env: Env) -> Iterator[Row]:
    stmt = (
        select(*_cols(CyclePack))
        .join(Cycle, Cycle.id == CyclePack.cycle_id)
        .where(env.in_period(Cycle.at))
        .order_by(Cycle.at, Cycle.id, CyclePack.id)
    )
    for batch in env.batches(stmt):
        for r in batch:
            yield {
                "id": r["id"],
                "load_id": r["cycle_id"],
                "pack_id": r["pack_id"],
                "pack": env.packs.get(r["pack_id"]),
            }


def _bis(env: Env) -> Iterator[Row]:
    stmt = (
        select(*_cols(BiologicalIndicator), Cycle.at.label("placed_at"), Cycle.sterilizer_id)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .where(env.in_period(Cycle.at))
        .order_by(Cycle.at, Cycle.id)
    )
    for batch in env.batches(stmt):
        ids = [r["id"] for r in batch]
        reads = list(
            env.session.execute(
                select(BiRead.id, BiRead.bi_id, BiRead.result, BiRead.control, BiRead.valid,
                       BiRead.at)
                .where(BiRead.bi_id.in_(ids))
                .order_by(BiRead.at, BiRead.id)
            ).all()
        )  # fmt: skip
        voided = env.voids("bi-read", [x[0] for x in reads])
        latest: dict[int, tuple[Any, ...]] = {}
        for read in reads:
            if read[0] not in voided:
                latest[read[1]] = read
        for r in batch:
            last = latest.get(r["id"])
            yield {
                "id": r["id"],
                "load_id": r["cycle_id"],
                "sterilizer_id": r["sterilizer_id"],
                "sterilizer": env.sterilizers.get(r["sterilizer_id"]),
                "lot": r["lot"],
                "placed_at": iso(r["placed_at"]),
                "placed_at_local": env.local(r["placed_at"]),
                "result": last[2] if last else None,
                "control": last[3] if last else None,
                "valid": last[4] if last else None,
                "read_at": iso(last[5]) if last else None,
                "recorded_at": iso(r["recorded_at"]),
            }


def _bi_lab_events(env: Env) -> Iterator[Row]:
    """Issue 16: BI details (expiry, control lot) are in `bis`' own rows here too."""
    from sterilog.models import BiLabEvent

    stmt = (
        select(*_cols(BiLabEvent))
        .where(env.in_period(BiLabEvent.at))
        .order_by(BiLabEvent.at, BiLabEvent.id)
    )
    for batch in env.batches(stmt):
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "bi_id": r["bi_id"],
                "kind": r["kind"],
                "lab": r["lab"],
                "envelope": r["envelope"],
                "reason": r["reason"],
                "note": r["note"],
                "read_id": r["read_id"],
                **_op(env, r),
            }


def _bi_details(env: Env) -> Iterator[Row]:
    from sterilog.models import BiDetail

    stmt = (
        select(*_cols(BiDetail), Cycle.at.label("placed_at"))
        .join(BiologicalIndicator, BiologicalIndicator.id == BiDetail.bi_id)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .where(env.in_period(Cycle.at))
        .order_by(Cycle.at, BiDetail.id)
    )
    for batch in env.batches(stmt):
        for r in batch:
            yield {
                "id": r["id"],
                "bi_id": r["bi_id"],
                "expires": _date(r["expires"]),
                "control_lot": r["control_lot"],
            }


def _bi_skips(env: Env) -> Iterator[Row]:
    from sterilog.models import BiSkip

    stmt = select(*_cols(BiSkip)).where(env.in_period(BiSkip.at)).order_by(BiSkip.at, BiSkip.id)
    for batch in env.batches(stmt):
        voids = env.voids("bi-skip", [r["id"] for r in batch])
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "sterilizer_id": r["sterilizer_id"],
                "week": r["week"],
                "reason": r["reason"],
                **_op(env, r),
                **_void_cols(r, voids),
            }


def _bi_reads(env: Env) -> Iterator[Row]:
    stmt = (
        select(*_cols(BiRead), BiologicalIndicator.cycle_id)
        .join(BiologicalIndicator, BiologicalIndicator.id == BiRead.bi_id)
        .where(env.in_period(BiRead.at))
        .order_by(BiRead.at, BiRead.id)
    )
    for batch in env.batches(stmt):
        voids = env.voids("bi-read", [r["id"] for r in batch])
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "bi_id": r["bi_id"],
                "load_id": r["cycle_id"],
                "result": r["result"],
                "control": r["control"],
                "valid": r["valid"],
                **_op(env, r),
                **_void_cols(r, voids),
            }


def _air_removal(env: Env) -> Iterator[Row]:
    t = AirRemovalTest
    stmt = select(*_cols(t)).where(env.in_period(t.at)).order_by(t.at, t.id)
    for batch in env.batches(stmt):
        voids = env.voids("air-removal", [r["id"] for r in batch])
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "sterilizer_id": r["sterilizer_id"],
                "sterilizer": env.sterilizers.get(r["sterilizer_id"]),
                "result": r["result"],
                **_op(env, r),
                **_void_cols(r, voids),
            }


def _room_cleans(env: Env) -> Iterator[Row]:
    t = RoomClean
    stmt = select(*_cols(t)).where(env.in_period(t.at)).order_by(t.at, t.id)
    for batch in env.batches(stmt):
        voids = env.voids("room-clean", [r["id"] for r in batch])
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "room_id": r["room_id"],
                "room": env.rooms.get(r["room_id"]),
                "kind": r["kind"],
                "disinfectant_id": r["disinfectant_id"],
                "disinfectant": env.disinfectants.get(r["disinfectant_id"]),
                "contact_min": r["contact_min"],
                "note": r["note"],
                **_op(env, r),
                **_void_cols(r, voids),
            }


def _device_cleans(env: Env) -> Iterator[Row]:
    t = DeviceClean
    stmt = select(*_cols(t)).where(env.in_period(t.at)).order_by(t.at, t.id)
    for batch in env.batches(stmt):
        voids = env.voids("device-clean", [r["id"] for r in batch])
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "device_id": r["device_id"],
                "device": env.devices.get(r["device_id"]),
                "disinfectant_id": r["disinfectant_id"],
                "disinfectant": env.disinfectants.get(r["disinfectant_id"]),
                "contact_min": r["contact_min"],
                "barrier_lot": r["barrier_lot"],
                **_op(env, r),
                **_void_cols(r, voids),
            }


def _cartridges(env: Env) -> Iterator[Row]:
    """Every unit received in the period, with the session that used it (if any)."""
    stmt = (
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
        .outerjoin(Discard, Discard.unit_id == CartridgeUnit.id)
        .where(env.in_period(CartridgeReceipt.at))
        .order_by(CartridgeReceipt.at, CartridgeUnit.id)
    )
    for batch in env.batches(stmt):
        for r in batch:
            gtin, lot, expiry = env.lots.get(r["lot_id"], ("", "", None))
            yield {
                "id": r["id"],
                "gtin": gtin,
                "lot": lot,
                "serial": r["serial"],
                "expiry": _date(expiry),
                "lot_id": r["lot_id"],
                "receipt_id": r["receipt_id"],
                "received_at": iso(r["received_at"]),
                "received_at_local": env.local(r["received_at"]),
                "supplier": r["supplier"],
                "invoice": r["invoice"],
                "session_id": r["session_id"],
                "discard_id": r["discard_id"],
            }


def _receipts(env: Env) -> Iterator[Row]:
    t = CartridgeReceipt
    stmt = select(*_cols(t)).where(env.in_period(t.at)).order_by(t.at, t.id)
    for batch in env.batches(stmt):
        for r in batch:
            gtin, lot, expiry = env.lots.get(r["lot_id"], ("", "", None))
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "lot_id": r["lot_id"],
                "gtin": gtin,
                "lot": lot,
                "expiry": _date(expiry),
                "quantity": r["quantity"],
                "supplier": r["supplier"],
                "invoice": r["invoice"],
                "scan": r["scan"],
                **_op(env, r),
            }


def _recalls(env: Env) -> Iterator[Row]:
    t = Recall
    stmt = select(*_cols(t)).where(env.in_period(t.at)).order_by(t.at, t.id)
    for batch in env.batches(stmt):
        voids = env.voids("recall", [r["id"] for r in batch])
        for r in batch:
            gtin, lot, _expiry = env.lots.get(r["lot_id"], ("", "", None))
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "lot_id": r["lot_id"],
                "gtin": gtin,
                "lot": lot,
                "reason": r["reason"],
                **_op(env, r),
                **_void_cols(r, voids),
            }


def _discards(env: Env) -> Iterator[Row]:
    stmt = (
        select(*_cols(Discard), CartridgeUnit.lot_id, CartridgeUnit.serial)
        .join(CartridgeUnit, CartridgeUnit.id == Discard.unit_id)
        .where(env.in_period(Discard.at))
        .order_by(Discard.at, Discard.id)
    )
    for batch in env.batches(stmt):
        voids = env.voids("discard", [r["id"] for r in batch])
        for r in batch:
            gtin, lot, _expiry = env.lots.get(r["lot_id"], ("", "", None))
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "unit_id": r["unit_id"],
                "gtin": gtin,
                "lot": lot,
                "serial": r["serial"],
                "reason": r["reason"],
                **_op(env, r),
                **_void_cols(r, voids),
            }


def _incidents(env: Env) -> Iterator[Row]:
    stmt = (
        select(*_cols(Incident), Session.client)
        .outerjoin(Session, Session.id == Incident.session_id)  # some have no session
        .where(env.in_period(Incident.at))
        .order_by(Incident.at, Incident.id)
    )
    for batch in env.batches(stmt):
        voids = env.voids("incident", [r["id"] for r in batch])
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "session_id": r["session_id"],
                "client": r["client"],
                "kind": r["kind"],
                "severity": r["severity"],
                "note": r["note"],
                **_op(env, r),
                **_void_cols(r, voids),
            }


def _services(env: Env) -> Iterator[Row]:
    t = SterilizerService
    stmt = select(*_cols(t)).where(env.in_period(t.at)).order_by(t.at, t.id)
    for batch in env.batches(stmt):
        voids = env.voids("service", [r["id"] for r in batch])
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "sterilizer_id": r["sterilizer_id"],
                "sterilizer": env.sterilizers.get(r["sterilizer_id"]),
                "repair": r["repair"],
                "note": r["note"],
                **_op(env, r),
                **_void_cols(r, voids),
            }


def _voids(env: Env) -> Iterator[Row]:
    model = voids_stmt()
    stmt = select(*_cols(model)).where(env.in_period(model.at)).order_by(model.at, model.id)
    for batch in env.batches(stmt):
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "kind": r["kind"],
                "record_id": r["record_id"],
                "reason": r["reason"],
                **_op(env, r),
            }


def _signatures(env: Env) -> Iterator[Row]:
    t = Signature
    stmt = select(*_cols(t)).where(env.in_period(t.at)).order_by(t.at, t.id)
    for batch in env.batches(stmt):
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "month": r["month"],
                "meaning": r["meaning"],
                "staff_id": r["staff_id"],
                "staff": env.staff_code(r["staff_id"]),
                "name": r["name"],
                "head": r["head"],
                "recorded_at": iso(r["recorded_at"]),
            }


def _audit(env: Env) -> Iterator[Row]:
    t = AuditEntry
    stmt = select(*_cols(t)).where(env.in_period(t.at)).order_by(t.seq)
    for batch in env.batches(stmt):
        for r in batch:
            yield {
                "seq": r["seq"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "clock": r["clock"],
                "operator": r["operator"],
                "action": r["action"],
                "records": r["records"],
                "prev_hash": r["prev_hash"],
                "hash": r["hash"],
            }


# --- registers (reference tables, exported whole) ----------------------------------------------


def _staff(env: Env) -> Iterator[Row]:
    gone = _pairs(
        env.session.execute(
            select(StaffDeactivation.staff_id, StaffDeactivation.at).order_by(
                StaffDeactivation.at, StaffDeactivation.id
            )
        )
    )
    rows = env.session.execute(
        select(
            Staff.id, Staff.code, Staff.name, Staff.role, Staff.license_no, Staff.license_expires,
            Staff.max_depth_mm, Staff.pin_hash.is_not(None).label("has_pin"), Staff.recorded_at,
        ).order_by(Staff.id)
    )  # fmt: skip
    for r in rows:
        yield {
            "id": r.id,
            "code": r.code,
            "name": r.name,
            "role": r.role,
            "license_no": r.license_no,
            "license_expires": _date(r.license_expires),
            "max_depth_mm": r.max_depth_mm,
            "has_pin": bool(r.has_pin),
            "deactivated_at": iso(gone.get(r.id)),
            "recorded_at": iso(r.recorded_at),
        }


def _rooms(env: Env) -> Iterator[Row]:
    for r in env.session.execute(select(*_cols(Room)).order_by(Room.id)):
        yield {"id": r.id, "code": r.code, "name": r.name, "recorded_at": iso(r.recorded_at)}


def _devices(env: Env) -> Iterator[Row]:
    retired = _pairs(env.session.execute(select(DeviceRetirement.device_id, DeviceRetirement.at)))
    for r in env.session.execute(select(*_cols(Device)).order_by(Device.id)):
        yield {
            "id": r.id,
            "serial": r.code,
            "model": r.model,
            "max_depth_mm": r.max_depth_mm,
            "retired_at": iso(retired.get(r.id)),
            "recorded_at": iso(r.recorded_at),
        }


def _sterilizers(env: Env) -> Iterator[Row]:
    for r in env.session.execute(select(*_cols(Sterilizer)).order_by(Sterilizer.id)):
        yield {
            "id": r.id,
            "code": r.code,
            "model": r.model,
            "type": r.type,
            "serial": current_serial(env.session, r.id),
            "recorded_at": iso(r.recorded_at),
        }


def _programs(env: Env) -> Iterator[Row]:
    for r in env.session.execute(select(*_cols(Program)).order_by(Program.id)):
        yield {
            "id": r.id,
            "sterilizer_id": r.sterilizer_id,
            "sterilizer": env.sterilizers.get(r.sterilizer_id),
            "name": r.name,
            "temp_c": r.temp_c,
            "hold_min": r.hold_min,
            "recorded_at": iso(r.recorded_at),
        }


def _packs(env: Env) -> Iterator[Row]:
    for r in env.session.execute(select(*_cols(Pack)).order_by(Pack.id)):
        yield {
            "id": r.id,
            "code": r.code,
            "contents": r.contents,
            "recorded_at": iso(r.recorded_at),
        }


def _disinfectants(env: Env) -> Iterator[Row]:
    for r in env.session.execute(select(*_cols(Disinfectant)).order_by(Disinfectant.id)):
        yield {
            "id": r.id,
            "name": r.code,
            "contact_min": r.contact_min,
            "reg_no": r.reg_no,
            "level": r.level,
            "recorded_at": iso(r.recorded_at),
        }


def _lots(env: Env) -> Iterator[Row]:
    for r in env.session.execute(select(*_cols(CartridgeLot)).order_by(CartridgeLot.id)):
        yield {
            "id": r.id,
            "gtin": r.gtin,
            "lot": r.lot,
            "expiry": _date(r.expiry),
            "production_date": _date(r.production_date),
            "recorded_at": iso(r.recorded_at),
        }


# --- device evidence (issue 15) ----------------------------------------------------------------


def _imported_cycles(env: Env) -> Iterator[Row]:
    stmt = (
        select(*_cols(ImportedCycle))
        .where(env.in_period(ImportedCycle.started_at))
        .order_by(ImportedCycle.sterilizer_id, ImportedCycle.serial, ImportedCycle.device_cycle_no)
    )
    for batch in env.batches(stmt):
        for r in batch:
            yield {
                "id": r["id"],
                "sterilizer_id": r["sterilizer_id"],
                "sterilizer": env.sterilizers.get(r["sterilizer_id"]),
                "serial": r["serial"],
                "device_cycle_no": r["device_cycle_no"],
                "kind": r["kind"],
                "load_id": r["cycle_id"],
                "air_test_id": r["air_test_id"],
                "format": r["format"],
                "source_attachment_id": r["source_id"],
                "lines": r["lines"],
                "started_at": iso(r["started_at"]),
                "started_at_local": env.local(r["started_at"]),
                "program_text": r["program_text"],
                "set_temp_c": r["set_temp_c"],
                "set_hold_min": r["set_hold_min"],
                "device_ok": r["device_ok"],
                "device_reason": r["device_reason"],
                "device_hold_s": r["device_hold_s"],
                "hold_s": r["hold_s"],
                "temp_min_c": r["temp_min_c"],
                "temp_max_c": r["temp_max_c"],
                "pressure_min_kpa": r["pressure_min_kpa"],
                "pressure_max_kpa": r["pressure_max_kpa"],
                "status": "passed" if r["passed"] else "failed",
                "failures": json.loads(r["failures"]),
                **_op(env, r),
            }


def _cycle_cis(env: Env) -> Iterator[Row]:
    stmt = select(*_cols(CycleCi)).where(env.in_period(CycleCi.at)).order_by(CycleCi.id)
    for batch in env.batches(stmt):
        for r in batch:
            yield {
                "id": r["id"],
                "at": iso(r["at"]),
                "at_local": env.local(r["at"]),
                "load_id": r["cycle_id"],
                "ci": r["ci"],
                "ci_type": r["ci_type"],
                "passed": r["passed"],
                **_op(env, r),
            }


_ATTACHMENT_COLS = (
    "id",
    "kind",
    "record_id",
    "filename",
    "media_type",
    "size",
    "sha256",
    "note",
    "operator_id",
    "operator",
    "recorded_at",
)


def _attachments(env: Env) -> Iterator[Row]:
    """The documents' metadata (the bytes go to attachments/ in a CSV export)."""
    cols = [getattr(Attachment, c) for c in _ATTACHMENT_COLS if hasattr(Attachment, c)]
    for r in env.session.execute(select(*cols).order_by(Attachment.id)).mappings():
        yield {
            **{c: r[c] for c in _ATTACHMENT_COLS if c in r},
            **_op(env, dict(r)),
        }


def attachment_file_name(att_id: int, filename: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in filename)[:120]
    return f"{att_id}-{safe or 'file'}"


@dataclass(frozen=True)
class RecordType:
    name: str
    columns: tuple[str, ...]
    rows: Callable[[Env], Iterator[Row]]
    reference: bool = False  # a register: exported whole, not filtered by the period


_AT = ("id", "at", "at_local")

# SPEC §6.7's types first, in its order; then the extra ones.
TYPES: tuple[RecordType, ...] = (
    RecordType("sessions", SESSION_COLS, _sessions),
    RecordType(
        "refusals",
        (
            *_AT,
            "room",
            "device",
            "practitioner",
            "client",
            "cartridge_scan",
            "gtin",
            "lot",
            "serial",
            "depth_mm",
            "packs",
            "reason_codes",
            "reasons",
            *OP_COLS,
        ),
        _refusals,
    ),
    RecordType("cycles", CYCLE_COLS, _cycles),
    RecordType(
        "bis",
        (
            "id",
            "load_id",
            "sterilizer_id",
            "sterilizer",
            "lot",
            "placed_at",
            "placed_at_local",
            "result",
            "control",
            "valid",
            "read_at",
            "recorded_at",
        ),
        _bis,
    ),
    RecordType(
        "air_removal_tests",
        (*_AT, "sterilizer_id", "sterilizer", "result", *OP_COLS, *VOID_COLS),
        _air_removal,
    ),
    RecordType(
        "room_cleans",
        (
            *_AT,
            "room_id",
            "room",
            "kind",
            "disinfectant_id",
            "disinfectant",
            "contact_min",
            "note",
            *OP_COLS,
            *VOID_COLS,
        ),
        _room_cleans,
    ),
    RecordType(
        "device_cleans",
        (
            *_AT,
            "device_id",
            "device",
            "disinfectant_id",
            "disinfectant",
            "contact_min",
            "barrier_lot",
            *OP_COLS,
            *VOID_COLS,
        ),
        _device_cleans,
    ),
    RecordType(
        "cartridges",
        (
            "id",
            "gtin",
            "lot",
            "serial",
            "expiry",
            "lot_id",
            "receipt_id",
            "received_at",
            "received_at_local",
            "supplier",
            "invoice",
            "session_id",
            "discard_id",
        ),
        _cartridges,
    ),
    RecordType(
        "incidents",
        (*_AT, "session_id", "client", "kind", "severity", "note", *OP_COLS, *VOID_COLS),
        _incidents,
    ),
    RecordType("voids", (*_AT, "kind", "record_id", "reason", *OP_COLS), _voids),
    RecordType(
        "audit",
        ("seq", "at", "at_local", "clock", "operator", "action", "records", "prev_hash", "hash"),
        _audit,
    ),
    # --- more than SPEC §6.7 lists ---
    RecordType("session_packs", ("id", "session_id", "pack_id", "pack", "load_id"), _session_packs),
    RecordType("cycle_packs", ("id", "load_id", "pack_id", "pack"), _cycle_packs),
    RecordType(
        "bi_reads",
        (*_AT, "bi_id", "load_id", "result", "control", "valid", *OP_COLS, *VOID_COLS),
        _bi_reads,
    ),
    RecordType(
        "bi_lab_events",
        (
            *_AT,
            "bi_id",
            "kind",
            "lab",
            "envelope",
            "reason",
            "note",
            "read_id",
            *OP_COLS,
        ),
        _bi_lab_events,
    ),
    RecordType("bi_details", ("id", "bi_id", "expires", "control_lot"), _bi_details),
    RecordType(
        "bi_skips",
        (*_AT, "sterilizer_id", "week", "reason", *OP_COLS, *VOID_COLS),
        _bi_skips,
    ),
    RecordType(
        "cartridge_receipts",
        (
            *_AT,
            "lot_id",
            "gtin",
            "lot",
            "expiry",
            "quantity",
            "supplier",
            "invoice",
            "scan",
            *OP_COLS,
        ),
        _receipts,
    ),
    RecordType(
        "recalls", (*_AT, "lot_id", "gtin", "lot", "reason", *OP_COLS, *VOID_COLS), _recalls
    ),
    RecordType(
        "discards",
        (*_AT, "unit_id", "gtin", "lot", "serial", "reason", *OP_COLS, *VOID_COLS),
        _discards,
    ),
    RecordType(
        "sterilizer_services",
        (*_AT, "sterilizer_id", "sterilizer", "repair", "note", *OP_COLS, *VOID_COLS),
        _services,
    ),
    RecordType(
        "signatures",
        (*_AT, "month", "meaning", "staff_id", "staff", "name", "head", "recorded_at"),
        _signatures,
    ),
    RecordType(
        "imported_cycles",
        (
            "id",
            "sterilizer_id",
            "sterilizer",
            "serial",
            "device_cycle_no",
            "kind",
            "load_id",
            "air_test_id",
            "format",
            "source_attachment_id",
            "lines",
            "started_at",
            "started_at_local",
            "program_text",
            "set_temp_c",
            "set_hold_min",
            "device_ok",
            "device_reason",
            "device_hold_s",
            "hold_s",
            "temp_min_c",
            "temp_max_c",
            "pressure_min_kpa",
            "pressure_max_kpa",
            "status",
            "failures",
            *OP_COLS,
        ),
        _imported_cycles,
    ),
    RecordType(
        "cycle_cis",
        (*_AT, "load_id", "ci", "ci_type", "passed", *OP_COLS),
        _cycle_cis,
    ),
    RecordType("attachments", _ATTACHMENT_COLS, _attachments, reference=True),
    RecordType(
        "staff",
        (
            "id",
            "code",
            "name",
            "role",
            "license_no",
            "license_expires",
            "max_depth_mm",
            "has_pin",
            "deactivated_at",
            "recorded_at",
        ),
        _staff,
        reference=True,
    ),
    RecordType("rooms", ("id", "code", "name", "recorded_at"), _rooms, reference=True),
    RecordType(
        "devices",
        ("id", "serial", "model", "max_depth_mm", "retired_at", "recorded_at"),
        _devices,
        reference=True,
    ),
    RecordType(
        "sterilizers",
        ("id", "code", "model", "type", "serial", "recorded_at"),
        _sterilizers,
        reference=True,
    ),
    RecordType(
        "programs",
        ("id", "sterilizer_id", "sterilizer", "name", "temp_c", "hold_min", "recorded_at"),
        _programs,
        reference=True,
    ),
    RecordType("packs", ("id", "code", "contents", "recorded_at"), _packs, reference=True),
    RecordType(
        "disinfectants",
        ("id", "name", "contact_min", "reg_no", "level", "recorded_at"),
        _disinfectants,
        reference=True,
    ),
    RecordType(
        "cartridge_lots",
        ("id", "gtin", "lot", "expiry", "production_date", "recorded_at"),
        _lots,
        reference=True,
    ),
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
