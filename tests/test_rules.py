"""The gate's rules as pure functions, each at its boundary."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from sterilog.compliance import rules
from sterilog.compliance.rules import (
    CartridgeFacts,
    DeviceFacts,
    GateFacts,
    Moment,
    PackFacts,
    PractitionerFacts,
    RoomFacts,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
EARLIER = Moment(NOW - dt.timedelta(hours=2), NOW - dt.timedelta(hours=2))
LATER = Moment(NOW - dt.timedelta(hours=1), NOW - dt.timedelta(hours=1))


def good() -> GateFacts:
    """Facts under which every rule passes."""
    return GateFacts(
        now=NOW,
        today=NOW.date(),
        cartridge=CartridgeFacts(
            raw="x", gtin="09506000134352", lot="A1", serial="0001", lot_known=True,
            unit_known=True, expiry=dt.date(2027, 12, 31),
            usable_until=dt.datetime(2028, 1, 1, tzinfo=UTC), available_unit_id=7,
        ),
        device=DeviceFacts(code="SN-1", max_depth_mm=2.5, last_end=EARLIER, ever_used=True,
                           last_clean=LATER),
        room=RoomFacts(code="R1", last_end=EARLIER, ever_used=True, last_clean=LATER),
        practitioner=PractitionerFacts(code="ann", role="practitioner",
                                       license_expires=dt.date(2027, 1, 1), max_depth_mm=2.0),
        packs=(PackFacts(code="P1", load_id=3, load_at=NOW - dt.timedelta(days=1),
                         load_passed=True, last_used_at=NOW - dt.timedelta(days=2)),),
        depth_mm=1.5,
    )


def with_(facts: GateFacts, **changes: Any) -> GateFacts:
    """Replace nested fields: with_(f, cartridge__recalled=True)."""
    groups: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in changes.items():
        if "__" in key:
            part, field = key.split("__", 1)
            groups.setdefault(part, {})[field] = value
        else:
            top[key] = value
    for part, fields in groups.items():
        current = getattr(facts, part)
        if part == "packs":
            top[part] = (dataclasses.replace(current[0], **fields),)
        else:
            top[part] = dataclasses.replace(current, **fields)
    return dataclasses.replace(facts, **top)


def codes(facts: GateFacts) -> list[str]:
    return [r.code for r in rules.evaluate(facts)]


def test_everything_in_order_is_go() -> None:
    assert codes(good()) == []


def test_every_spec_code_is_in_the_rule_table_exactly_once() -> None:
    spec = [
        "cartridge-unknown", "cartridge-expired", "cartridge-used", "lot-exhausted",
        "cartridge-recalled", "cartridge-discarded", "device-retired", "device-not-reprocessed",
        "device-in-use", "device-depth-exceeded", "room-not-cleaned", "room-occupied",
        "pack-not-sterile", "pack-load-failed", "pack-ci-missing", "pack-load-suspect",
        "pack-expired",
        "pack-in-use", "practitioner-not-licensed", "practitioner-depth-exceeded",
    ]
    assert list(rules.CODES) == spec


EXPIRY_END = dt.datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "now, blocked",
    [
        (EXPIRY_END - dt.timedelta(seconds=1), False),  # the last second of the expiry day
        (EXPIRY_END, True),  # the first instant after it
        (EXPIRY_END + dt.timedelta(days=1), True),
    ],
)
def test_a_cartridge_is_usable_until_the_end_of_its_expiry_day(
    now: dt.datetime, blocked: bool
) -> None:
    f = with_(good(), now=now, cartridge__usable_until=EXPIRY_END)
    assert ("cartridge-expired" in codes(f)) is blocked


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"cartridge__lot_known": False, "cartridge__unit_known": False}, ["cartridge-unknown"]),
        ({"cartridge__unit_known": False}, ["cartridge-unknown"]),
        ({"cartridge__used_by_session": 12, "cartridge__available_unit_id": None},
         ["cartridge-used"]),
        ({"cartridge__recalled": True}, ["cartridge-recalled"]),
        ({"cartridge__discarded": True, "cartridge__available_unit_id": None},
         ["cartridge-discarded"]),
        ({"cartridge__serial": None, "cartridge__available_unit_id": None,
          "cartridge__lot_units": 10}, ["lot-exhausted"]),
        ({"cartridge__serial": None}, []),
        ({"device__retired": True}, ["device-retired"]),
        ({"device__last_clean": None}, ["device-not-reprocessed"]),
        ({"device__last_clean": Moment(EARLIER.at - dt.timedelta(seconds=1), NOW)},
         ["device-not-reprocessed"]),
        ({"device__open_session": 5}, ["device-in-use"]),
        ({"depth_mm": 2.6, "practitioner__max_depth_mm": None}, ["device-depth-exceeded"]),
        ({"depth_mm": 2.5, "practitioner__max_depth_mm": None}, []),
        ({"room__last_clean": None}, ["room-not-cleaned"]),
        ({"room__last_clean": Moment(EARLIER.at, EARLIER.at - dt.timedelta(seconds=1))},
         ["room-not-cleaned"]),
        ({"room__open_session": 9}, ["room-occupied"]),
        ({"packs__load_id": None, "packs__load_at": None}, ["pack-not-sterile"]),
        ({"packs__last_used_at": NOW - dt.timedelta(hours=1)}, ["pack-not-sterile"]),
        ({"packs__load_passed": False}, ["pack-load-failed"]),
        ({"packs__load_suspect": True}, ["pack-load-suspect"]),
        ({"packs__load_ci_missing": True}, ["pack-ci-missing"]),
        ({"packs__load_ci_missing": True, "packs__load_passed": False}, ["pack-load-failed"]),
        ({"packs__load_ci_missing": True, "packs__last_used_at": NOW - dt.timedelta(hours=1)},
         ["pack-not-sterile"]),
        ({"packs__open_session": 4, "packs__last_used_at": NOW}, ["pack-in-use"]),
        ({"practitioner__role": "inspector"}, ["practitioner-not-licensed"]),
        ({"practitioner__active": False}, ["practitioner-not-licensed"]),
        ({"practitioner__license_expires": None}, []),
        ({"depth_mm": 2.1}, ["practitioner-depth-exceeded"]),
        ({"depth_mm": 2.0}, []),
    ],
)
def test_each_rule_blocks_exactly_when_its_condition_holds(
    changes: dict[str, Any], expected: list[str]
) -> None:
    assert codes(with_(good(), **changes)) == expected


@pytest.mark.parametrize(
    "today, blocked",
    [(dt.date(2027, 1, 1), False), (dt.date(2027, 1, 2), True)],
)
def test_a_licence_is_valid_through_its_expiry_day(today: dt.date, blocked: bool) -> None:
    f = with_(good(), today=today, now=NOW, cartridge__usable_until=None)
    assert ("practitioner-not-licensed" in codes(f)) is blocked


def test_a_clean_at_the_same_second_recorded_after_the_session_end_counts() -> None:
    end = Moment(NOW - dt.timedelta(minutes=5), NOW - dt.timedelta(minutes=5))
    clean = Moment(end.at, end.recorded_at)  # same event second, same record second
    f = with_(good(), room__last_end=end, room__last_clean=clean)
    assert codes(f) == []
    recorded_before = Moment(end.at, end.recorded_at - dt.timedelta(seconds=1))
    f = with_(good(), room__last_end=end, room__last_clean=recorded_before)
    assert codes(f) == ["room-not-cleaned"]


def test_a_never_used_room_still_needs_a_first_clean() -> None:
    f = with_(good(), room__ever_used=False, room__last_end=None, room__last_clean=None)
    assert codes(f) == ["room-not-cleaned"]
    f = with_(good(), room__ever_used=False, room__last_end=None)
    assert codes(f) == []


@pytest.mark.parametrize(
    "age, blocked",
    [(dt.timedelta(days=365) - dt.timedelta(seconds=1), False), (dt.timedelta(days=365), True)],
)
def test_a_pack_shelf_life_ends_exactly_its_days_after_the_load(
    age: dt.timedelta, blocked: bool
) -> None:
    f = with_(good(), pack_shelf_life_days=365, packs__load_at=NOW - age,
              packs__last_used_at=None)
    assert ("pack-expired" in codes(f)) is blocked


def test_event_related_shelf_life_never_expires_a_pack() -> None:
    f = with_(good(), pack_shelf_life_days=None,
              packs__load_at=NOW - dt.timedelta(days=3000), packs__last_used_at=None)
    assert codes(f) == []


def test_all_failing_rules_are_reported_not_only_the_first() -> None:
    f = with_(good(), cartridge__recalled=True, device__retired=True, room__open_session=3,
              depth_mm=3.0)
    assert codes(f) == [
        "cartridge-recalled", "device-retired", "device-depth-exceeded", "room-occupied",
        "practitioner-depth-exceeded",
    ]


@pytest.mark.parametrize(
    "left, warned",
    [(dt.timedelta(days=30), True), (dt.timedelta(days=30, seconds=1), False),
     (dt.timedelta(seconds=1), True)],
)
def test_a_cartridge_expiring_within_30_days_is_a_warning(left: dt.timedelta, warned: bool) -> None:
    w = rules.warnings(rules.WarningFacts(
        now=NOW, cartridge_usable_until=NOW + left, cartridge_expiry=NOW.date(),
        expiry_warning_days=30,
    ))
    assert ([x.code for x in w] == ["cartridge-expiring"]) is warned


def test_open_sessions_older_than_four_hours_and_due_bis_are_warnings() -> None:
    w = rules.warnings(rules.WarningFacts(
        now=NOW, cartridge_usable_until=None, cartridge_expiry=None, expiry_warning_days=30,
        bi_due=(("AC1", NOW + dt.timedelta(hours=23)), ("AC2", NOW + dt.timedelta(hours=25))),
        open_sessions=((1, "R1", NOW - dt.timedelta(hours=4, seconds=1)),
                       (2, "R2", NOW - dt.timedelta(hours=4))),
    ))
    assert [(x.code, x.message.split()[1]) for x in w] == [
        ("bi-due", "AC1's"), ("session-open-long", "1"),
    ]
