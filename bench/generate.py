#!/usr/bin/env python
"""Fill a NEW sterilog database with realistic, valid history, fast.

    python bench/generate.py --db bench.db --sessions 1000000 [--seed 7]
    python bench/generate.py --db month.db --sessions 10000 --month 2026-10

The clinic itself (staff, rooms, devices, sterilizers with their programs, packs, disinfectant)
is created through `sterilog init` and the product's own register services. The history is then
written in bulk: every act becomes the rows the product's service would insert and ONE audit
entry, as the CLI would make it (`session.start` = session + its pack link, `session.end`,
`clean.room`, `clean.device`, `cycle.record` = cycle + packs + BI, `bi.read`,
`air_removal.record`, `cartridge.receive` (up to 100 scans), `session.refused`, ...). Entries are
chained with `sterilog.audit.canonical` / `entry_hash`; rows are inserted with executemany in
chronological order, ids allocated in that order, so `sterilog audit verify` passes.

Per clinic day: a Bowie-Dick (air-removal) test per sterilizer, loads of 25 packs before the
packs are needed, a weekly BI (read negative with a positive control the next morning), weekly
cartridge deliveries (a serialized lot, one receipt per scan, and an unserialized lot received
with a quantity), sessions in 30-minute slots per room, each followed by a between-clients room
clean and a device clean (end-of-day clean after a room's last session), some refusals (a used
cartridge scanned again), rare incidents, rare failed loads (re-run), a yearly recall of an
already used lot.

The newest day ends with one more load holding pack P0001, so that the gate command written to
the JSON sidecar (`<db>.bench.json`, also printed) is GO: clean room R01 and device D01, a fresh
passing load for P0001 and an in-stock serialized cartridge. Run it with STERILOG_NOW from the
sidecar.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import math
import os
import random
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

GENERATOR_VERSION = "1"
TZ = "Europe/London"
MANAGER = "boss"
CLOCK = "system"
SLOTS = 20  # 30-minute sessions per room per day, first at 08:00
FIRST_SLOT_MIN = 8 * 60
PACKS_PER_LOAD = 25
SESSIONS_PER_STERILIZER_DAY = 250
SCANS_PER_RECEIVE = 100
GTIN_SERIAL = "09506000134352"  # SPEC's example GTIN (valid check digit)
DEFAULT_END = dt.date(2026, 11, 23)
DEFAULT_PER_DAY = 200
BENCH_PACK = "P0001"


def gtin_with_check(body13: str) -> str:
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body13)))
    return body13 + str((10 - total % 10) % 10)


GTIN_BULK = gtin_with_check("0950600013437")


# --- bulk writer -------------------------------------------------------------------------------


def _json_ts(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass
class TableSpec:
    name: str
    columns: list[tuple[str, str, Any]]  # (name, kind: ts/date/bool/plain, bind processor)
    names: frozenset[str]
    sql: str


class Bulk:
    """Queues rows and chained audit entries; writes them with executemany in id order."""

    def __init__(self, engine: Any, ids: dict[str, int], seq: int, prev_hash: str) -> None:
        from sqlalchemy import TypeDecorator

        from sterilog import audit
        from sterilog.models import AUDITED, AuditEntry

        self.audit = audit
        # audit.canonical's exact settings, built once (json.dumps rebuilds an encoder per call)
        self.encode = json.JSONEncoder(
            sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode
        sample = [{"table": "t", "id": 1, "content": {"b": "é<&", "a": 1.0, "c": None}}]
        assert self.encode(sample) == audit.canonical(sample)
        self.engine = engine
        dialect = engine.dialect
        mark = "?" if dialect.name == "sqlite" else "%s"
        self.specs: dict[str, TableSpec] = {}
        self.order: list[str] = []
        for model in (*AUDITED, AuditEntry):
            table = model.__table__  # type: ignore[attr-defined]
            cols: list[tuple[str, str, Any]] = []
            for c in table.columns:
                # Values go through the column type's own bind processing (the product's
                # UTCDateTime included), so the stored form is whatever the product stores.
                proc = c.type.dialect_impl(dialect).bind_processor(dialect)
                base = c.type.impl_instance if isinstance(c.type, TypeDecorator) else c.type
                try:
                    py = base.python_type
                except NotImplementedError:
                    py = object
                if py is dt.datetime:
                    kind = "ts"
                elif py is dt.date:
                    kind = "date"
                elif py is bool:
                    kind = "bool"
                else:
                    kind = "plain"
                cols.append((c.name, kind, proc))
            names = ", ".join(n for n, _, _ in cols)
            marks = ", ".join(mark for _ in cols)
            self.specs[table.name] = TableSpec(
                table.name,
                cols,
                frozenset(n for n, _, _ in cols),
                f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
            )
            self.order.append(table.name)
        self.ids = ids
        self.seq = seq
        self.prev = prev_hash
        self.pending: dict[str, list[tuple[Any, ...]]] = {n: [] for n in self.order}
        self.records: list[dict[str, Any]] = []
        self.entries = 0
        self.rows = 0
        self._ts_cache: dict[tuple[Any, dt.datetime], tuple[Any, str]] = {}
        self._audit_ts = next(p for n, _, p in self.specs["audit_log"].columns if n == "at")
        self._audit_cols = [n for n, _, _ in self.specs["audit_log"].columns]
        expected = {"seq", "at", "clock", "operator", "action", "records", "prev_hash", "hash"}
        if set(self._audit_cols) != expected:
            raise SystemExit(f"generator out of date: audit_log columns {self._audit_cols}")

    def new_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def _ts(self, value: dt.datetime, proc: Any) -> tuple[Any, str]:
        key = (proc.__code__ if proc is not None else None, value)
        hit = self._ts_cache.get(key)
        if hit is None:
            if len(self._ts_cache) > 50_000:
                self._ts_cache.clear()
            hit = (proc(value) if proc is not None else value, _json_ts(value.astimezone(dt.UTC)))
            self._ts_cache[key] = hit
        return hit

    def add(self, table: str, values: dict[str, Any]) -> int:
        """Queue one row (values keyed by column, `id` included) into the current entry."""
        spec = self.specs[table]
        if values.keys() != spec.names:
            missing = sorted(spec.names - values.keys())
            extra = sorted(values.keys() - spec.names)
            raise SystemExit(
                f"generator out of date with models.py: table {table} missing {missing}, "
                f"unknown {extra}"
            )
        row: list[Any] = []
        content: dict[str, Any] = {}
        for name, kind, proc in spec.columns:
            v = values[name]
            if v is None:
                row.append(None)
                content[name] = None
            elif kind == "ts":
                db, js = self._ts(v, proc)
                row.append(db)
                content[name] = js
            else:
                row.append(v if proc is None else proc(v))
                if kind == "date":
                    content[name] = v.isoformat()
                elif kind == "bool":
                    content[name] = bool(v)
                else:
                    content[name] = v
        self.pending[table].append(tuple(row))
        self.records.append({"table": table, "id": values["id"], "content": content})
        self.rows += 1
        return int(values["id"])

    def entry(self, at: dt.datetime, operator: str | None, action: str) -> None:
        """Chain one audit entry recording every row added since the last entry."""
        records = self.encode(self.records)
        self.records = []
        self.seq += 1
        utc = at.astimezone(dt.UTC)
        digest = self.audit.entry_hash(self.prev, self.seq, utc, CLOCK, operator, action, records)
        db, _ = self._ts(utc, self._audit_ts)
        values = {
            "seq": self.seq,
            "at": db,
            "clock": CLOCK,
            "operator": operator,
            "action": action,
            "records": records,
            "prev_hash": self.prev,
            "hash": digest,
        }
        self.pending["audit_log"].append(tuple(values[n] for n in self._audit_cols))
        self.prev = digest
        self.entries += 1

    def queued(self) -> int:
        return len(self.pending["audit_log"])

    def flush(self) -> None:
        from sterilog import db

        if not self.queued():
            return
        with db.write_session(self.engine) as session:
            conn = session.connection()
            for name in self.order:
                rows = self.pending[name]
                if rows:
                    conn.exec_driver_sql(self.specs[name].sql, rows)
                    self.pending[name] = []


# --- the clinic --------------------------------------------------------------------------------


@dataclass
class Plan:
    counts: list[int]  # sessions per day
    days: list[dt.date]
    rooms: int
    devices: int
    practitioners: int
    sterilizers: int
    packs: int
    seed: int


def make_plan(
    sessions: int, seed: int, month: str | None, per_day: int | None, end: dt.date
) -> Plan:
    if sessions < 1:
        raise SystemExit("--sessions must be at least 1")
    if month is not None:
        year, mon = (int(x) for x in month.split("-"))
        ndays = calendar.monthrange(year, mon)[1]
        days = [dt.date(year, mon, d + 1) for d in range(ndays)]
        base, extra = divmod(sessions, ndays)
        counts = [base + (1 if i < extra else 0) for i in range(ndays)]
        # a month with fewer sessions than days: drop the empty days at the end
        while counts and counts[-1] == 0:
            counts.pop()
            days.pop()
    else:
        k = per_day or DEFAULT_PER_DAY
        ndays = math.ceil(sessions / k)
        counts = [k] * (ndays - 1) + [sessions - k * (ndays - 1)]
        days = [end - dt.timedelta(days=ndays - 1 - i) for i in range(ndays)]
    peak = max(counts)
    rooms = max(1, math.ceil(peak / SLOTS))
    return Plan(
        counts=counts,
        days=days,
        rooms=rooms,
        devices=rooms + 1,
        practitioners=rooms + 2,
        sterilizers=max(1, math.ceil(peak / SESSIONS_PER_STERILIZER_DAY)),
        packs=peak,
        seed=seed,
    )


def code(prefix: str, i: int) -> str:
    return f"{prefix}{i + 1:02d}"


def pack_code(i: int) -> str:
    return f"P{i + 1:04d}"


def local_base(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """UTC instant of the local midnight, assuming the noon offset (clinic hours avoid DST)."""
    noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    offset = noon.utcoffset()
    assert offset is not None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) - offset


def run_init(url: str, now: dt.datetime) -> None:
    env = dict(os.environ)
    env["STERILOG_NOW"] = now.isoformat()
    env.pop("STERILOG_DB", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    cmd = [
        sys.executable,
        "-m",
        "sterilog",
        "--db",
        url,
        "init",
        "--training",  # a synthetic history played on STERILOG_NOW: a training database
        "--clinic",
        "Bench Skin Clinic",
        "--tz",
        TZ,
        "--manager",
        MANAGER,
        "--name",
        "Bea Boss",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"sterilog init failed ({done.returncode}): {done.stderr.strip()}")


@dataclass
class Registers:
    staff: dict[str, int] = field(default_factory=dict)
    rooms: list[int] = field(default_factory=list)
    devices: list[int] = field(default_factory=list)
    sterilizers: list[int] = field(default_factory=list)
    programs: list[int] = field(default_factory=list)  # the 134-3.5 program of each sterilizer
    packs: list[int] = field(default_factory=list)
    disinfectant: int = 0
    contact_min: float = 0.0


def setup_registers(engine: Any, plan: Plan, now: dt.datetime) -> Registers:
    """The clinic's registers, through the product's own services (one audit entry each)."""
    from sqlalchemy import select

    from sterilog import db
    from sterilog.models import Program
    from sterilog.services import registers as reg
    from sterilog.services.base import Ctx, load_clinic
    from sterilog.services.people import actor_of, find_staff

    out = Registers()
    last_day = plan.days[-1]
    with db.write_session(engine) as session:
        boss = find_staff(session, MANAGER)
        assert boss is not None
        out.staff[MANAGER] = boss.id
        ctx = Ctx(session, now, CLOCK, load_clinic(session), actor_of(boss))
        for i in range(plan.practitioners):
            st = reg.add_staff(
                ctx,
                code("p", i),
                name=f"Practitioner {i + 1}",
                role="practitioner",
                license_no=f"LIC-{1000 + i}",
                license_expires=last_day + dt.timedelta(days=365),
                max_depth_mm=2.5,
            )
            out.staff[st.code] = st.id
        for i in range(plan.rooms):
            out.rooms.append(reg.add_room(ctx, code("R", i), name=f"Treatment room {i + 1}").id)
        for i in range(plan.devices):
            out.devices.append(
                reg.add_device(ctx, code("D", i), model="DermaPen 4", max_depth_mm=2.5).id
            )
        for i in range(plan.sterilizers):
            st_row = reg.add_sterilizer(
                ctx, code("S", i), model="Euronda E10", type_="B", serial=f"EU-{7000 + i}"
            )
            out.sterilizers.append(st_row.id)
            prog = session.execute(
                select(Program.id).where(
                    Program.sterilizer_id == st_row.id, Program.name == "134-3.5"
                )
            ).scalar_one()
            out.programs.append(int(prog))
        for i in range(plan.packs):
            out.packs.append(
                reg.add_pack(ctx, pack_code(i), contents="tweezers, bowl, extractor").id
            )
        dis = reg.add_disinfectant(
            ctx, "Clinell Universal", contact_min=1.0, reg_no="EN14476", level="intermediate"
        )
        out.disinfectant = dis.id
        out.contact_min = float(dis.contact_min)
    return out


# --- history -----------------------------------------------------------------------------------


@dataclass
class Unit:
    id: int
    gtin: str
    lot: str
    serial: str | None
    expiry: dt.date
    scan: str


def scan_text(gtin: str, lot: str, expiry: dt.date, serial: str | None) -> str:
    tail = f"(21){serial}" if serial is not None else ""
    return f"(01){gtin}(17){expiry:%y%m%d}(10){lot}{tail}"


class History:
    def __init__(self, bulk: Bulk, plan: Plan, regs: Registers, tz: ZoneInfo) -> None:
        self.b = bulk
        self.plan = plan
        self.r = regs
        self.tz = tz
        self.rng = random.Random(plan.seed)
        self.serialized: deque[Unit] = deque()
        self.bulk_units: deque[Unit] = deque()
        self.lots_bulk: list[int] = []  # lot ids of unserialized lots, oldest first
        self.load_no = [0] * plan.sterilizers
        self.pending_bi: list[tuple[int, int]] = []  # (bi id, day index) awaiting a read
        self.prac_codes = {v: k for k, v in regs.staff.items()}
        self.sessions = 0
        self.refusals = 0
        self.client_pool = max(50, sum(plan.counts) // 4)
        self.bench_room_practitioner = ""

    # one act = rows + one audit entry ------------------------------------------------------

    def air_test(self, at: dt.datetime, s: int) -> None:
        b = self.b
        b.add(
            "air_removal_tests",
            {
                "id": b.new_id("air_removal_tests"),
                "sterilizer_id": self.r.sterilizers[s],
                "result": "pass",
                "at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[MANAGER],
            },
        )
        b.entry(at, MANAGER, "air_removal.record")

    def cycle(
        self, at: dt.datetime, s: int, packs: list[int], bi_lot: str | None, passed: bool
    ) -> tuple[int, int | None]:
        b = self.b
        self.load_no[s] += 1
        rng = self.rng
        cid = b.add(
            "cycles",
            {
                "id": b.new_id("cycles"),
                "sterilizer_id": self.r.sterilizers[s],
                "program_id": self.r.programs[s],
                "load_no": self.load_no[s],
                "temp_c": float(rng.choice((134.0, 134.5, 135.0, 135.5))) if passed else 131.5,
                "hold_min": float(rng.choice((3.5, 4.0, 4.5))),
                "ci": "pass" if passed else "fail",
                "ci_type": 5,
                "passed": passed,
                "at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[MANAGER],
            },
        )
        for p in packs:
            b.add(
                "cycle_packs",
                {
                    "id": b.new_id("cycle_packs"),
                    "cycle_id": cid,
                    "pack_id": self.r.packs[p],
                    "recorded_at": at,
                },
            )
        bi_id = None
        if bi_lot is not None:
            bi_id = b.add(
                "bis",
                {"id": b.new_id("bis"), "cycle_id": cid, "lot": bi_lot, "recorded_at": at},
            )
        b.entry(at, MANAGER, "cycle.record")
        return cid, bi_id

    def bi_read(self, at: dt.datetime, bi_id: int) -> None:
        b = self.b
        b.add(
            "bi_reads",
            {
                "id": b.new_id("bi_reads"),
                "bi_id": bi_id,
                "result": "negative",
                "control": "positive",
                "valid": True,
                "at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[MANAGER],
            },
        )
        b.entry(at, MANAGER, "bi.read")

    def deliver(self, at: dt.datetime, day: dt.date, serialized: int, bulk: int) -> None:
        """A delivery: a serialized lot scanned unit by unit (receive commands of up to 100
        scans) and an unserialized lot received with --quantity."""
        b = self.b
        mgr = self.r.staff[MANAGER]
        expiry = day + dt.timedelta(days=540)
        production = None
        stamp = f"{day:%y%m%d}"
        if serialized:
            lot = f"S{stamp}"
            lot_id = 0
            for start in range(0, serialized, SCANS_PER_RECEIVE):
                n = min(SCANS_PER_RECEIVE, serialized - start)
                if start == 0:
                    lot_id = b.add(
                        "cartridge_lots",
                        {
                            "id": b.new_id("cartridge_lots"),
                            "gtin": GTIN_SERIAL,
                            "lot": lot,
                            "expiry": expiry,
                            "production_date": production,
                            "recorded_at": at,
                        },
                    )
                serials = [f"{start + k + 1:06d}" for k in range(n)]
                scans = [scan_text(GTIN_SERIAL, lot, expiry, s) for s in serials]
                receipts = [
                    b.add(
                        "cartridge_receipts",
                        {
                            "id": b.new_id("cartridge_receipts"),
                            "lot_id": lot_id,
                            "quantity": 1,
                            "supplier": "Acme Medical",
                            "invoice": f"INV-{stamp}",
                            "scan": sc,
                            "at": at,
                            "recorded_at": at,
                            "operator_id": mgr,
                        },
                    )
                    for sc in scans
                ]
                for rid, serial, sc in zip(receipts, serials, scans, strict=True):
                    uid = b.add(
                        "cartridge_units",
                        {
                            "id": b.new_id("cartridge_units"),
                            "lot_id": lot_id,
                            "receipt_id": rid,
                            "serial": serial,
                            "recorded_at": at,
                        },
                    )
                    self.serialized.append(Unit(uid, GTIN_SERIAL, lot, serial, expiry, sc))
                b.entry(at, MANAGER, "cartridge.receive")
        if bulk:
            lot = f"B{stamp}"
            sc = scan_text(GTIN_BULK, lot, expiry, None)
            lot_id = b.add(
                "cartridge_lots",
                {
                    "id": b.new_id("cartridge_lots"),
                    "gtin": GTIN_BULK,
                    "lot": lot,
                    "expiry": expiry,
                    "production_date": production,
                    "recorded_at": at,
                },
            )
            rid = b.add(
                "cartridge_receipts",
                {
                    "id": b.new_id("cartridge_receipts"),
                    "lot_id": lot_id,
                    "quantity": bulk,
                    "supplier": "Acme Medical",
                    "invoice": f"INV-{stamp}",
                    "scan": sc,
                    "at": at,
                    "recorded_at": at,
                    "operator_id": mgr,
                },
            )
            for _ in range(bulk):
                uid = b.add(
                    "cartridge_units",
                    {
                        "id": b.new_id("cartridge_units"),
                        "lot_id": lot_id,
                        "receipt_id": rid,
                        "serial": None,
                        "recorded_at": at,
                    },
                )
                self.bulk_units.append(Unit(uid, GTIN_BULK, lot, None, expiry, sc))
            self.lots_bulk.append(lot_id)
            b.entry(at, MANAGER, "cartridge.receive")

    def recall(self, at: dt.datetime, lot_id: int) -> None:
        b = self.b
        b.add(
            "recalls",
            {
                "id": b.new_id("recalls"),
                "lot_id": lot_id,
                "reason": "Manufacturer field safety notice: seal integrity",
                "at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[MANAGER],
            },
        )
        b.entry(at, MANAGER, "cartridge.recall")

    def room_clean(self, at: dt.datetime, room: int, kind: str, op: str) -> None:
        b = self.b
        b.add(
            "room_cleans",
            {
                "id": b.new_id("room_cleans"),
                "room_id": self.r.rooms[room],
                "kind": kind,
                "disinfectant_id": self.r.disinfectant,
                "contact_min": self.r.contact_min,
                "note": None,
                "at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[op],
            },
        )
        b.entry(at, op, "clean.room")

    def device_clean(self, at: dt.datetime, device: int, op: str) -> None:
        b = self.b
        b.add(
            "device_cleans",
            {
                "id": b.new_id("device_cleans"),
                "device_id": self.r.devices[device],
                "disinfectant_id": self.r.disinfectant,
                "contact_min": self.r.contact_min,
                "barrier_lot": "SLV-2291",
                "at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[op],
            },
        )
        b.entry(at, op, "clean.device")

    def session(
        self, at: dt.datetime, room: int, op: str, unit: Unit, pack: int, load: int, client: str
    ) -> int:
        b = self.b
        depth = float(self.rng.choice((0.5, 0.75, 1.0, 1.5, 2.0)))
        sid = b.add(
            "sessions",
            {
                "id": b.new_id("sessions"),
                "room_id": self.r.rooms[room],
                "device_id": self.r.devices[room],
                "unit_id": unit.id,
                "practitioner_id": self.r.staff[op],
                "client": client,
                "depth_mm": depth,
                "gtin": unit.gtin,
                "lot": unit.lot,
                "serial": unit.serial,
                "expiry": unit.expiry,
                "started_at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[op],
            },
        )
        b.add(
            "session_packs",
            {
                "id": b.new_id("session_packs"),
                "session_id": sid,
                "pack_id": self.r.packs[pack],
                "cycle_id": load,
                "recorded_at": at,
            },
        )
        b.entry(at, op, "session.start")
        self.sessions += 1
        return sid

    def session_end(self, at: dt.datetime, sid: int, op: str) -> None:
        b = self.b
        b.add(
            "session_ends",
            {
                "id": b.new_id("session_ends"),
                "session_id": sid,
                "note": None,
                "at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[op],
            },
        )
        b.entry(at, op, "session.end")

    def refusal(
        self, at: dt.datetime, room: int, op: str, used: Unit, used_by: int, pack: int, client: str
    ) -> None:
        b = self.b
        reasons = [
            {
                "code": "cartridge-used",
                "message": f"this unit was already used in session {used_by}: single use only",
            }
        ]
        b.add(
            "refusals",
            {
                "id": b.new_id("refusals"),
                "room": code("R", room),
                "device": code("D", room),
                "cartridge_scan": used.scan,
                "gtin": used.gtin,
                "lot": used.lot,
                "serial": used.serial,
                "packs": json.dumps([pack_code(pack)]),
                "client": client,
                "practitioner": op,
                "depth_mm": 1.0,
                "reasons": json.dumps(reasons),
                "at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[op],
            },
        )
        b.entry(at, op, "session.refused")
        self.refusals += 1

    def incident(self, at: dt.datetime, sid: int, op: str) -> None:
        b = self.b
        b.add(
            "incidents",
            {
                "id": b.new_id("incidents"),
                "session_id": sid,
                "room_id": None,  # a client session's incident: its session names them
                "device_id": None,
                "staff_id": None,
                "kind": "pain",
                "severity": "mild",
                "note": "Client reported tenderness after treatment; aftercare advice given.",
                "at": at,
                "recorded_at": at,
                "operator_id": self.r.staff[op],
            },
        )
        b.entry(at, op, "incident.record")

    # one clinic day ---------------------------------------------------------------------------

    def day(self, index: int, day: dt.date, count: int, last: bool) -> dict[str, Any] | None:
        plan = self.plan
        rng = self.rng
        base = local_base(day, self.tz)

        def t(minutes: float) -> dt.datetime:
            return base + dt.timedelta(minutes=minutes)

        # morning: BI reads of yesterday's BIs, air-removal tests, deliveries, first cleans
        for bi_id, _ in self.pending_bi:
            self.bi_read(t(6 * 60 + 20), bi_id)
        self.pending_bi = []
        for s in range(plan.sterilizers):
            self.air_test(t(6 * 60 + 30 + s), s)
        if index % 7 == 0:
            coming = self.plan.counts[index : index + 7]
            bulk_need = sum(c // 4 for c in coming) + 2  # session j uses a bulk unit if j % 4 == 3
            serial_need = sum(c - c // 4 for c in coming) + max(5, sum(coming) // 50)
            have_serial, have_bulk = len(self.serialized), len(self.bulk_units)
            self.deliver(
                t(7 * 60),
                day,
                max(0, serial_need - have_serial),
                max(0, bulk_need - have_bulk),
            )
        if index % 365 == 180 and len(self.lots_bulk) > 3:
            self.recall(t(7 * 60 + 5), self.lots_bulk[-4])  # a lot used up weeks ago
        practitioners = [code("p", (r + index) % plan.practitioners) for r in range(plan.rooms)]
        if index == 0:
            for r in range(plan.rooms):
                self.room_clean(t(7 * 60 + 40), r, "between-clients", MANAGER)
            for d in range(plan.devices):
                self.device_clean(t(7 * 60 + 41), d, MANAGER)

        # the day's acts in time order: (minute, tie, kind, payload)
        events: list[tuple[float, int, int, str]] = []
        nloads = math.ceil(count / PACKS_PER_LOAD)
        rooms = plan.rooms
        for i in range(nloads):
            slot = (i * PACKS_PER_LOAD) // rooms
            events.append((FIRST_SLOT_MIN + slot * 30 - 40 + (i % 3), 0, i, "load"))
        sessions_left = [0] * rooms
        for j in range(count):
            slot, room = divmod(j, rooms)
            start = FIRST_SLOT_MIN + slot * 30
            sessions_left[room] += 1
            if slot > 0 and rng.random() < 0.01:
                events.append((start - 1, 1, j, "refusal"))
            events.append((start, 2, j, "start"))
            events.append((start + 25, 2, j, "end"))
            events.append((start + 26, 2, j, "room-clean"))
            events.append((start + 27, 2, j, "device-clean"))
            if rng.random() < 1 / 5000:
                events.append((start + 28, 2, j, "incident"))
        events.sort()

        load_of: dict[int, int] = {}  # load index -> cycle id
        started: dict[int, int] = {}  # session index -> session id
        last_in_room: dict[int, tuple[int, Unit]] = {}
        bi_today = index % 7 == 0
        first_load_done = [False] * plan.sterilizers
        week = index // 7
        for minute, _, x, kind in events:
            at = t(minute)
            if kind == "load":
                s = x % plan.sterilizers
                packs = list(range(x * PACKS_PER_LOAD, min(count, (x + 1) * PACKS_PER_LOAD)))
                bi = None
                if bi_today and not first_load_done[s]:
                    bi = f"BI-{day:%Y}-{week:04d}"
                first_load_done[s] = True
                if rng.random() < 1 / 400:
                    self.cycle(at, s, packs, None, passed=False)
                    at = t(minute + 15)
                cid, bi_id = self.cycle(at, s, packs, bi, passed=True)
                if bi_id is not None:
                    self.pending_bi.append((bi_id, index))
                load_of[x] = cid
                continue
            room = x % rooms
            op = practitioners[room]
            if kind == "start":
                client = f"C{rng.randrange(self.client_pool):07d}"
                unit = self.bulk_units.popleft() if x % 4 == 3 else self.serialized.popleft()
                sid = self.session(at, room, op, unit, x, load_of[x // PACKS_PER_LOAD], client)
                started[x] = sid
                last_in_room[room] = (sid, unit)
            elif kind == "end":
                self.session_end(at, started[x], op)
            elif kind == "room-clean":
                sessions_left[room] -= 1
                kind_clean = "end-of-day" if sessions_left[room] == 0 else "between-clients"
                self.room_clean(at, room, kind_clean, op)
            elif kind == "device-clean":
                self.device_clean(at, room, op)
            elif kind == "incident":
                self.incident(at, started[x], op)
            else:  # refusal: the previous client's (used) cartridge scanned again
                used_by, used = last_in_room[room]
                client = f"C{rng.randrange(self.client_pool):07d}"
                self.refusal(at, room, op, used, used_by, x, client)
        if not last:
            return None
        # the benchmark's gate command: P0001 reprocessed in an evening load, R01/D01 clean
        self.cycle(t(19 * 60), 0, [0], None, passed=True)
        unit = self.serialized[0]
        now = t(20 * 60)
        return {
            "now": now.isoformat(),
            "operator": practitioners[0],
            "command": [
                "check",
                "--room",
                code("R", 0),
                "--device",
                code("D", 0),
                "--cartridge",
                unit.scan,
                "--pack",
                BENCH_PACK,
            ],
        }


def current_ids(engine: Any) -> tuple[dict[str, int], int, str]:
    from sqlalchemy import func, select

    from sterilog import audit, db
    from sterilog.models import AUDITED

    ids: dict[str, int] = {}
    with db.read_session(engine) as session:
        for model in AUDITED:
            table = model.__table__  # type: ignore[attr-defined]
            ids[table.name] = int(session.execute(select(func.max(table.c.id))).scalar() or 0)
        seq, prev = audit.head(session)
    return ids, seq, prev


def generate(
    url: str,
    sessions: int,
    *,
    seed: int = 7,
    month: str | None = None,
    per_day: int | None = None,
    end: dt.date = DEFAULT_END,
    progress: Callable[[str], None] | None = None,
    flush_entries: int = 40_000,
) -> dict[str, Any]:
    """Create the database at `url` (SQLite path or URL) and fill it. Returns the sidecar."""
    from sterilog import db

    started = time.perf_counter()
    cpu_started = time.process_time()
    resolved = db.resolve_url(url)
    if db.sqlite_file_exists(resolved):
        raise SystemExit(f"{resolved.database} exists; the generator fills a NEW database")
    plan = make_plan(sessions, seed, month, per_day, end)
    tz = ZoneInfo(TZ)
    setup_at = local_base(plan.days[0], tz) - dt.timedelta(hours=12)
    url_text = resolved.render_as_string(hide_password=False)
    run_init(url_text, setup_at)
    engine = db.make_engine(resolved)
    if db.is_sqlite(engine):
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _big_cache(dbapi_conn: Any, _rec: Any) -> None:
            dbapi_conn.execute("PRAGMA cache_size = -400000")
            dbapi_conn.execute("PRAGMA synchronous = OFF")

    try:
        regs = setup_registers(engine, plan, setup_at + dt.timedelta(minutes=5))
        ids, seq, prev = current_ids(engine)
        bulk = Bulk(engine, ids, seq, prev)
        hist = History(bulk, plan, regs, tz)
        bench: dict[str, Any] | None = None
        last_report = time.perf_counter()
        for i, (day, count) in enumerate(zip(plan.days, plan.counts, strict=True)):
            bench = hist.day(i, day, count, last=i == len(plan.days) - 1) or bench
            if bulk.queued() >= flush_entries:
                bulk.flush()
            if progress is not None and time.perf_counter() - last_report > 5:
                last_report = time.perf_counter()
                rate = hist.sessions / (last_report - started)
                progress(
                    f"  {hist.sessions:,}/{sessions:,} sessions, {bulk.entries:,} entries "
                    f"({rate:,.0f} sessions/s)"
                )
        bulk.flush()
        if db.is_sqlite(engine):
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
        db.secure_sqlite_files(resolved)
    assert bench is not None
    seconds = time.perf_counter() - started
    bench.update(
        {
            "db": url,
            "sessions": hist.sessions,
            "refusals": hist.refusals,
            "entries": bulk.seq,
            "rows": bulk.rows,
            "first_day": plan.days[0].isoformat(),
            "last_day": plan.days[-1].isoformat(),
            "month": month,
            "rooms": plan.rooms,
            "sterilizers": plan.sterilizers,
            "packs": plan.packs,
            "seed": seed,
            "generator_version": GENERATOR_VERSION,
            "seconds": round(seconds, 2),
            "cpu_seconds": round(time.process_time() - cpu_started, 2),
            "sessions_per_second": round(hist.sessions / seconds, 1),
        }
    )
    return bench


def sidecar_path(url: str) -> Path | None:
    from sterilog import db

    resolved = db.resolve_url(url)
    if resolved.get_backend_name() != "sqlite":
        return None
    return Path(str(resolved.database) + ".bench.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--db", required=True, help="new SQLite path or SQLAlchemy URL")
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--month", help="YYYY-MM: put every session in this (busy) month")
    parser.add_argument(
        "--per-day", type=int, help=f"sessions per clinic day [default {DEFAULT_PER_DAY}]"
    )
    parser.add_argument("--end", help="last clinic day (YYYY-MM-DD) when --month is not given")
    parser.add_argument("--sidecar", help="where to write the JSON sidecar [<db>.bench.json]")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.month is not None:
        try:
            year, mon = args.month.split("-")
            dt.date(int(year), int(mon), 1)
        except ValueError:
            parser.error("--month must be YYYY-MM")
    end = dt.date.fromisoformat(args.end) if args.end else DEFAULT_END

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    info = generate(
        args.db,
        args.sessions,
        seed=args.seed,
        month=args.month,
        per_day=args.per_day,
        end=end,
        progress=say,
    )
    side = Path(args.sidecar) if args.sidecar else sidecar_path(args.db)
    if side is not None:
        side.write_text(json.dumps(info, indent=2) + "\n")
        info["sidecar"] = str(side)
    say(
        f"generated {info['sessions']:,} sessions, {info['entries']:,} audit entries, "
        f"{info['rows']:,} rows in {info['seconds']:.1f} s "
        f"({info['sessions_per_second']:,.0f} sessions/s)"
    )
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
