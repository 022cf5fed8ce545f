"""Room and device cleaning through the real CLI on both backends (SPEC §6.4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Cli
from test_sterilization import prepared_cli


def setup(cli: Cli) -> None:
    cli.ok("room", "add", "R1")
    cli.ok("device", "add", "SN-1", "--model", "Pen 4")
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "2")


@pytest.fixture
def clinic(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Cli:
    return prepared_cli(request, backend, tmp_path, "cleaning", setup)


def test_a_room_clean_takes_the_label_contact_time_by_default(clinic: Cli) -> None:
    out = clinic.json(
        "clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell"
    )
    assert out == {
        "clean_id": out["clean_id"],
        "room": "R1",
        "kind": "between-clients",
        "disinfectant": "Clinell",
        "contact_min": 2.0,
        "note": None,
        "at": "2026-11-24T09:00:00Z",
    }
    r = clinic.ok(
        "clean",
        "room",
        "R1",
        "--kind",
        "spill",
        "--disinfectant",
        "Clinell",
        "--contact-min",
        "5",
        "--note",
        "blood <spot> & wipe",
        "--at",
        "2026-11-24T08:30",
    )
    assert r.stdout.startswith(
        "Room R1 cleaned (spill) with Clinell, 5 min contact, at 2026-11-24 08:30"
    )
    assert r.stderr == ""


def test_the_clinic_zone_applies_to_a_naive_at(clinic: Cli) -> None:
    out = clinic.json(
        "clean",
        "room",
        "R1",
        "--kind",
        "end-of-day",
        "--disinfectant",
        "Clinell",
        "--at",
        "2026-07-01T19:00",
        now="2026-07-02T09:00:00Z",
    )
    assert out["at"] == "2026-07-01T18:00:00Z"  # 19:00 BST


def test_a_device_clean_records_the_barrier_lot_even_for_a_retired_device(clinic: Cli) -> None:
    out = clinic.json(
        "clean",
        "device",
        "SN-1",
        "--disinfectant",
        "Clinell",
        "--barrier-lot",
        "BS-1",
        "--contact-min",
        "2",
    )
    assert out == {
        "clean_id": out["clean_id"],
        "device": "SN-1",
        "kind": "device",
        "disinfectant": "Clinell",
        "contact_min": 2.0,
        "barrier_lot": "BS-1",
        "at": "2026-11-24T09:00:00Z",
    }
    clinic.ok("device", "retire", "SN-1", "--reason", "motor")
    clinic.ok("clean", "device", "SN-1", "--disinfectant", "Clinell")
    assert clinic.json("audit", "verify")["ok"] is True


BAD = [
    (
        ("room", "R1", "--kind", "spill", "--disinfectant", "Clinell", "--contact-min", "1.5"),
        "the surface was not disinfected: label contact time is 2 min for Clinell, got 1.5 min",
    ),
    (
        ("device", "SN-1", "--disinfectant", "Clinell", "--contact-min", "1"),
        "the surface was not disinfected: label contact time is 2 min",
    ),
    (("room", "R9", "--kind", "spill", "--disinfectant", "Clinell"), "unknown room 'R9'"),
    (("device", "SN-9", "--disinfectant", "Clinell"), "unknown device 'SN-9'"),
    (
        ("room", "R1", "--kind", "spill", "--disinfectant", "Bleach"),
        "unknown disinfectant 'Bleach'",
    ),
    (
        ("device", "SN-1", "--disinfectant", "Clinell", "--contact-min", "nan"),
        "--contact-min must be a finite number",
    ),
    (
        ("room", "R1", "--kind", "spill", "--disinfectant", "Clinell", "--contact-min", "-2"),
        "--contact-min must be at least 0.5",
    ),
    (
        ("room", "R1", "--kind", "spill", "--disinfectant", "Clinell", "--contact-min", "1e6"),
        "--contact-min must be at least 0.5",
    ),
    (
        ("room", "R1", "--kind", "spill", "--disinfectant", "Clinell", "--at", "2026-11-25T09:00"),
        "--at is in the future",
    ),
    (
        ("device", "SN-1", "--disinfectant", "Clinell", "--barrier-lot", " "),
        "--barrier-lot must not be empty",
    ),
    (
        ("room", "R1", "--kind", "spill", "--disinfectant", "Clinell", "--note", "a\x07b"),
        "--note must not contain control characters",
    ),
]


def test_bad_cleaning_input_is_exit_1_and_writes_nothing(clinic: Cli) -> None:
    before = clinic.audit_count()
    for args, message in BAD:
        r = clinic.fails("clean", *args)
        assert message in r.stderr, (args, r.stderr)
        assert r.stdout == ""
    clinic.fails("clean", "room", "R1", "--kind", "mop", "--disinfectant", "Clinell", code=2)
    clinic.fails(
        "clean", "room", "R1", "--kind", "spill", "--disinfectant", "Clinell", operator=False
    )
    assert clinic.audit_count() == before
