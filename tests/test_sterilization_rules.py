"""The sterilization rules as pure functions, pinned at their boundaries."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from sterilog.compliance import cycle_rules as r
from sterilog.compliance import rules as gate_rules

LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC
SEC = dt.timedelta(seconds=1)


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


def facts(**kw: object) -> r.CycleFacts:
    base = r.CycleFacts(
        sterilizer="AC1",
        sterilizer_type="B",
        at=t("2026-11-24T10:00:00Z"),
        tz=LONDON,
        is_test=False,
        carries_bi=False,
        lock=r.UNLOCKED,
        air_tests=(r.AirTest(1, t("2026-11-24T07:00:00Z"), "pass"),),
        bis=(r.BiEvidence(1, t("2026-11-20T10:00:00Z"), None, None),),
        air_removal_types=frozenset({"B", "S"}),
        bi_interval_days=7,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def codes(f: r.CycleFacts) -> list[str]:
    return [reason.code for reason in r.check_cycle(f)]


# --- mechanical and chemical monitoring --------------------------------------------------------

PROGRAM = r.ProgramSpec("134-3.5", 134.0, 3.5)


@pytest.mark.parametrize(
    ("temp", "hold", "ci", "ci_type", "min_type", "passed"),
    [
        (134.0, 3.5, "pass", None, None, True),  # exactly the program: passes
        (133.9, 3.5, "pass", None, None, False),
        (134.0, 3.49, "pass", None, None, False),
        (137.0, 20.0, "fail", 5, None, False),  # a failed CI fails whatever the readings
        (134.0, 3.5, "pass", None, 4, False),  # the pack demands a type, none given
        (134.0, 3.5, "pass", 3, 4, False),
        (134.0, 3.5, "pass", 4, 4, True),
        (134.0, 3.5, "pass", 6, 5, True),
    ],
)
def test_a_cycle_passes_only_when_readings_meet_the_program_and_the_ci_passed(
    temp: float, hold: float, ci: str, ci_type: int | None, min_type: int | None, passed: bool
) -> None:
    failures = r.cycle_failures(r.Readings(temp, hold, ci, ci_type), PROGRAM, min_type)
    assert (not failures) is passed


def test_cycle_failures_say_every_reason() -> None:
    failures = r.cycle_failures(r.Readings(121.0, 2.0, "fail", 3), PROGRAM, 5)
    assert failures == [
        "temperature 121 °C is below the program's 134 °C",
        "holding time 2 min is below the program's 3.5 min",
        "the chemical indicator failed",
        "chemical indicator type 3 is below the required type 5",
    ]


# --- the weekly BI: the window is (at - 7 days, at] in elapsed time ------------------------------

BI_AT = t("2026-11-17T10:00:00Z")
WEEK = dt.timedelta(days=7)


@pytest.mark.parametrize(
    ("cycle_at", "overdue"),
    [
        (BI_AT, False),  # the same instant as the BI cycle
        (BI_AT + WEEK - SEC, False),  # the last second of the week
        (BI_AT + WEEK, True),  # exactly 7 days later: overdue
        (BI_AT + WEEK + SEC, True),
        (BI_AT - SEC, True),  # a BI run later does not cover an earlier cycle
    ],
)
def test_the_weekly_bi_covers_cycles_for_exactly_seven_days(
    cycle_at: dt.datetime, overdue: bool
) -> None:
    f = facts(at=cycle_at, bis=(r.BiEvidence(1, BI_AT, None, None),), air_tests=())
    assert (r.bi_overdue(f) != []) is overdue


def test_the_week_is_elapsed_time_across_a_daylight_saving_change() -> None:
    # Clocks go back in London on 2026-10-25: the wall clock shows 09:00 then 08:00 GMT.
    bi = t("2026-10-20T10:00:00+01:00")
    ok = facts(at=t("2026-10-27T08:59:59+00:00"), bis=(r.BiEvidence(1, bi, None, None),))
    late = facts(at=t("2026-10-27T09:00:00+00:00"), bis=(r.BiEvidence(1, bi, None, None),))
    assert r.bi_overdue(ok) == []
    assert r.bi_overdue(late) != []
    assert gate_rules.bi_due_at(bi, 7) == t("2026-10-27T09:00:00Z")


AT = t("2026-11-24T10:00:00Z")


@pytest.mark.parametrize(
    ("result", "read_at", "counts"),
    [
        (None, None, True),  # still incubating
        ("negative", AT - SEC, True),
        ("negative", AT + dt.timedelta(hours=1), True),
        ("positive", AT + SEC, True),  # read after the cycle: it was incubating then
        ("positive", AT, False),  # read positive at the cycle's time: no evidence
        ("positive", AT - dt.timedelta(days=1), False),
    ],
)
def test_a_bi_counts_while_incubating_or_when_read_negative(
    result: str | None, read_at: dt.datetime | None, counts: bool
) -> None:
    bi = r.BiEvidence(1, AT - dt.timedelta(days=2), result, read_at)
    assert r.bi_counts_at(bi, AT) is counts
    assert (r.bi_overdue(facts(at=AT, bis=(bi,))) == []) is counts


def test_a_new_sterilizers_first_cycle_must_carry_a_bi() -> None:
    assert codes(facts(bis=())) == ["sterilizer-bi-overdue"]
    assert codes(facts(bis=(), carries_bi=True)) == []


def test_bi_due_at_is_none_without_any_bi() -> None:
    assert gate_rules.bi_due_at(None, 7) is None


# --- air-removal: the clinic's local day, at or before the cycle ---------------------------------


@pytest.mark.parametrize(
    ("test_at", "cycle_at", "counts"),
    [
        # Winter (GMT = UTC): local midnight is 00:00Z.
        ("2026-11-24T00:00:00Z", "2026-11-24T08:00:00Z", True),
        ("2026-11-23T23:59:59Z", "2026-11-24T08:00:00Z", False),
        ("2026-11-24T08:00:00Z", "2026-11-24T08:00:00Z", True),  # at the cycle's second
        ("2026-11-24T08:00:01Z", "2026-11-24T08:00:00Z", False),  # after the cycle
        # Summer (BST): local midnight of 1 July is 23:00Z on 30 June.
        ("2026-06-30T23:00:00Z", "2026-07-01T08:00:00Z", True),
        ("2026-06-30T22:59:59Z", "2026-07-01T08:00:00Z", False),
        # 25 October 2026: clocks go back, the local day is 25 hours long.
        ("2026-10-24T23:00:00Z", "2026-10-25T23:59:59Z", True),
        ("2026-10-24T22:59:59Z", "2026-10-25T00:30:00Z", False),
        ("2026-10-25T23:59:59Z", "2026-10-26T00:00:00Z", False),  # next day begins at 00:00Z
        # 29 March 2026: clocks go forward, the local day is 23 hours long.
        ("2026-03-29T00:00:00Z", "2026-03-29T22:59:59Z", True),
        ("2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z", False),  # 00:00 BST on 30 March
    ],
)
def test_the_air_removal_test_counts_on_the_clinics_local_day_only(
    test_at: str, cycle_at: str, counts: bool
) -> None:
    f = facts(at=t(cycle_at), air_tests=(r.AirTest(1, t(test_at), "pass"),))
    assert (r.air_removal_missing(f) == []) is counts


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ((), ["air-removal-test-missing"]),
        (("pass",), []),
        (("fail",), ["air-removal-test-failed"]),  # reported once, not also as missing
        (("fail", "pass"), []),
        (("pass", "fail"), ["air-removal-test-failed"]),
        (("pass", "fail", "pass"), []),
    ],
)
def test_the_latest_air_removal_test_of_the_day_decides(
    results: tuple[str, ...], expected: list[str]
) -> None:
    tests = tuple(
        r.AirTest(i, t("2026-11-24T07:00:00Z") + i * dt.timedelta(minutes=5), res)
        for i, res in enumerate(results)
    )
    assert codes(facts(air_tests=tests)) == expected


def test_air_removal_tests_at_the_same_second_are_ordered_by_record_order() -> None:
    same = t("2026-11-24T07:00:00Z")
    tests = (r.AirTest(2, same, "fail"), r.AirTest(1, same, "pass"))
    assert codes(facts(air_tests=tests)) == ["air-removal-test-failed"]
    tests = (r.AirTest(1, same, "fail"), r.AirTest(2, same, "pass"))
    assert codes(facts(air_tests=tests)) == []


@pytest.mark.parametrize(("kind", "needed"), [("B", True), ("S", True), ("N", False)])
def test_only_the_rule_packs_sterilizer_types_need_an_air_removal_test(
    kind: str, needed: bool
) -> None:
    f = facts(sterilizer_type=kind, air_tests=())
    assert ("air-removal-test-missing" in codes(f)) is needed


# --- the lock ----------------------------------------------------------------------------------

P_AT = t("2026-11-24T12:00:00Z")
H = dt.timedelta(hours=1)


def lock(
    positives: tuple[dt.datetime, ...] = (),
    negatives: tuple[tuple[dt.datetime, dt.datetime], ...] = (),
    repair_at: dt.datetime | None = None,
) -> r.Lock:
    return r.lock_state(
        r.LockFacts(
            repair_at=repair_at,
            repair_id=1 if repair_at else None,
            positives=tuple(r.PositiveRead(i + 1, at) for i, at in enumerate(positives)),
            negatives=tuple(
                r.NegativeRead(i + 10, cycle_at, read_at)
                for i, (cycle_at, read_at) in enumerate(negatives)
            ),
            requalify_bis=1,
            requalify_bis_after_repair=3,
        )
    )


@pytest.mark.parametrize(
    ("positives", "negatives", "repair_at", "locked", "remaining"),
    [
        ((), (), None, False, 0),
        ((P_AT,), (), None, True, 1),
        # one negative BI on a cycle run after the positive read releases it
        ((P_AT,), ((P_AT + H, P_AT + 2 * H),), None, False, 0),
        # a cycle run at the very second of the read, or while the BI incubated, is suspect:
        # it cannot requalify the sterilizer
        ((P_AT,), ((P_AT, P_AT + 2 * H),), None, True, 1),
        ((P_AT,), ((P_AT - H, P_AT + 2 * H),), None, True, 1),
        # a repair needs three, on cycles after the repair
        ((P_AT,), ((P_AT + H, P_AT + 2 * H),), P_AT + 3 * H, True, 3),
        (
            (P_AT,),
            tuple((P_AT + k * H, P_AT + (k + 1) * H) for k in (4, 6, 8)),
            P_AT + 3 * H,
            False,
            0,
        ),
        # a repair alone (no positive BI) also needs requalification
        ((), (), P_AT, True, 3),
        ((), ((P_AT + H, P_AT + 2 * H), (P_AT + 3 * H, P_AT + 4 * H)), P_AT, True, 1),
        # a positive during an unfinished post-repair requalification restarts the full count
        (
            (P_AT + 5 * H,),
            ((P_AT + H, P_AT + 2 * H), (P_AT + 6 * H, P_AT + 7 * H)),
            P_AT,
            True,
            2,
        ),
        # ... but after a finished one, one negative retest is enough again
        (
            (P_AT + 10 * H,),
            (
                *((P_AT + k * H, P_AT + (k + 1) * H) for k in (1, 3, 5)),
                (P_AT + 11 * H, P_AT + 12 * H),
            ),
            P_AT,
            False,
            0,
        ),
        # a second positive restarts the count
        ((P_AT, P_AT + 5 * H), ((P_AT + H, P_AT + 2 * H),), None, True, 1),
    ],
)
def test_the_lock_and_its_requalification_count(
    positives: tuple[dt.datetime, ...],
    negatives: tuple[tuple[dt.datetime, dt.datetime], ...],
    repair_at: dt.datetime | None,
    locked: bool,
    remaining: int,
) -> None:
    state = lock(positives, negatives, repair_at)
    assert (state.locked, state.remaining) == (locked, remaining)


def test_while_locked_only_test_cycles_with_a_bi_may_run() -> None:
    locked = lock((P_AT,))
    assert "sterilizer-locked" in codes(facts(lock=locked))
    assert "sterilizer-locked" in codes(facts(lock=locked, is_test=True))
    assert "sterilizer-locked" in codes(facts(lock=locked, carries_bi=True))
    assert codes(facts(lock=locked, is_test=True, carries_bi=True)) == []


def test_every_failing_rule_is_reported_in_table_order() -> None:
    f = facts(lock=lock((P_AT,)), air_tests=(), bis=())
    assert codes(f) == ["sterilizer-locked", "air-removal-test-missing", "sterilizer-bi-overdue"]
    assert [spec.code for spec in r.CYCLE_RULES] == [
        "sterilizer-locked",
        "air-removal-test-missing",
        "air-removal-test-failed",
        "sterilizer-bi-overdue",
    ]
