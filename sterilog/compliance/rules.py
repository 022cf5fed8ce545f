"""The gate's rules (SPEC §6.5) and the rule row type: pure functions over frozen facts. No
database, no clock, no I/O.

Every rule of sterilog is a `RuleSpec` row with a stable code and a scope; the one table of all
of them is `compliance/table.py` (`RULES`). The rows live next to their functions:

- `gate`: `check` / `session start` (SPEC §6.5), over `GateFacts` (here: `GATE_RULES`);
- `cycle`: `cycle record` (SPEC §6.3), over `CycleFacts` (`compliance/cycle_rules.py`);
- `gap`: the monthly report's gaps (SPEC §8). A gap rule names the gate or cycle rule it
  applies (`same_as`) and runs that very function over the facts as of the record's time;
- `status`: the items `sterilog status` lists (gap and status rows: `compliance/table.py`);
- `warning`: what `check` warns about (here: `WARNING_RULES`).

The split is for speed only: `sterilog check` imports this module, not the cycle rules.
Each check returns the messages of what blocks (empty: passes). `evaluate` runs the gate rules,
`cycle_rules.check_cycle` the cycle rules. `docs/gate.md` is generated from `table.RULES`.
To add a rule: write its check next to its scope's others, add one `RuleSpec` row, regenerate
docs/gate.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sterilog.compliance.vocab import LOAD_CI_PENDING, LOAD_FAILED, LOAD_PASSED, NO_CI
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
    load_ci_missing: bool = False  # an imported load whose chemical indicator is not read yet
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


def packs_load_ci_read(f: GateFacts) -> list[str]:
    """Issue 15: a device cannot read the chemical indicator; a person must (`cycle ci`)."""
    return [
        f"pack {p.code}'s latest load {p.load_id} was imported from the sterilizer's record and "
        "its chemical indicator has not been read"
        for p in f.packs
        if p.load_id is not None
        and p.load_passed
        and p.load_ci_missing
        and not _pack_used_since_load(p)
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


def bi_due_at(
    latest_qualifying_cycle_at: dt.datetime | None, interval_days: int
) -> dt.datetime | None:
    """The first instant at which a cycle without a BI is blocked (None: already, no BI yet)."""
    if latest_qualifying_cycle_at is None:
        return None
    return latest_qualifying_cycle_at + dt.timedelta(days=interval_days)


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
        "Receive the delivery first (`sterilog cartridge receive SCAN ...`), or scan the unit "
        "again.",
    ),
    RuleSpec(
        "cartridge-expired",
        cartridge_unexpired,
        "its expiry day has ended (end of the day in the clinic's zone)",
        "Sterility is only claimed by the manufacturer up to the expiry date.",
        "Discard it (`sterilog cartridge discard SCAN --reason expired`) and take another unit.",
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
        "Quarantine the stock; `sterilog trace lot --gtin GTIN --lot LOT` lists clients already "
        "treated.",
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
        "Use another device (retired by mistake: a manager runs `sterilog device reinstate "
        "SERIAL`).",
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
        "End the open session (`sterilog session end SESSION_ID`) and reprocess the pen.",
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
        "pack-ci-missing",
        packs_load_ci_read,
        "the pack's latest load was imported without a chemical indicator reading",
        "The chemical indicator is a person's reading of the pack's indicator; the device's "
        "record cannot supply it.",
        "Read the indicator and record it: `sterilog cycle ci LOAD_ID --ci pass|fail`.",
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
        "Renew the licence (a manager runs `sterilog staff update ID --license-expires DATE`; "
        "a deactivated colleague: `sterilog staff reinstate ID`) or let a licensed colleague "
        "treat.",
    ),
    RuleSpec(
        "practitioner-depth-exceeded",
        practitioner_depth,
        "--depth-mm is above the practitioner's maximum",
        "A practitioner's scope may limit needle depth.",
        "Choose a shallower depth, or a practitioner whose scope allows it.",
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
        "End it with `sterilog session end SESSION_ID`.",
        scope="warning",
    ),
)
CODES = tuple(r.code for r in GATE_RULES)


def evaluate(facts: GateFacts) -> list[Reason]:
    """Run every gate rule; return every reason that blocks (empty list: go)."""
    return [Reason(spec.code, msg) for spec in GATE_RULES for msg in run(spec, facts)]


def run(spec: RuleSpec, facts: Any) -> list[str]:
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
    tz: ZoneInfo | None = None  # times in warnings: the clinic's zone, with offset


def _when(instant: dt.datetime, tz: ZoneInfo | None) -> str:
    from sterilog.clock import fmt_zoned

    return instant.isoformat() if tz is None else fmt_zoned(instant, tz)


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
                    "bi-due", f"sterilizer {name}'s spore test (BI) is due by {_when(due, w.tz)}"
                )
            )
    for sid, room, started in w.open_sessions:
        if w.now - started > dt.timedelta(hours=w.open_warning_hours):
            out.append(
                GateWarning(
                    "session-open-long",
                    f"session {sid} in room {room} has been open since "
                    f"{_when(started, w.tz)}: end it",
                )
            )
    return out


# --- a load's status (issue 15: an imported load's CI is read later) ---


def load_status(passed: bool, ci: str | None, ci_read_passed: bool | None) -> str:
    """A load's status, the one answer every command gives: its own verdict, and for an imported
    load whose CI was not read with the cycle (`ci == NO_CI`) its later CI reading."""
    if not passed:
        return LOAD_FAILED
    if ci == NO_CI:
        if ci_read_passed is None:
            return LOAD_CI_PENDING
        return LOAD_PASSED if ci_read_passed else LOAD_FAILED
    return LOAD_PASSED
