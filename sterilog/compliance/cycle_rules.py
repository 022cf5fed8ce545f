"""The sterilizer's rules (SPEC §6.3): `cycle record`'s rules and the facts they judge, pure.
No database, no clock, no I/O. The rows are `CYCLE_RULES`; the one table of every rule is
`compliance/table.py`.

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
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sterilog.compliance.rules import RuleSpec, run
from sterilog.compliance.vocab import FAIL, NEGATIVE, PASS
from sterilog.errors import Reason

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
    mailed: bool = False  # sent to a monitoring lab (`bi mail`)
    invalid: bool = False  # the lab (or the clinic) declared it invalid (`bi invalid`)


def bi_counts_at(b: BiEvidence, at: dt.datetime, lab_result_days: int = 10) -> bool:
    """Still incubating at `at` (no valid read yet) or read negative with a valid control.

    An invalid BI never counts (the week it was to cover is uncovered). A mailed BI without a
    result counts as incubating only until `lab_result_days` after it was placed."""
    if b.invalid:
        return False
    if b.result is None or b.read_at is None or b.read_at > at:
        return not b.mailed or at < b.cycle_at + dt.timedelta(days=lab_result_days)
    return b.result == NEGATIVE


def bi_window_start(at: dt.datetime, interval_days: int) -> dt.datetime:
    """The open lower bound of the window `(at - interval, at]`."""
    return at - dt.timedelta(days=interval_days)


def in_bi_window(cycle_at: dt.datetime, at: dt.datetime, interval_days: int) -> bool:
    return bi_window_start(at, interval_days) < cycle_at <= at


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
    lab_result_days: int = 10
    declared_week: str | None = None  # the cycle's ISO week, when declared a non-test week


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
        in_bi_window(b.cycle_at, f.at, f.bi_interval_days)
        and bi_counts_at(b, f.at, f.lab_result_days)
        for b in f.bis
    ):
        return []
    return [
        f"sterilizer {f.sterilizer} has had no BI (incubating, or negative with a valid "
        f"control) in the last {f.bi_interval_days} day(s); put one in this load with --bi-lot"
    ]


def week_declared(f: CycleFacts) -> list[str]:
    if f.declared_week is None:
        return []
    return [
        f"week {f.declared_week} of sterilizer {f.sterilizer} was declared a week without a "
        "spore test (`bi skip`), which says no load ran; void the declaration first "
        "(`sterilog void bi-skip ID --reason ...`)"
    ]


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
        "Run the test in the empty chamber and record it: "
        "`sterilog air-removal record --sterilizer ID --result pass|fail`.",
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
    RuleSpec(
        "bi-week-declared",
        week_declared,
        "the cycle falls in a clinic-local ISO week declared for its sterilizer as a week without "
        "a spore test (`bi skip`, not voided)",
        "A declared week says the sterilizer ran no load; a load in it makes the record false.",
        "Void the declaration (`sterilog void bi-skip ID --reason TEXT`; the ID is the one the "
        "declaration printed), then record the load and its BI.",
        scope="cycle",
    ),
)


def check_cycle(f: CycleFacts) -> list[Reason]:
    """Every reason the cycle may not be recorded (empty: allowed)."""
    return [Reason(spec.code, msg) for spec in CYCLE_RULES for msg in run(spec, f)]


# --- imported cycles (issue 15): the device's verdict and the computed one ---------------------
# Kept in one block so it can move into the compliance core as it is.


def ci_failures(ci: str, ci_type: int | None, min_ci_type: int | None) -> list[str]:
    """The chemical-indicator part of `cycle_failures` (a person's reading)."""
    out: list[str] = []
    if ci != "pass":
        out.append("the chemical indicator failed")
    if min_ci_type is not None:
        if ci_type is None:
            out.append(
                f"no chemical indicator type given; the rule pack requires type {min_ci_type}+"
            )
        elif ci_type < min_ci_type:
            out.append(
                f"chemical indicator type {ci_type} is below the required type {min_ci_type}"
            )
    return out


def _mmss(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def imported_cycle_failures(
    *,
    device_ok: bool,
    device_reason: str | None,
    hold_s: float,
    program: ProgramSpec,
    ci: str | None,
    ci_type: int | None,
    min_ci_type: int | None,
) -> list[str]:
    """Why an imported cycle failed (empty: passed). The device's own verdict counts, and so
    does the hold computed from its trace: a short hold fails even when the device said OK.
    `ci` None: no CI read yet (the load waits for `cycle ci`; that is not a failure)."""
    out: list[str] = []
    if not device_ok:
        out.append(f"the device flagged the cycle: {device_reason or 'failed'}")
    if hold_s < program.hold_min * 60:
        out.append(
            f"hold at or above {program.temp_c:g} °C computed from the trace is "
            f"{_mmss(hold_s)} (m:ss), below the program's {program.hold_min:g} min"
        )
    if ci is not None:
        out.extend(ci_failures(ci, ci_type, min_ci_type))
    return out
