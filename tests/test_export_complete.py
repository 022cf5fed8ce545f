"""The export holds every record table (issue 14): a table or column added to sterilog/models.py
that no export type carries fails here, unless NOT_EXPORTED says why it is left out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Cli
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from test_gate import clean, setup_clinic, start
from test_notify import hook  # noqa: F401 (a fixture: a local webhook recording the posts)

from sterilog.models import Base
from sterilog.services.export import NOT_EXPORTED, TYPES


def carried() -> set[str]:
    return {src for t in TYPES for c in t.fields for src in c.source}


def test_every_table_and_column_of_the_schema_is_exported_or_excluded_with_a_reason() -> None:
    left_out = []
    for table in Base.metadata.sorted_tables:
        if f"{table.name}.*" in NOT_EXPORTED:
            continue
        for column in table.c:
            name = f"{table.name}.{column.name}"
            if name not in carried() and name not in NOT_EXPORTED:
                left_out.append(name)
    assert left_out == [], (
        "add these to a RecordType in sterilog/services/export.py (or to NOT_EXPORTED with "
        f"the reason): {left_out}"
    )


def test_each_exported_table_has_its_own_type_and_the_exclusions_are_not_stale() -> None:
    tables = {t.name for t in Base.metadata.sorted_tables}
    excluded = {k.split(".")[0] for k in NOT_EXPORTED if k.endswith(".*")}
    own = [t.model.__tablename__ for t in TYPES]
    assert len(own) == len(set(own)), "two types export the same table as their own rows"
    assert set(own) == tables - excluded
    for key in NOT_EXPORTED:
        table, column = key.split(".")
        assert table in tables, key
        assert column == "*" or column in Base.metadata.tables[table].c, key
        assert key not in carried(), f"{key} is both exported and excluded"
    for t in TYPES:
        assert len(t.columns) == len(set(t.columns)), t.name


def test_corrections_incidents_and_exposures_are_in_the_export(cli: Cli, tmp_path: Path) -> None:
    setup_clinic(cli)
    sid = start(cli, packs=("P1",))["session_id"]
    cli.ok(
        "session",
        "end",
        str(sid),
        "--at",
        "2026-11-24T09:40",
        operator="ann",
        now="2026-11-24T10:00:00+00:00",
    )
    cli.ok("staff", "add", "carl", "--name", "Carl", "--role", "practitioner")
    cli.ok("staff", "update", "ann", "--license", "PR-9", "--license-expires", "2030-01-01")
    cli.ok("staff", "deactivate", "carl", "--reason", "left")
    cli.ok("staff", "reinstate", "carl")
    cli.ok("device", "retire", "SN-2", "--reason", "motor noise")
    cli.ok("device", "reinstate", "SN-2")
    cli.ok(
        "device", "retire", "SN-2", "--reason", "motor noise again", now="2026-11-24T09:05:00+00:00"
    )
    cli.ok("device", "update", "SN-1", "--max-depth-mm", "1.5", now="2026-11-24T09:06:00+00:00")
    cli.ok(
        "disinfectant", "update", "Clinell", "--contact-min", "3", now="2026-11-24T09:07:00+00:00"
    )
    staff_inc = cli.json(
        "incident",
        "record",
        "--kind",
        "exposure",
        "--staff",
        "ann",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--note",
        "needlestick while cleaning the pen",
        operator="ann",
    )["incident_id"]
    inc = cli.json(
        "incident",
        "record",
        "--session",
        str(sid),
        "--kind",
        "infection",
        "--note",
        "red and swollen",
        operator="ann",
    )["incident_id"]
    exp = str(cli.json("exposure", "open", "--incident", str(inc))["id"])
    cli.ok("exposure", "notify", exp, "--client", "C-1", "--how", "phone")
    # Every client told: the exposure closes by itself (an exposure_closures row).
    clean(cli, "R1", "SN-1")

    path = tmp_path / "all.json"
    cli.ok(
        "export",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--format",
        "json",
        "-o",
        str(path),
        operator=False,
    )
    data = json.loads(path.read_text(encoding="utf-8"))

    # Every row of every exported table is in it (the period holds the whole history).
    engine = cli.engine()
    try:
        with engine.connect() as db:
            for t in TYPES:
                n = db.execute(select(func.count()).select_from(t.model.__table__)).scalar_one()
                assert len(data[t.name]) == n == data["counts"][t.name], t.name
                for row in data[t.name]:
                    assert list(row) == data["meta"]["types"][t.name], t.name
    finally:
        engine.dispose()

    changes = [(c["kind"], c["record"], c["reinstate"]) for c in data["register_changes"]]
    assert changes == [("staff", "ann", False), ("staff", "carl", True),
                       ("device", "SN-2", True), ("device", "SN-1", False),
                       ("disinfectant", "Clinell", False)]  # fmt: skip
    assert data["register_changes"][0]["license_no"] == "PR-9"
    assert data["register_changes"][0]["license_expires"] == "2030-01-01"
    assert data["register_changes"][-1]["contact_min"] == 3
    assert [(d["staff"], d["reason"]) for d in data["staff_deactivations"]] == [("carl", "left")]
    assert [r["reason"] for r in data["device_retirements"]] == ["motor noise", "motor noise again"]
    staff = {s["code"]: s for s in data["staff"]}
    assert staff["carl"]["deactivated_at"] is None  # reinstated
    devices = {d["serial"]: d for d in data["devices"]}
    assert devices["SN-2"]["retired_at"] is not None  # retired again after the reinstatement
    assert devices["SN-1"]["retired_at"] is None
    # ... and the export says what the gate's register rule says, for every entry.
    from sterilog.compliance.registers import device_active, staff_active

    engine = cli.engine()
    try:
        with Session(engine) as db:
            for s in data["staff"]:
                assert (s["deactivated_at"] is None) == staff_active(db, s["id"]), s["code"]
            for d in data["devices"]:
                assert (d["retired_at"] is None) == device_active(db, d["id"]), d["serial"]
    finally:
        engine.dispose()

    by_id = {i["id"]: i for i in data["incidents"]}
    alone = by_id[staff_inc]
    assert (alone["session_id"], alone["client"]) == (None, None)
    assert (alone["room"], alone["device"], alone["staff"]) == ("R1", "SN-1", "ann")
    assert alone["room_id"] is not None and alone["staff_id"] is not None
    assert by_id[inc]["client"] == "C-1"

    (exposure,) = data["exposures"]
    assert (exposure["cause"], exposure["source_id"]) == ("incident", inc)
    assert [c["client"] for c in data["exposure_clients"]] == ["C-1"]
    assert [(n["client"], n["how"]) for n in data["exposure_notices"]] == [("C-1", "phone")]
    assert [c["exposure_id"] for c in data["exposure_closures"]] == [exposure["id"]]
    (end,) = data["session_ends"]
    assert (end["session_id"], end["at"]) == (sid, "2026-11-24T09:40:00Z")
    assert data["settings"][0]["tz"] == "Europe/London"
    assert all("pin_hash" not in row for row in data["staff"] + data["pin_events"])


def test_notifications_sent_are_exported_by_the_day_they_were_sent_for(
    cli: Cli,
    tmp_path: Path,
    hook: tuple[str, list[Any]],  # noqa: F811 (the fixture imported above)
) -> None:
    url, posted = hook
    setup_clinic(cli)
    cli.ok("settings", "notify", "--webhook", url)
    cli.ok("notify", now="2026-11-24T09:00:00+00:00")
    cli.ok("notify", now="2026-11-25T09:00:00+00:00")
    assert len(posted) == 2

    def sent(start: str, end: str) -> list[dict]:
        path = tmp_path / f"{start}-{end}.json"
        cli.ok("export", "--from", start, "--to", end, "--format", "json", "-o", str(path),
               operator=False)
        rows: list[dict] = json.loads(path.read_text(encoding="utf-8"))["notifications_sent"]
        return rows

    days = {r["day"] for r in sent("2026-11-24", "2026-11-24")}
    assert days == {"2026-11-24"}
    both = sent("2026-11-01", "2026-11-30")
    assert {r["day"] for r in both} == {"2026-11-24", "2026-11-25"}
    assert all(r["text"] and r["channels"] for r in both)
    assert sent("2026-11-26", "2026-11-30") == []
