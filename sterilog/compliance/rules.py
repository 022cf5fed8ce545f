"""Every compliance rule: pure functions over frozen facts. No database, no clock, no I/O.

One table, `RULES`, holds every rule with a stable code and a scope:

- `gate`: `check` / `session start` (SPEC §6.5), over `GateFacts`;
- `cycle`: `cycle record` (SPEC §6.3), over `CycleFacts`;
- `gap`: the monthly report's gaps (SPEC §8). A gap rule names the gate or cycle rule it
  applies (`same_as`) and runs that very function over the facts as of the record's time;
- `status`: the items `sterilog status` lists.

Each check returns the messages of what blocks (empty: passes). `evaluate` runs the gate rules,
`check_cycle` the cycle rules. `docs/gate.md` is generated from `RULES` (sterilog/docgen.py).
To add a rule: write its check here, add one `RuleSpec` row, regenerate docs/gate.md.

Time semantics (docs/daily.md says the same for users):

- The weekly-BI window is half-open and measured in elapsed time: a BI cycle at `t` covers
  cycles in `[t, t + interval)`. A cycle exactly `interval` days after the last qualifying BI
  cycle is overdue. Elapsed time, not wall-clock days: a daylight-saving change does not stretch
  or shrink the week.
- "Today" for the air-removal test is the clinic's local calendar day (23 or 25 hours long on a
  daylight-saving change day), and the test must be at or before the cycle.
- Ties in time are broken by record order (`recorded_at`, then the row id).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sterilog.compliance.vocab import FAIL, NEGATIVE, PASS
from sterilog.errors import Reason


@dataclass(frozen=True)
class Moment:
    """An event's place in time: event time, then when it was recorded (ties: later record)."""

    at: dt.datetime
    recorded_at: dt.datetime

    def key(self) -> tuple[dt.datetime, dt.datetime]:
        return (self.at, self.recorded_at)


def after(later: Moment | None, earlier: Moment | None) -> bool:
    """`later` happened after `earlier`. On a full tie the later-recorded record counts as
    after (SPEC §4), and a record made at the same instant as the other is taken as after it."""
    if later is None:
        return False
    if earlier is None:
        return True
    return later.key() >= earlier.key()


@dataclass(frozen=True)
class CartridgeFacts:
    raw: str
    gtin: str
    lot: str
    serial: str | None
    lot_known: bool = False
    unit_known: bool = False
    expiry: dt.date | None = None
    usable_until: dt.datetime | None = None  # first instant after the expiry day, clinic zone
    used_by_session: int | None = None
    discarded: bool = False
    recalled: bool = False
    lot_units: int = 0  # unserialized: units received
    available_unit_id: int | None = None  # the unit the session would consume


@dataclass(frozen=True)
class DeviceFacts:
    code: str
    retired: bool = False
    max_depth_mm: float | None = None
    open_session: int | None = None
    last_end: Moment | None = None
    ever_used: bool = False
    last_clean: Moment | None = None


@dataclass(frozen=True)
class RoomFacts:
    code: str
    open_session: int | None = None
    last_end: Moment | None = None
    ever_used: bool = False
    last_clean: Moment | None = None


@dataclass(frozen=True)
class PackFacts:
    code: str
    load_id: int | None = None
    load_at: dt.datetime | None = None
    load_passed: bool = False
    load_suspect: bool = False
    last_used_at: dt.datetime | None = None
    open_session: int | None = None


@dataclass(frozen=True)
class PractitionerFacts:
    code: str
    role: str
    active: bool = True
    license_expires: dt.date | None = None
    max_depth_mm: float | None = None


@dataclass(frozen=True)
class GateFacts:
    now: dt.datetime
    today: dt.date  # the clinic's local date now
    cartridge: CartridgeFacts
    device: DeviceFacts
    room: RoomFacts
    practitioner: PractitionerFacts
    packs: tuple[PackFacts, ...] = ()
    depth_mm: float | None = None
    pack_shelf_life_days: int | None = None


# --- cartridge ---------------------------------------------------------------------------------


def cartridge_known(f: GateFacts) -> list[str]:
    c = f.cartridge
    if not c.lot_known:
        return [f"GTIN {c.gtin} lot {c.lot} was never received into stock"]
    if not c.unit_known:
        if c.serial is not None:
            return [f"serial {c.serial} of lot {c.lot} was never received into stock"]
        return [f"lot {c.lot} was received serialized; scan the unit's own barcode"]
    return []


def cartridge_unexpired(f: GateFacts) -> list[str]:
    c = f.cartridge
    if c.usable_until is not None and f.now >= c.usable_until:
        return [f"expired: last usable day was {c.expiry}"]
    return []


def cartridge_unused(f: GateFacts) -> list[str]:
    c = f.cartridge
    if c.serial is not None and c.used_by_session is not None:
        return [f"this unit was already used in session {c.used_by_session}: single use only"]
    return []


def lot_available(f: GateFacts) -> list[str]:
    c = f.cartridge
    if c.serial is None and c.unit_known and c.available_unit_id is None:
        return [f"all {c.lot_units} units received of lot {c.lot} are already used or discarded"]
    return []


def cartridge_not_recalled(f: GateFacts) -> list[str]:
    c = f.cartridge
    if c.recalled:
        return [f"lot {c.lot} of GTIN {c.gtin} is recalled"]
    return []


def cartridge_not_discarded(f: GateFacts) -> list[str]:
    c = f.cartridge
    if c.serial is not None and c.discarded:
        return ["this unit was discarded"]
    return []


# --- device ------------------------------------------------------------------------------------


def device_active(f: GateFacts) -> list[str]:
    return [f"device {f.device.code} is retired"] if f.device.retired else []


def device_reprocessed(f: GateFacts) -> list[str]:
    d = f.device
    if d.open_session is not None:
        return []  # device-in-use says it; it will need reprocessing after that session
    if d.last_clean is None:
        return [f"device {d.code} has no cleaning recorded"]
    if d.ever_used and not after(d.last_clean, d.last_end):
        return [f"device {d.code} was not cleaned and disinfected after its last session"]
    return []


def device_free(f: GateFacts) -> list[str]:
    d = f.device
    if d.open_session is not None:
        return [f"device {d.code} is in open session {d.open_session}"]
    return []


def device_depth(f: GateFacts) -> list[str]:
    d = f.device
    if f.depth_mm is not None and d.max_depth_mm is not None and f.depth_mm > d.max_depth_mm:
        return [f"{f.depth_mm:g} mm is deeper than device {d.code}'s maximum {d.max_depth_mm:g} mm"]
    return []


# --- room --------------------------------------------------------------------------------------


def room_cleaned(f: GateFacts) -> list[str]:
    r = f.room
    if r.open_session is not None:
        return []  # room-occupied says it
    if r.last_clean is None:
        return [f"room {r.code} has no between-clients or end-of-day clean recorded"]
    if r.ever_used and not after(r.last_clean, r.last_end):
        return [f"room {r.code} was not cleaned after its last session ended"]
    return []


def room_free(f: GateFacts) -> list[str]:
    r = f.room
    if r.open_session is not None:
        return [f"room {r.code} has open session {r.open_session}"]
    return []


# --- packs -------------------------------------------------------------------------------------


def _pack_used_since_load(p: PackFacts) -> bool:
    return p.last_used_at is not None and p.load_at is not None and p.last_used_at >= p.load_at


def packs_sterile(f: GateFacts) -> list[str]:
    out = []
    for p in f.packs:
        if p.open_session is not None:
            continue
        if p.load_id is None:
            out.append(f"pack {p.code} has never been through a sterilizer load")
        elif _pack_used_since_load(p):
            out.append(f"pack {p.code} was used after its last load {p.load_id}: reprocess it")
    return out


def packs_load_passed(f: GateFacts) -> list[str]:
    return [
        f"pack {p.code}'s latest load {p.load_id} failed"
        for p in f.packs
        if p.load_id is not None and not p.load_passed and not _pack_used_since_load(p)
    ]


def packs_load_not_suspect(f: GateFacts) -> list[str]:
    return [
        f"pack {p.code}'s latest load {p.load_id} is suspect after a positive spore test"
        for p in f.packs
        if p.load_id is not None
        and p.load_passed
        and p.load_suspect
        and not _pack_used_since_load(p)
    ]


def packs_in_date(f: GateFacts) -> list[str]:
    days = f.pack_shelf_life_days
    if not days:
        return []
    out = []
    for p in f.packs:
        if p.load_at is None or not p.load_passed or _pack_used_since_load(p):
            continue
        if f.now >= p.load_at + dt.timedelta(days=days):
            out.append(
                f"pack {p.code}'s sterile shelf life of {days} days after load "
                f"{p.load_id} has ended"
            )
    return out


def packs_free(f: GateFacts) -> list[str]:
    return [
        f"pack {p.code} is in open session {p.open_session}"
        for p in f.packs
        if p.open_session is not None
    ]


# --- practitioner ------------------------------------------------------------------------------


def practitioner_licensed(f: GateFacts) -> list[str]:
    p = f.practitioner
    if p.role == "inspector":
        return [f"{p.code} is an inspector and may not treat clients"]
    if not p.active:
        return [f"{p.code} has been deactivated"]
    if p.license_expires is not None and f.today > p.license_expires:
        return [f"{p.code}'s licence expired on {p.license_expires}"]
    return []


def practitioner_depth(f: GateFacts) -> list[str]:
    p = f.practitioner
    if f.depth_mm is not None and p.max_depth_mm is not None and f.depth_mm > p.max_depth_mm:
        return [f"{f.depth_mm:g} mm is deeper than {p.code} may work ({p.max_depth_mm:g} mm)"]
    return []


# --- mechanical and chemical monitoring --------------------------------------------------------


@dataclass(frozen=True)
class Readings:
    """What the operator read off the sterilizer and the chemical indicator."""

    temp_c: float
    hold_min: float
    ci: str  # "pass" | "fail"
    ci_type: int | None


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    temp_c: float
    hold_min: float


def cycle_failures(r: Readings, program: ProgramSpec, min_ci_type: int | None) -> list[str]:
    """Why a cycle failed; empty when it passed (CDC 2003: mechanical and chemical monitoring)."""
    out: list[str] = []
    if r.temp_c < program.temp_c:
        out.append(f"temperature {r.temp_c:g} °C is below the program's {program.temp_c:g} °C")
    if r.hold_min < program.hold_min:
        out.append(
            f"holding time {r.hold_min:g} min is below the program's {program.hold_min:g} min"
        )
    if r.ci != PASS:
        out.append("the chemical indicator failed")
    if min_ci_type is not None:
        if r.ci_type is None:
            out.append(
                f"no chemical indicator type given; the rule pack requires type {min_ci_type}+"
            )
        elif r.ci_type < min_ci_type:
            out.append(
                f"chemical indicator type {r.ci_type} is below the required type {min_ci_type}"
            )
    return out


# --- the lock after a positive BI and the requalification count --------------------------------


@dataclass(frozen=True)
class PositiveRead:
    """A positive BI read with a valid control."""

    bi_id: int
    at: dt.datetime  # the read's event time: the lock starts here


@dataclass(frozen=True)
class NegativeRead:
    """A negative BI read with a valid control."""

    bi_id: int
    cycle_at: dt.datetime
    at: dt.datetime


@dataclass(frozen=True)
class LockFacts:
    """Everything the lock depends on, as of one moment.

    `repair_at`: the latest `sterilizer service --repair` at or before that moment (earlier
    repairs do not matter: a repair always restarts requalification). `positives`: valid
    positive reads after it (all of them when there was no repair). `negatives`: valid
    negative reads that may count; the fold below decides which do.
    """

    repair_at: dt.datetime | None
    repair_id: int | None
    positives: tuple[PositiveRead, ...]
    negatives: tuple[NegativeRead, ...]
    requalify_bis: int
    requalify_bis_after_repair: int


@dataclass(frozen=True)
class Lock:
    locked: bool
    reason: str | None  # why it is locked, for messages
    remaining: int  # negative valid BIs still needed
    since: dt.datetime | None  # when the current lock (or requalification) started


UNLOCKED = Lock(locked=False, reason=None, remaining=0, since=None)


def lock_state(f: LockFacts) -> Lock:
    """Fold the triggers and negative reads in event order.

    - A repair puts the sterilizer into requalification: `requalify_bis_after_repair` negative
      valid BIs are needed, on cycles run after the repair.
    - A positive valid BI locks it: `requalify_bis` negative valid BIs are needed, on cycles run
      after the positive read (loads run while the failing BI incubated are suspect, so they
      cannot requalify it). A positive during an unfinished post-repair requalification
      restarts the full post-repair count.
    - "Consecutive": a new positive restarts the count; a pending or invalid read neither
      counts nor breaks the run.
    """
    events: list[tuple[dt.datetime, int, object]] = []
    if f.repair_at is not None:
        events.append((f.repair_at, 0, "repair"))
    events.extend((p.at, 0, p) for p in f.positives)
    events.extend((n.at, 1, n) for n in f.negatives)
    events.sort(key=lambda e: (e[0], e[1]))

    remaining = 0
    since: dt.datetime | None = None
    kind: str | None = None  # "repair" while a post-repair requalification is unfinished
    reason: str | None = None
    for at, _, ev in events:
        if ev == "repair":
            remaining, since, kind = f.requalify_bis_after_repair, at, "repair"
            reason = f"a repair (service {f.repair_id}) needs requalification BIs"
        elif isinstance(ev, PositiveRead):
            if kind == "repair" and remaining > 0:
                remaining = f.requalify_bis_after_repair
                reason = f"BI {ev.bi_id} read positive during requalification after a repair"
            else:
                remaining, kind = f.requalify_bis, "positive"
                reason = f"BI {ev.bi_id} read positive"
            since = at
        elif (
            isinstance(ev, NegativeRead)
            and remaining > 0
            and since is not None
            and ev.cycle_at > since
            and ev.at > since
        ):
            remaining -= 1
            if remaining == 0:
                kind = None
    if remaining <= 0:
        return UNLOCKED
    return Lock(locked=True, reason=reason, remaining=remaining, since=since)


# --- the weekly BI -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BiEvidence:
    """A BI placed in an earlier cycle of the sterilizer, with its valid read (if any)."""

    bi_id: int
    cycle_at: dt.datetime
    result: str | None  # result of the valid read, None while pending
    read_at: dt.datetime | None


def bi_counts_at(b: BiEvidence, at: dt.datetime) -> bool:
    """Still incubating at `at` (no valid read yet) or read negative with a valid control."""
    return b.result is None or b.read_at is None or b.read_at > at or b.result == NEGATIVE


def bi_window_start(at: dt.datetime, interval_days: int) -> dt.datetime:
    """The open lower bound of the window `(at - interval, at]`."""
    return at - dt.timedelta(days=interval_days)


def in_bi_window(cycle_at: dt.datetime, at: dt.datetime, interval_days: int) -> bool:
    return bi_window_start(at, interval_days) < cycle_at <= at


def bi_due_at(
    latest_qualifying_cycle_at: dt.datetime | None, interval_days: int
) -> dt.datetime | None:
    """The first instant at which a cycle without a BI is blocked (None: already, no BI yet)."""
    if latest_qualifying_cycle_at is None:
        return None
    return latest_qualifying_cycle_at + dt.timedelta(days=interval_days)


# --- air-removal tests -------------------------------------------------------------------------


@dataclass(frozen=True)
class AirTest:
    id: int
    at: dt.datetime
    result: str  # "pass" | "fail"


def air_tests_of_day(tests: Sequence[AirTest], at: dt.datetime, tz: ZoneInfo) -> list[AirTest]:
    """Tests on the clinic-local calendar day of `at`, at or before it, in event order."""
    day = at.astimezone(tz).date()
    same = [t for t in tests if t.at <= at and t.at.astimezone(tz).date() == day]
    return sorted(same, key=lambda t: (t.at, t.id))


def air_removal_today(tests: Sequence[AirTest], at: dt.datetime, tz: ZoneInfo) -> str | None:
    """The latest result that day at or before `at`: 'pass', 'fail' or None."""
    day = air_tests_of_day(tests, at, tz)
    return day[-1].result if day else None


# --- cycle record: the facts, the rules, the table, the runner ---------------------------------


@dataclass(frozen=True)
class CycleFacts:
    sterilizer: str  # its user-facing ID
    sterilizer_type: str
    at: dt.datetime  # the cycle's event time
    tz: ZoneInfo
    is_test: bool  # no packs
    carries_bi: bool
    lock: Lock
    air_tests: tuple[AirTest, ...]  # at least every test of the cycle's local day
    bis: tuple[BiEvidence, ...]  # at least every BI cycle in the window
    air_removal_types: frozenset[str]
    bi_interval_days: int


def sterilizer_locked(f: CycleFacts) -> list[str]:
    if not f.lock.locked or (f.is_test and f.carries_bi):
        return []
    return [
        f"sterilizer {f.sterilizer} is locked ({f.lock.reason}); "
        f"{f.lock.remaining} more negative BI(s) with a valid control are needed. Only test "
        "cycles (no packs) with --bi-lot may run until then"
    ]


def _needs_air_test(f: CycleFacts) -> bool:
    return f.sterilizer_type in f.air_removal_types


def air_removal_missing(f: CycleFacts) -> list[str]:
    """No passing test today at or before the cycle. A day whose latest test failed is
    reported as `air-removal-test-failed` only, not twice."""
    if not _needs_air_test(f):
        return []
    day = air_tests_of_day(f.air_tests, f.at, f.tz)
    if any(t.result == PASS for t in day) or (day and day[-1].result == FAIL):
        return []
    return [
        f"type {f.sterilizer_type} sterilizer {f.sterilizer} has no passing air-removal test "
        "today before this cycle; run a Bowie-Dick/Helix test in the empty chamber and record "
        "it with `sterilog air-removal record`"
    ]


def air_removal_failed(f: CycleFacts) -> list[str]:
    if not _needs_air_test(f):
        return []
    if air_removal_today(f.air_tests, f.at, f.tz) != FAIL:
        return []
    return [
        f"the latest air-removal test of {f.sterilizer} today failed; find the cause, repeat "
        "the test and record a pass before any load"
    ]


def bi_overdue(f: CycleFacts) -> list[str]:
    if f.carries_bi:
        return []
    if any(
        in_bi_window(b.cycle_at, f.at, f.bi_interval_days) and bi_counts_at(b, f.at) for b in f.bis
    ):
        return []
    return [
        f"sterilizer {f.sterilizer} has had no BI (incubating, or negative with a valid "
        f"control) in the last {f.bi_interval_days} day(s); put one in this load with --bi-lot"
    ]


@dataclass(frozen=True)
class RuleSpec:
    """One rule. `check` takes the scope's facts (gate: `GateFacts`, cycle and gap:
    `CycleFacts`, `RoomFacts`, ...; status: see `services/status.py`) and returns what blocks;
    `same_as` names the gate or cycle rule a gap rule applies."""

    code: str
    check: Callable[[Any], list[str]] | None
    blocks_when: str
    why: str
    what_to_do: str
    scope: str = "gate"
    same_as: str | None = None


GATE_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "cartridge-unknown",
        cartridge_known,
        "the scanned unit was never received into stock",
        "Only stock received through sterilog has a known origin, lot and expiry; an "
        "unknown unit may be counterfeit, grey-market or a mis-scan.",
        "Receive the delivery first (`sterilog cartridge receive`), or scan the unit again.",
    ),
    RuleSpec(
        "cartridge-expired",
        cartridge_unexpired,
        "its expiry day has ended (end of the day in the clinic's zone)",
        "Sterility is only claimed by the manufacturer up to the expiry date.",
        "Discard it (`sterilog cartridge discard`) and take another unit.",
    ),
    RuleSpec(
        "cartridge-used",
        cartridge_unused,
        "this serialized unit was already used in a session",
        "Cartridges are single-use; reuse carries blood-borne infection between clients.",
        "Take a new, sealed cartridge.",
    ),
    RuleSpec(
        "lot-exhausted",
        lot_available,
        "unserialized: every unit received of this GTIN + lot is already used",
        "More uses than units received means a unit is being reused.",
        "Take a cartridge from another delivery, or receive the new stock first.",
    ),
    RuleSpec(
        "cartridge-recalled",
        cartridge_not_recalled,
        "its lot is recalled",
        "The manufacturer or the clinic withdrew the lot.",
        "Quarantine the stock; `sterilog trace lot` lists clients already treated.",
    ),
    RuleSpec(
        "cartridge-discarded",
        cartridge_not_discarded,
        "the unit was discarded",
        "A discarded unit (dropped, damaged packaging) is not sterile.",
        "Take another unit.",
    ),
    RuleSpec(
        "device-retired",
        device_active,
        "the device is retired",
        "A retired pen is out of service.",
        "Use another device.",
    ),
    RuleSpec(
        "device-not-reprocessed",
        device_reprocessed,
        "no device clean recorded after its last session ended (or never cleaned)",
        "The pen is cleaned and disinfected after every client (manufacturer IFU).",
        "Clean the pen and record it: `sterilog clean device SERIAL --disinfectant ...`.",
    ),
    RuleSpec(
        "device-in-use",
        device_free,
        "the device is in an open session",
        "One pen treats one client at a time.",
        "End the open session (`sterilog session end`) and reprocess the pen.",
    ),
    RuleSpec(
        "device-depth-exceeded",
        device_depth,
        "--depth-mm is above the device's maximum",
        "The labelled maximum needle depth of the device may not be exceeded.",
        "Choose a depth within the device's label, or another device.",
    ),
    RuleSpec(
        "room-not-cleaned",
        room_cleaned,
        "no between-clients or end-of-day clean after the last session in the room ended "
        "(or never cleaned)",
        "Surfaces contaminated by the last client must be cleaned and disinfected first.",
        "Clean the room: `sterilog clean room ROOM --kind between-clients ...` "
        "(a spill clean does not make a room ready).",
    ),
    RuleSpec(
        "room-occupied",
        room_free,
        "the room has an open session",
        "The room is still in use.",
        "End the open session, then clean the room.",
    ),
    RuleSpec(
        "pack-not-sterile",
        packs_sterile,
        "the pack has no passing load since it was last used (or never)",
        "An instrument pack is sterile only from a passing load until it is opened once.",
        "Reprocess the pack through a sterilizer load.",
    ),
    RuleSpec(
        "pack-load-failed",
        packs_load_passed,
        "the pack's latest load failed",
        "A load that missed its temperature or time, or whose chemical indicator failed, "
        "did not sterilize.",
        "Reprocess the pack in a passing load.",
    ),
    RuleSpec(
        "pack-load-suspect",
        packs_load_not_suspect,
        "the pack's latest load is suspect after a positive BI",
        "A positive spore test means loads since the last negative test may not be sterile.",
        "Reprocess the pack after the sterilizer is requalified.",
    ),
    RuleSpec(
        "pack-expired",
        packs_in_date,
        "the pack's sterile shelf life (rule pack; default none: event-related) has ended",
        "Some jurisdictions set a time limit on stored sterile packs.",
        "Reprocess the pack.",
    ),
    RuleSpec(
        "pack-in-use",
        packs_free,
        "the pack is in an open session",
        "A pack is used for one client.",
        "Use another sterile pack.",
    ),
    RuleSpec(
        "practitioner-not-licensed",
        practitioner_licensed,
        "a recorded licence expiry has passed, or the role may not treat (inspectors); "
        "staff with no licence expiry on file are not checked for it",
        "Only licensed practitioners may perform the treatment.",
        "Renew the licence (a manager re-registers it) or let a licensed colleague treat.",
    ),
    RuleSpec(
        "practitioner-depth-exceeded",
        practitioner_depth,
        "--depth-mm is above the practitioner's maximum",
        "A practitioner's scope may limit needle depth.",
        "Choose a shallower depth, or a practitioner whose scope allows it.",
    ),
)

CYCLE_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "sterilizer-locked",
        sterilizer_locked,
        "a valid positive BI, or a repair, put the sterilizer in requalification and it has not "
        "yet had the rule pack's number of consecutive negative BIs on later cycles",
        "Loads run after a failed spore test may not be sterile (CDC 2008).",
        "Run test cycles (no packs) with `--bi-lot` until enough read negative.",
        scope="cycle",
    ),
    RuleSpec(
        "air-removal-test-missing",
        air_removal_missing,
        "the sterilizer's type needs a daily air-removal test (rule pack) and none passed on the "
        "cycle's clinic-local day at or before it",
        "A pre-vacuum sterilizer that does not remove air does not sterilize (Bowie-Dick/Helix).",
        "Run the test in the empty chamber and record it: `sterilog air-removal record`.",
        scope="cycle",
    ),
    RuleSpec(
        "air-removal-test-failed",
        air_removal_failed,
        "the latest air-removal test of that day, at or before the cycle, failed",
        "A failed test means the chamber does not remove air.",
        "Find the cause, repeat the test, record a pass before any load.",
        scope="cycle",
    ),
    RuleSpec(
        "sterilizer-bi-overdue",
        bi_overdue,
        "the cycle carries no BI and no cycle of the sterilizer in the previous `bi_interval_days` "
        "(rule pack; elapsed time, half-open) carries a BI that was, at the cycle's time, still "
        "incubating or read negative with a valid control",
        "Biological monitoring at least weekly is the only direct proof of sterilization.",
        "Put a BI in this load with `--bi-lot`.",
        scope="cycle",
    ),
)

# The monthly report's gaps (SPEC §8). Each `same_as` gap runs the named rule's own function
# over the facts as of the record's own time, read from the database as it is now (voids
# applied): a record the gate or `cycle record` accepted is a gap only if a later correction
# (a void, a back-dated record) changed what was true at its time, or the rule pack changed.
GAP_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "gap-bi-overdue",
        bi_overdue,
        "a cycle of the month (not voided) that `sterilizer-bi-overdue` blocks when judged as of "
        "its own time: it carries no BI and no BI within the rule pack's interval before it "
        "counts. There are no calendar weeks: a week is judged by the same rolling window as "
        "the gate, so a clinic that was never blocked never has a spore-testing gap",
        "The report must show every load that ran without spore-test cover.",
        "Put a BI in the next load; assess the uncovered loads' packs.",
        scope="gap",
        same_as="sterilizer-bi-overdue",
    ),
    RuleSpec(
        "gap-air-removal",
        air_removal_missing,
        "a cycle of the month that `air-removal-test-missing` or `air-removal-test-failed` "
        "blocks when judged as of its own time (voided tests do not count); one line per "
        "sterilizer and day",
        "Every load of a pre-vacuum sterilizer needs that day's passing air-removal test first.",
        "Record the day's test before the first load.",
        scope="gap",
        same_as="air-removal-test-missing",
    ),
    RuleSpec(
        "gap-ci-missing",
        None,
        "a cycle of the month (not voided) has no chemical-indicator result",
        "Chemical monitoring of every load is required (CDC 2003).",
        "Record the indicator with every cycle.",
        scope="gap",
    ),
    RuleSpec(
        "gap-room-not-cleaned",
        room_cleaned,
        "a session of the month that `room-not-cleaned` blocks when judged as of its start: "
        "no between-clients or end-of-day clean (not voided) after the previous session in "
        "that room ended",
        "Surfaces must be cleaned and disinfected between clients.",
        "Clean the room after every client; trace the session to see who used it in between.",
        scope="gap",
        same_as="room-not-cleaned",
    ),
    RuleSpec(
        "gap-device-not-reprocessed",
        device_reprocessed,
        "a session of the month that `device-not-reprocessed` blocks when judged as of its "
        "start: no device clean (not voided) after the device's previous session ended",
        "The pen is cleaned and disinfected after every client.",
        "Reprocess the pen after every client.",
        scope="gap",
        same_as="device-not-reprocessed",
    ),
    RuleSpec(
        "gap-session-open",
        None,
        "a session started in the month is still open",
        "An open session means the room, pen and packs were never released for reprocessing.",
        "End it with `sterilog session end`.",
        scope="gap",
    ),
)

# `sterilog status` items: each says now what the gate or `cycle record` will block next.
STATUS_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "status-sterilizer-locked",
        sterilizer_locked,
        "`sterilizer-locked` would block a load now",
        "See `sterilizer-locked`.",
        "Run test cycles with a BI.",
        scope="status",
        same_as="sterilizer-locked",
    ),
    RuleSpec(
        "status-bi-overdue",
        bi_overdue,
        "`sterilizer-bi-overdue` would block a cycle without a BI now (state `overdue`); within "
        "`bi_due_warning_hours` of that: state `due`",
        "See `sterilizer-bi-overdue`.",
        "Put a BI in the next load.",
        scope="status",
        same_as="sterilizer-bi-overdue",
    ),
    RuleSpec(
        "status-air-removal",
        air_removal_missing,
        "`air-removal-test-missing` (state `due`) or `air-removal-test-failed` (state "
        "`blocked`) would block a load now",
        "See those rules.",
        "Run and record the day's air-removal test.",
        scope="status",
        same_as="air-removal-test-missing",
    ),
    RuleSpec(
        "status-room-not-cleaned",
        room_cleaned,
        "`room-not-cleaned` would block a session in the room now",
        "See `room-not-cleaned`.",
        "Clean the room.",
        scope="status",
        same_as="room-not-cleaned",
    ),
    RuleSpec(
        "status-device-not-reprocessed",
        device_reprocessed,
        "`device-not-reprocessed` would block a session with the (not retired) device now",
        "See `device-not-reprocessed`.",
        "Clean the device.",
        scope="status",
        same_as="device-not-reprocessed",
    ),
    RuleSpec(
        "status-session-open",
        None,
        "a session is open (state `overdue` after `open_session_warning_hours`)",
        "The room and pen cannot be reprocessed until it ends.",
        "End it with `sterilog session end`.",
        scope="status",
    ),
    RuleSpec(
        "status-stock",
        None,
        "units still on the shelf belong to a recalled lot (`blocked`), an expired lot "
        "(`overdue`) or one expiring within `cartridge_expiry_warning_days` (`due`)",
        "The gate will refuse them (`cartridge-recalled`, `cartridge-expired`).",
        "Quarantine, return or discard them.",
        scope="status",
    ),
    RuleSpec(
        "status-licence",
        None,
        "an active staff member's licence has expired (`blocked`, as "
        "`practitioner-not-licensed`) or expires within 30 days (`due`)",
        "See `practitioner-not-licensed`.",
        "Renew the licence.",
        scope="status",
    ),
)

# Warnings printed by `check` / `session start` (they never block).
WARNING_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        "cartridge-expiring",
        None,
        "the cartridge's last usable day is within `cartridge_expiry_warning_days`",
        "Use older stock first.",
        "Nothing; use it today or plan a replacement.",
        scope="warning",
    ),
    RuleSpec(
        "bi-due",
        None,
        "a sterilizer's next BI falls due within `bi_due_warning_hours` (the same due time as "
        "`status-bi-overdue`)",
        "The next load without a BI would then be blocked.",
        "Put a BI in the next load.",
        scope="warning",
    ),
    RuleSpec(
        "session-open-long",
        None,
        "a session has been open longer than `open_session_warning_hours`",
        "It was probably not ended.",
        "End it with `sterilog session end`.",
        scope="warning",
    ),
)

RULES: tuple[RuleSpec, ...] = (
    *GATE_RULES,
    *CYCLE_RULES,
    *GAP_RULES,
    *STATUS_RULES,
    *WARNING_RULES,
)
SCOPES = ("gate", "cycle", "gap", "status", "warning")
BY_CODE: dict[str, RuleSpec] = {r.code: r for r in RULES}
CODES = tuple(r.code for r in GATE_RULES)


def evaluate(facts: GateFacts) -> list[Reason]:
    """Run every gate rule; return every reason that blocks (empty list: go)."""
    return [Reason(spec.code, msg) for spec in GATE_RULES for msg in _run(spec, facts)]


def check_cycle(f: CycleFacts) -> list[Reason]:
    """Every reason the cycle may not be recorded (empty: allowed)."""
    return [Reason(spec.code, msg) for spec in CYCLE_RULES for msg in _run(spec, f)]


def _run(spec: RuleSpec, facts: Any) -> list[str]:
    assert spec.check is not None
    return spec.check(facts)


@dataclass(frozen=True)
class GateWarning:
    code: str
    message: str


@dataclass(frozen=True)
class WarningFacts:
    now: dt.datetime
    cartridge_usable_until: dt.datetime | None
    cartridge_expiry: dt.date | None
    expiry_warning_days: int
    bi_due: tuple[tuple[str, dt.datetime], ...] = ()  # (sterilizer, when its BI is overdue)
    bi_warning_hours: int = 24
    open_sessions: tuple[tuple[int, str, dt.datetime], ...] = ()  # (id, room, started)
    open_warning_hours: int = 4
    notes: tuple[str, ...] = field(default_factory=tuple)


def warnings(w: WarningFacts) -> list[GateWarning]:
    out: list[GateWarning] = []
    until = w.cartridge_usable_until
    if until is not None and w.now < until <= w.now + dt.timedelta(days=w.expiry_warning_days):
        out.append(
            GateWarning(
                "cartridge-expiring",
                f"the cartridge expires soon (last usable day {w.cartridge_expiry})",
            )
        )
    for name, due in w.bi_due:
        if w.now <= due <= w.now + dt.timedelta(hours=w.bi_warning_hours):
            out.append(
                GateWarning(
                    "bi-due", f"sterilizer {name}'s spore test (BI) is due by {due.isoformat()}"
                )
            )
    for sid, room, started in w.open_sessions:
        if w.now - started > dt.timedelta(hours=w.open_warning_hours):
            out.append(
                GateWarning(
                    "session-open-long",
                    f"session {sid} in room {room} has been open since "
                    f"{started.isoformat()}: end it",
                )
            )
    return out
