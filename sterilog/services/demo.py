"""The demo clinic (SPEC §9): one realistic month of a microneedling clinic, written act by act
through the same service functions the CLI calls.

The month is simulated as a small discrete-event run: the manager, the sterilization routine and
each practitioner are generators that yield the (simulated) time of their next act; a scheduler
resumes them in time order, so every act is recorded at its own time, in order, each in its own
serialised write transaction with its own `Ctx` (exactly what one CLI command does). The
simulation keeps its own picture of the clinic (which packs are sterile, which units are in
stock, which room was cleaned) and checks that the gate agrees: an expected "go" that is
refused, or a refusal with other reasons than the mistake staged, is a bug and raises.

Deterministic: the only inputs are the month and the seed (`random.Random(seed)`), the clock
of every act is derived from the month, and nothing iterates over an unordered set. The same
month and seed give the same records, hence the same audit chain head.

Staged mistakes (each is refused by the gate, then put right and retried, as at a real clinic):
a room not cleaned after the previous client, a pen not reprocessed, a cartridge picked up
again from the tray (reused), an expired cartridge found in a drawer (then discarded), a unit
of the recalled lot, a pack from a load made suspect by the positive spore test, and a junior
practitioner asking for a depth above their limit.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from sterilog import db
from sterilog.clock import UTC
from sterilog.rulepack import load_pack
from sterilog.services import (
    cartridge,
    cleaning,
    gate,
    incidents,
    registers,
    signoff,
    sterilization,
)
from sterilog.services.base import Actor, Clinic, Ctx, load_clinic
from sterilog.services.people import actor_of, find_staff
from sterilog.services.setup import InitRequest, initialise

CLOCK = "demo"  # the audit log's clock source for the demo's simulated time
SEED = 2024
TZ_NAME = "Europe/London"
CLINIC_NAME = "Willow & Birch Skin Clinic"
RULES = "default"
STERILIZER = "AC-1"
PROGRAM = "134-3.5"
ROOM_PRODUCT = "Clinell Universal Wipes"
DEVICE_PRODUCT = "Tristel Duo ULT"
MANAGER = "margaret"
MANAGER_NAME = "Margaret O'Connell"
SPARE_DEVICE = "DP-4474"
CLOSED = 6  # Sunday

Proc = Generator[dt.datetime, None, None]
Sub = Generator[dt.datetime, None, Any]


@dataclass(frozen=True)
class Practitioner:
    code: str
    name: str
    room: str
    device: str
    workdays: tuple[int, ...]  # Monday = 0
    license_no: str
    max_depth_mm: float


PRACTITIONERS = (
    Practitioner("zoe", "Zoë Ångström", "R1", "DP-4471", (0, 1, 2, 3, 4), "NMC 18Z4471", 2.0),
    Practitioner(
        "priya", "Priya Raghunathan", "R2", "DP-4472", (1, 2, 3, 4, 5), "HCPC PA22917", 2.5
    ),
    Practitioner("tomas", "Tomás Ó Briain", "R3", "DP-4473", (0, 2, 3, 4, 5), "NMC 21T0935", 1.5),
)
ROOMS = (
    ("R1", "Treatment room 1 (garden side)"),
    ("R2", "Treatment room 2"),
    ("R3", "Treatment room 3 (upstairs)"),
)
DEVICES = (
    ("DP-4471", "Dermapen 4", 2.5),
    ("DP-4472", "Dermapen 4", 2.5),
    ("DP-4473", "SkinPen Precision", 2.5),
    (SPARE_DEVICE, "Dermapen 4", 2.5),
)
PACK_CONTENTS = (
    "Dressing set: tweezers, gallipot & gauze",
    "Extraction set: comedone extractor, fine tweezers",
    "Mixing set: stainless bowl, spatula",
    "Dressing set: tweezers, gallipot & gauze",
)
N_PACKS = 16
END_NOTES = (
    "Client tolerated well; aftercare leaflet given",
    "Mild erythema as expected; SPF advised",
    "Pin-point bleeding, settled with pressure",
    None,
    None,
    None,
)


def gs1_check_digit(digits: str) -> str:
    """The GS1 mod-10 check digit of a GTIN without it."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


GTIN_36 = "0950600013" + "441" + gs1_check_digit("0950600013441")  # 36-pin cartridges
GTIN_12 = "0950600013" + "458" + gs1_check_digit("0950600013458")  # 12-pin cartridges


def scan_text(gtin: str, expiry: dt.date, lot: str, serial: str | None) -> str:
    """What a scanner types for a cartridge, in GS1 human-readable form."""
    tail = f"(21){serial}" if serial is not None else ""
    return f"(01){gtin}(17){expiry:%y%m%d}(10){lot}{tail}"


@dataclass
class _Lot:
    key: str
    gtin: str
    lot: str
    expiry: dt.date
    needles: str  # "36" or "12"
    units: deque[str | None] = field(default_factory=deque)  # serials still in stock
    recalled: bool = False
    received: bool = False

    def scan(self, serial: str | None) -> str:
        return scan_text(self.gtin, self.expiry, self.lot, serial)


@dataclass
class _Room:
    needs_clean: bool = False  # the between-clients clean after the last session was missed


@dataclass(frozen=True)
class DemoResult:
    month: str
    clinic: str
    sessions: int
    refusals: int
    refusal_codes: dict[str, int]
    acts: int
    positive_bi: int
    suspect_loads: list[int]
    bi_sessions_affected: int
    recall: dict[str, Any]
    incident_session: int


@dataclass
class _Plan:
    """The month's fixed dates, derived from the calendar only."""

    days: list[dt.date]
    workdays: list[dt.date]
    lot_b_expiry: dt.date
    delivery_day: dt.date
    air_fail_day: dt.date
    positive_monday: dt.date
    recall_day: dt.date
    incident_day: dt.date
    failed_load_day: dt.date
    spill_day: dt.date


def _first_workday(
    workdays: list[dt.date], *, from_day: int, weekday: int | None = None
) -> dt.date:
    for d in workdays:
        if d.day >= from_day and (weekday is None or d.weekday() == weekday):
            return d
    raise AssertionError("a month always has such a day")


def plan_month(year: int, month: int) -> _Plan:
    first = dt.date(year, month, 1)
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    days = [first + dt.timedelta(days=i) for i in range((nxt - first).days)]
    workdays = [d for d in days if d.weekday() != CLOSED]
    positive_monday = _first_workday(workdays, from_day=8, weekday=0)
    recall_day = _first_workday(workdays, from_day=18)
    incident_day = _first_workday(workdays, from_day=(recall_day + dt.timedelta(days=3)).day)
    failed = next(d for d in workdays if d.day >= 23 and d.weekday() != 0)
    return _Plan(
        days=days,
        workdays=workdays,
        lot_b_expiry=dt.date(year, month, 11),
        delivery_day=_first_workday(workdays, from_day=7),
        air_fail_day=workdays[4],
        positive_monday=positive_monday,
        recall_day=recall_day,
        incident_day=incident_day,
        failed_load_day=failed,
        spill_day=next(d for d in workdays[10:] if d.weekday() < 5),
    )


def previous_month(now: dt.datetime, tz: ZoneInfo) -> tuple[int, int]:
    """The last full calendar month before `now`, in the clinic's zone."""
    today = now.astimezone(tz).date()
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.year, last.month


class _Demo:
    def __init__(
        self,
        engine: Engine,
        year: int,
        month: int,
        seed: int,
        progress: Callable[[dt.date, int, int], None] | None,
    ) -> None:
        self.engine = engine
        self.year, self.month = year, month
        self.tz = ZoneInfo(TZ_NAME)
        self.rng = random.Random(seed)
        self.plan = plan_month(year, month)
        self.progress = progress
        self.now = self.local(self.plan.days[0], 6, 0)
        self.actors: dict[str, Actor] = {}
        self.acts = 0
        # clinic state as the simulation sees it
        self.sterile: list[str] = []
        self.dirty: list[str] = []
        self.quarantined: list[str] = []
        self.rooms = {code: _Room() for code, _ in ROOMS}
        self.device_dirty: dict[str, bool] = {code: False for code, *_ in DEVICES}
        self.last_scan: dict[str, str] = {}
        self.locked = False
        self.last_bi_at: dt.datetime | None = None
        self.pending_bis: list[tuple[dt.datetime, int]] = []
        self.positive_bi = 0
        self.suspect_loads: list[int] = []
        self.bi_affected = 0
        self.recall_info: dict[str, Any] = {}
        self.incident_session = 0
        self.sessions = 0
        self.refusals = 0
        self.codes: Counter[str] = Counter()
        self.lot_c_sessions: list[int] = []
        self.staged: Counter[str] = Counter()
        self.after_recall = False
        self.after_positive = False
        self.worked: Counter[str] = Counter()
        self.clients = [f"C-{n:04d}" for n in range(1001, 1600)]
        self.rng.shuffle(self.clients)
        y, m = year % 100, month
        far = dt.date(year + 1, month, 1) + dt.timedelta(days=27)
        self.lots = {
            "A": _Lot("A", GTIN_36, f"DP36-{y:02d}{m:02d}A", far, "36"),
            "B": _Lot(
                "B", GTIN_36, f"DP36-{(y - 1) % 100:02d}{m:02d}K", self.plan.lot_b_expiry, "36"
            ),
            "C": _Lot("C", GTIN_12, f"DP12-{y:02d}{m:02d}C", far - dt.timedelta(days=40), "12"),
            "D": _Lot("D", GTIN_36, f"DP36-{y:02d}{m:02d}D", far + dt.timedelta(days=60), "36"),
            "E": _Lot("E", GTIN_12, f"DP12-{y:02d}{m:02d}E", far + dt.timedelta(days=30), "12"),
        }

    # --- plumbing ------------------------------------------------------------------------------

    def local(self, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=self.tz).astimezone(UTC)

    @contextmanager
    def act(self, who: str) -> Iterator[Ctx]:
        """One act: one serialised write transaction and one Ctx, as one CLI command has."""
        with db.write_session(self.engine) as session:
            yield Ctx(
                session=session,
                now=self.now,
                clock=CLOCK,
                clinic=load_clinic(session),
                actor=self.actors[who],
            )
        self.acts += 1

    def run(self) -> None:
        procs: list[Proc] = [self.manager(), self.sterilization()]
        procs += [self.practitioner(p) for p in PRACTITIONERS]
        procs.append(self.reporter())
        heap: list[tuple[dt.datetime, int, int]] = []
        seq = 0
        for i, proc in enumerate(procs):
            heap.append((next(proc), seq, i))
            seq += 1
        heapq.heapify(heap)
        while heap:
            at, _, i = heapq.heappop(heap)
            if at < self.now:
                raise AssertionError(f"demo clock went backwards to {at} (now {self.now})")
            self.now = at
            when = next(procs[i], None)
            if when is not None:
                heapq.heappush(heap, (when, seq, i))
                seq += 1

    def reporter(self) -> Proc:
        for n, day in enumerate(self.plan.days, 1):
            yield self.local(day, 23, 59)
            if self.progress is not None:
                self.progress(day, n, self.sessions)

    # --- the manager: setup, deliveries, the recall, the incident ------------------------------

    def manager(self) -> Proc:
        day0 = self.plan.days[0]
        yield self.local(day0, 6, 0)
        yield from self.setup(day0)
        p = self.plan
        after_recall = _first_workday(p.workdays, from_day=p.recall_day.day + 1)
        stale = _first_workday(p.workdays, from_day=p.lot_b_expiry.day + 6)
        agenda: list[tuple[dt.datetime, int, Callable[[], None]]] = [
            (
                self.local(p.delivery_day, 8, 30),
                1,
                lambda: self.receive(
                    "D",
                    150,
                    supplier="DermaSupply Ltd",
                    invoice=f"INV-{p.delivery_day:%y%m}-118",
                    serial=False,  # this supplier labels lot and expiry only
                ),
            ),
            (self.local(p.recall_day, 10, 5), 2, lambda: self.recall("C")),
            (
                self.local(p.recall_day, 14, 30),
                3,
                lambda: self.receive(
                    "E",
                    80,
                    supplier="DermaSupply Ltd",
                    invoice=f"INV-{p.recall_day:%y%m}-131",
                    serial=False,
                ),
            ),
            (
                self.local(after_recall, 8, 15),
                4,
                lambda: self.discard_all(
                    "C", "Recalled lot (FSN-0412): returned to the supplier, credit note requested"
                ),
            ),
            (
                self.local(stale, 18, 0),
                5,
                lambda: self.discard_all(
                    "B", f"Expired on {p.lot_b_expiry.isoformat()}: stock check, destroyed"
                ),
            ),
            (self.local(p.incident_day, 11, 30), 6, self.incident),
            # Issue 13: the recall's clients are all told (its exposure closes); the positive
            # BI's are told over the week but for two (its exposure stays open).
            (self.local(after_recall, 17, 0), 8, lambda: self.notify("recall", leave=0)),
            (
                self.local(p.positive_monday + dt.timedelta(days=4), 16, 0),
                9,
                lambda: self.notify("bi", leave=2),
            ),
            (self.local(p.workdays[-1], 19, 30), 7, self.sign),
        ]
        for at, _, do in sorted(agenda, key=lambda a: (a[0], a[1])):
            yield at
            do()

    def notify(self, cause: str, *, leave: int) -> None:
        """Tell an exposure's clients (all but `leave`), by phone, one in four by letter."""
        from sterilog.services import exposures

        with self.act(MANAGER) as ctx:
            found = [st for st in exposures.states(ctx.session) if st.exposure.cause == cause]
        for st in found:
            todo = st.pending[: max(0, len(st.pending) - leave)]
            for n, client in enumerate(todo):
                with self.act(MANAGER) as ctx:
                    exposures.notify(
                        ctx, st.exposure.id, client, how="letter" if n % 4 == 3 else "phone"
                    )

    def sign(self) -> None:
        """The manager reviews the month after the last clinic day closes."""
        with self.act(MANAGER) as ctx:
            signoff.sign(ctx, f"{self.year:04d}-{self.month:02d}", "reviewed")

    def discard_all(self, key: str, reason: str) -> None:
        lot = self.lots[key]
        while lot.units:
            with self.act(MANAGER) as ctx:
                cartridge.discard(ctx, lot.scan(lot.units[0]), reason=reason)
            lot.units.popleft()

    def setup(self, day: dt.date) -> Sub:
        with db.write_session(self.engine) as session:
            pack = load_pack(RULES)
            req = InitRequest(
                clinic=CLINIC_NAME,
                tz_name=TZ_NAME,
                rules_name=pack.name,
                rules_toml=pack.text,
                scanner_gs=None,
                manager=MANAGER,
                manager_name=MANAGER_NAME,
                training=True,  # a demo is a training database, never a clinic's record
            )
            clinic = Clinic(CLINIC_NAME, TZ_NAME, self.tz, pack.name, pack.text, None, True)
            initialise(Ctx(session=session, now=self.now, clock=CLOCK, clinic=clinic), req)
            staff = find_staff(session, MANAGER)
            assert staff is not None
            self.actors[MANAGER] = actor_of(staff)
        self.acts += 1
        minute = self.now

        def tick() -> dt.datetime:
            nonlocal minute
            minute += dt.timedelta(minutes=1)
            return minute

        expires = dt.date(self.year + 1, 3, 31)
        for p in PRACTITIONERS:
            yield tick()
            with self.act(MANAGER) as ctx:
                row = registers.add_staff(
                    ctx,
                    p.code,
                    name=p.name,
                    role="practitioner",
                    license_no=p.license_no,
                    license_expires=expires,
                    max_depth_mm=p.max_depth_mm,
                )
                self.actors[p.code] = actor_of(row)
        for code, name in ROOMS:
            yield tick()
            with self.act(MANAGER) as ctx:
                registers.add_room(ctx, code, name=name)
        for serial, model, depth in DEVICES:
            yield tick()
            with self.act(MANAGER) as ctx:
                registers.add_device(ctx, serial, model=model, max_depth_mm=depth)
        yield tick()
        with self.act(MANAGER) as ctx:
            registers.add_sterilizer(
                ctx, STERILIZER, model="Melag Vacuklav 40B+", type_="B", serial="V40B-2019-33817"
            )
        for i in range(1, N_PACKS + 1):
            yield tick()
            code = f"PK-{i:02d}"
            with self.act(MANAGER) as ctx:
                registers.add_pack(ctx, code, contents=PACK_CONTENTS[i % len(PACK_CONTENTS)])
            self.dirty.append(code)  # never sterilized yet
        yield tick()
        with self.act(MANAGER) as ctx:
            registers.add_disinfectant(
                ctx, ROOM_PRODUCT, contact_min=1, reg_no="BPR-UK-1187", level="intermediate"
            )
        yield tick()
        with self.act(MANAGER) as ctx:
            registers.add_disinfectant(
                ctx, DEVICE_PRODUCT, contact_min=0.5, reg_no="CE 0086-ULT", level="high"
            )
        for key, count in (("A", 160), ("B", 45), ("C", 120)):
            yield tick()
            self.receive(key, count, supplier="DermaSupply Ltd", invoice=f"INV-{day:%y%m}-104")
        for code, _ in ROOMS:
            yield tick()
            with self.act(MANAGER) as ctx:
                cleaning.clean_room(
                    ctx,
                    code,
                    kind="end-of-day",
                    disinfectant=ROOM_PRODUCT,
                    note="Deep clean before the month's first clients",
                )
        for serial, *_ in DEVICES:
            yield tick()
            with self.act(MANAGER) as ctx:
                cleaning.clean_device(ctx, serial, disinfectant=DEVICE_PRODUCT)

    def receive(
        self, key: str, count: int, *, supplier: str, invoice: str, serial: bool = True
    ) -> None:
        lot = self.lots[key]
        if serial:
            serials: list[str | None] = [f"{lot.lot[-1]}{n:05d}" for n in range(1, count + 1)]
            scans = [lot.scan(s) for s in serials]
            quantity = None
        else:
            serials = [None] * count
            scans = [lot.scan(None)]
            quantity = count
        with self.act(MANAGER) as ctx:
            cartridge.receive(ctx, scans, quantity=quantity, supplier=supplier, invoice=invoice)
        lot.units.extend(serials)
        lot.received = True

    def recall(self, key: str) -> None:
        lot = self.lots[key]
        with self.act(MANAGER) as ctx:
            result = cartridge.recall(
                ctx,
                gtin=lot.gtin,
                lot=lot.lot,
                reason="Manufacturer field safety notice FSN-0412: needle tips of this lot may be "
                "burred; stop use and quarantine stock",
            )
        lot.recalled = True
        self.after_recall = True
        self.recall_info = {
            "gtin": lot.gtin,
            "lot": lot.lot,
            "units_in_stock": result.units_in_stock,
            "sessions": len(result.sessions),
        }

    def incident(self) -> None:
        session_id = self.lot_c_sessions[-1]
        with self.act(MANAGER) as ctx:
            incidents.record(
                ctx,
                session_id,
                kind="infection",
                severity="mild",
                note="Client phoned: redness and small pustules on the left cheek three days "
                "after treatment. Seen by GP, topical antibiotic; client informed of the "
                "cartridge recall. Trace reviewed.",
            )
        self.incident_session = session_id

    # --- sterilization: air-removal tests, loads, spore tests ----------------------------------

    def sterilization(self) -> Proc:
        p = self.plan
        for i, day in enumerate(p.workdays):
            who = MANAGER if day.weekday() < 5 else "priya"
            yield self.local(day, 7, 30)
            first_load = self.local(day, 7, 45)
            if day == p.air_fail_day:
                self.air_test(who, "fail")
                yield self.local(day, 7, 38)
                self.read_bis(who)
                yield self.local(day, 7, 52)
                self.air_test(who, "pass")  # rerun after cleaning the door seal
                first_load = self.local(day, 8, 5)
            else:
                self.air_test(who, "pass")
                yield self.local(day, 7, 38)
                self.read_bis(who)
            if self.locked:
                # no loads until a negative retest lifts the lock (read tomorrow morning)
                yield from self.requalify(who, day)
                continue
            loads = [first_load, self.local(day, 12, 50), self.local(day, 16, 30)]
            for n, at in enumerate(loads):
                yield at
                if self.locked:
                    continue
                bi = n == 0 and (
                    day.weekday() == 0
                    or self.last_bi_at is None
                    or at - self.last_bi_at >= dt.timedelta(days=6)
                )
                if n == 0 and day == p.failed_load_day:
                    self.load(who, day, i, bi=bi, fail=True)
                    yield at + dt.timedelta(minutes=65)
                    self.load(who, day, i, bi=False)
                else:
                    self.load(who, day, i, bi=bi)
            for read_at, _ in sorted(self.pending_bis):
                if read_at.astimezone(self.tz).date() == day and read_at > self.now:
                    yield read_at
                    self.read_bis(who)

    def air_test(self, who: str, result: str) -> None:
        with self.act(who) as ctx:
            sterilization.record_air_removal(ctx, sterilizer=STERILIZER, result=result)

    def load(self, who: str, day: dt.date, index: int, *, bi: bool, fail: bool = False) -> None:
        packs = list(self.dirty)
        if not packs and not bi:
            return
        rng = self.rng
        temp = round(rng.uniform(134.0, 135.6), 1)
        hold = 2.9 if fail else rng.choice((3.5, 3.5, 3.6, 3.7, 4.0))
        with self.act(who) as ctx:
            rec = sterilization.record_cycle(
                ctx,
                sterilizer=STERILIZER,
                program=PROGRAM,
                temp_c=temp,
                hold_min=hold,
                ci="fail" if fail else "pass",
                ci_type=5,
                packs=packs,
                bi_lot=f"EZT-{day:%y%m}-{index % 3 + 1}" if bi else None,
            )
        if rec.cycle.passed != (not fail):
            raise AssertionError(f"load {rec.cycle.id}: expected passed={not fail}")
        if bi:
            assert rec.bi is not None
            self.bi_placed(rec.bi.id, rec.cycle.at, day)
        if not fail:
            self.sterile.extend(packs)
            self.dirty = [c for c in self.dirty if c not in packs]

    def bi_placed(self, bi_id: int, at: dt.datetime, day: dt.date) -> None:
        self.last_bi_at = at
        later = [d for d in self.plan.workdays if d > day]
        # Read after about a day of incubation; on the month's last working day a rapid-readout
        # indicator is read the same evening, so the month ends with no BI pending.
        read_at = self.local(later[0], 7, 38) if later else self.local(day, 18, 30)
        self.pending_bis.append((read_at, bi_id))
        if day == self.plan.positive_monday and self.positive_bi == 0:
            self.positive_bi = bi_id

    def read_bis(self, who: str) -> None:
        due = sorted(b for b in self.pending_bis if b[0] <= self.now)
        for item in due:
            self.pending_bis.remove(item)
            bi_id = item[1]
            positive = bi_id == self.positive_bi
            with self.act(who) as ctx:
                res = sterilization.read_bi(
                    ctx,
                    bi_id,
                    result="positive" if positive else "negative",
                    control="positive",
                )
            if positive:
                if not res.locked:
                    raise AssertionError("a positive BI must lock the sterilizer")
                self.locked = True
                self.after_positive = True
                self.suspect_loads = list(res.suspect_loads)
                self.bi_affected = res.sessions_affected
                # every pack on the shelf came from a suspect load: pulled for reprocessing
                self.quarantined = list(self.sterile)
                self.dirty.extend(self.sterile)
                self.sterile = []
            elif self.locked and not res.locked:
                self.locked = False

    def requalify(self, who: str, day: dt.date) -> Sub:
        yield self.local(day, 8, 20)
        with self.act(MANAGER) as ctx:
            registers.service_sterilizer(
                ctx,
                STERILIZER,
                note="Positive spore test: chamber, door gasket and drain filter inspected, "
                "printer record reviewed; no fault found. Retest in an empty chamber.",
                repair=False,
            )
        yield self.local(day, 8, 45)
        with self.act(who) as ctx:
            rec = sterilization.record_cycle(
                ctx,
                sterilizer=STERILIZER,
                program=PROGRAM,
                temp_c=134.8,
                hold_min=3.6,
                ci="pass",
                ci_type=5,
                bi_lot=f"EZT-{day:%y%m}-R",
            )
        assert rec.bi is not None
        self.bi_placed(rec.bi.id, rec.cycle.at, day)

    # --- practitioners -------------------------------------------------------------------------

    def practitioner(self, p: Practitioner) -> Proc:
        rng = self.rng
        for day in self.plan.workdays:
            if day.weekday() not in p.workdays:
                continue
            self.worked[p.code] += 1
            spare_for = PRACTITIONERS[day.day % 3].code
            device = SPARE_DEVICE if day.weekday() in (1, 3) and spare_for == p.code else p.device
            lunch, lunch_end = self.local(day, 12, 20), self.local(day, 13, 30)
            closing = self.local(day, 17, 15)
            t: dt.datetime | None = self.local(day, 9, rng.choice((0, 0, 5, 10, 15)))
            slot = 0
            while t is not None:
                if rng.random() < 0.2:  # nobody booked: the slot stays empty
                    t = self.next_slot(t + dt.timedelta(minutes=60), lunch, lunch_end, closing)
                    continue
                yield t
                end = yield from self.treat(p, device, day, slot)
                slot += 1
                gap = dt.timedelta(minutes=rng.choice((8, 10, 15, 15, 20, 25)))
                t = self.next_slot(end + gap, lunch, lunch_end, closing)
                yield from self.turnaround(p, device, day, end, last=t is None, slot=slot)

    def next_slot(
        self, t: dt.datetime, lunch: dt.datetime, lunch_end: dt.datetime, closing: dt.datetime
    ) -> dt.datetime | None:
        if lunch <= t < lunch_end:
            t = lunch_end + dt.timedelta(minutes=self.rng.choice((0, 5, 10)))
        return None if t > closing else t

    def pick(self, needles: str) -> _Lot:
        """The lot a practitioner takes a cartridge from (stock the simulation knows is good)."""
        day = self.now.astimezone(self.tz).date()
        b = self.lots["B"]
        if needles == "36" and day <= b.expiry and len(b.units) > 8 and self.rng.random() < 0.4:
            return b
        order = ("A", "D", "C", "E") if needles == "36" else ("C", "E", "A", "D")
        for key in order:
            lot = self.lots[key]
            if lot.received and lot.units and not lot.recalled and day <= lot.expiry:
                return lot
        raise AssertionError("the demo ran out of cartridges")

    def stage(self, p: Practitioner, day: dt.date, slot: int) -> str | None:
        """The mistake made at this session's first scan, if any."""
        rng = self.rng
        nth = self.worked[p.code]
        b = self.lots["B"]
        if self.after_positive and self.quarantined and self.staged["suspect"] == 0:
            return "suspect"
        if self.after_recall and self.lots["C"].units and self.staged["recalled"] == 0:
            return "recalled"
        if (
            day > b.expiry
            and b.units
            and self.staged["expired"] < 3
            and (self.staged["expired"] == 0 or rng.random() < 0.15)
        ):
            return "expired"
        used_ok = p.code in self.last_scan and "(21)" in self.last_scan[p.code]
        if used_ok and ((p is PRACTITIONERS[1] and nth == 4 and slot == 2) or rng.random() < 0.012):
            return "used"
        if p.max_depth_mm < 2.0 and ((nth == 5 and slot == 1) or rng.random() < 0.01):
            return "depth"
        return None

    def treat(self, p: Practitioner, device: str, day: dt.date, slot: int) -> Sub:
        rng = self.rng
        client = self.clients[self.sessions % len(self.clients)]
        needles = "36" if rng.random() < 0.7 else "12"
        depth = min(rng.choice((0.5, 0.75, 1.0, 1.0, 1.25, 1.5, 1.5, 2.0)), p.max_depth_mm)
        pack = self.sterile.pop(0) if self.sterile and rng.random() < 0.65 else None
        room = self.rooms[p.room]
        mistake: str | None
        if room.needs_clean:
            mistake = "room"
        elif self.device_dirty[device]:
            mistake = "device"
        else:
            mistake = self.stage(p, day, slot)
        if mistake is not None:
            self.staged[mistake] += 1
            scan, packs, asked = self.scan_for(needles), (pack,) if pack else (), depth
            expected = {
                "room": "room-not-cleaned",
                "device": "device-not-reprocessed",
                "used": "cartridge-used",
                "expired": "cartridge-expired",
                "recalled": "cartridge-recalled",
                "suspect": "pack-load-suspect",
                "depth": "practitioner-depth-exceeded",
            }[mistake]
            b = self.lots["B"]
            if mistake == "used":
                scan = self.last_scan[p.code]
            elif mistake == "expired":
                scan = b.scan(b.units[0])
            elif mistake == "recalled":
                scan = self.lots["C"].scan(self.lots["C"].units[0])
            elif mistake == "suspect":
                packs = (self.quarantined[0],)
            elif mistake == "depth":
                asked = 2.0
            self.attempt(p, device, scan, packs, client, asked, expect=expected)
            yield self.now + dt.timedelta(minutes=1)
            if mistake == "room":
                with self.act(p.code) as ctx:
                    cleaning.clean_room(
                        ctx,
                        p.room,
                        kind="between-clients",
                        disinfectant=ROOM_PRODUCT,
                        note="Cleaned at the gate's refusal: missed after the previous client",
                    )
                room.needs_clean = False
                yield self.now + dt.timedelta(minutes=2)
            elif mistake == "device":
                with self.act(p.code) as ctx:
                    cleaning.clean_device(ctx, device, disinfectant=DEVICE_PRODUCT)
                self.device_dirty[device] = False
                yield self.now + dt.timedelta(minutes=2)
            elif mistake == "expired":
                with self.act(p.code) as ctx:
                    cartridge.discard(
                        ctx,
                        scan,
                        reason=f"Expired (last usable day {b.expiry.isoformat()}); found in the "
                        "treatment-room drawer",
                    )
                b.units.popleft()
                yield self.now + dt.timedelta(minutes=1)
            elif mistake == "suspect":
                self.quarantined.pop(0)
        lot = self.pick(needles)
        serial = lot.units[0]
        scan = lot.scan(serial)
        session_id = self.attempt(p, device, scan, (pack,) if pack else (), client, depth)
        lot.units.popleft()
        self.last_scan[p.code] = scan
        if lot.key == "C":
            self.lot_c_sessions.append(session_id)
        yield self.now + dt.timedelta(minutes=rng.choice((35, 40, 40, 45, 45, 50, 55)))
        with self.act(p.code) as ctx:
            gate.end(ctx, session_id, rng.choice(END_NOTES))
        if pack is not None:
            self.dirty.append(pack)
        return self.now

    def scan_for(self, needles: str) -> str:
        lot = self.pick(needles)
        return lot.scan(lot.units[0])

    def attempt(
        self,
        p: Practitioner,
        device: str,
        scan: str,
        packs: tuple[str, ...],
        client: str,
        depth: float,
        expect: str | None = None,
    ) -> int:
        req = gate.GateRequest(
            room=p.room,
            device=device,
            cartridge=scan,
            packs=packs,
            practitioner=p.code,
            depth_mm=depth,
            client=client,
        )
        with self.act(p.code) as ctx:
            decision, started, refusal = gate.start(ctx, req)
        codes = [r.code for r in decision.reasons]
        if expect is None:
            if started is None:
                raise AssertionError(f"demo session unexpectedly refused: {codes}")
            self.sessions += 1
            return started.id
        if refusal is None or codes != [expect]:
            raise AssertionError(f"demo expected a {expect} refusal, got {codes}")
        self.refusals += 1
        self.codes.update(codes)
        return 0

    def turnaround(
        self, p: Practitioner, device: str, day: dt.date, end: dt.datetime, *, last: bool, slot: int
    ) -> Sub:
        rng = self.rng
        forgot_device = not last and (
            (p is PRACTITIONERS[2] and self.worked[p.code] == 6 and slot == 2)
            or rng.random() < 0.012
        )
        forgot_room = (
            not last
            and not forgot_device
            and (
                (p is PRACTITIONERS[0] and self.worked[p.code] == 3 and slot == 1)
                or rng.random() < 0.02
            )
        )
        yield end + dt.timedelta(minutes=2)
        if forgot_device:
            self.device_dirty[device] = True
        else:
            with self.act(p.code) as ctx:
                cleaning.clean_device(
                    ctx, device, disinfectant=DEVICE_PRODUCT, barrier_lot=f"SLV-{day:%y%m}-07"
                )
        if day == self.plan.spill_day and p is PRACTITIONERS[0] and slot == 2:
            yield end + dt.timedelta(minutes=3)
            with self.act(p.code) as ctx:
                cleaning.clean_room(
                    ctx,
                    p.room,
                    kind="spill",
                    disinfectant=ROOM_PRODUCT,
                    note="Blood spot on the couch headrest <2 cm wiped before the full clean",
                )
        if last:
            yield end + dt.timedelta(minutes=10)
            with self.act(p.code) as ctx:
                cleaning.clean_room(ctx, p.room, kind="end-of-day", disinfectant=ROOM_PRODUCT)
        elif forgot_room:
            self.rooms[p.room].needs_clean = True
        else:
            yield end + dt.timedelta(minutes=4)
            with self.act(p.code) as ctx:
                cleaning.clean_room(ctx, p.room, kind="between-clients", disinfectant=ROOM_PRODUCT)

    def result(self) -> DemoResult:
        return DemoResult(
            month=f"{self.year:04d}-{self.month:02d}",
            clinic=CLINIC_NAME,
            sessions=self.sessions,
            refusals=self.refusals,
            refusal_codes=dict(sorted(self.codes.items())),
            acts=self.acts,
            positive_bi=self.positive_bi,
            suspect_loads=self.suspect_loads,
            bi_sessions_affected=self.bi_affected,
            recall=self.recall_info,
            incident_session=self.incident_session,
        )


def build(
    engine: Engine,
    year: int,
    month: int,
    *,
    seed: int = SEED,
    progress: Callable[[dt.date, int, int], None] | None = None,
) -> DemoResult:
    """Fill a new, migrated, empty database with the demo clinic's month `year-month`."""
    demo = _Demo(engine, year, month, seed, progress)
    demo.run()
    return demo.result()
