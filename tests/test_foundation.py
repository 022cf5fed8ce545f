"""Foundation: init, registers, permissions, migrations, backends, the audit chain."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import NOW, Cli, rearm_triggers
from sqlalchemy import create_engine, text

from sterilog.cli import main


def test_init_creates_the_clinic_and_its_first_manager(cli: Cli) -> None:
    staff = cli.json("staff", "list")["staff"]
    assert staff == [
        {
            "id": "boss",
            "name": "Boss Manager",
            "role": "manager",
            "license": None,
            "license_expires": None,
            "max_depth_mm": None,
            "pin": False,
            "active": True,
        }
    ]


def test_init_on_an_existing_database_only_upgrades_and_says_what_it_ignored(cli: Cli) -> None:
    before = cli.audit_count()
    result = cli.ok("init", "--clinic", "Other", "--manager", "x", "--name", "X")
    assert "already initialised" in result.stdout
    assert "--clinic" in result.stdout and "--manager" in result.stdout
    assert cli.audit_count() == before
    assert [s["id"] for s in cli.json("staff", "list")["staff"]] == ["boss"]


def test_init_on_a_new_database_needs_a_manager_and_writes_nothing_without(
    empty_url: str, backend: str
) -> None:
    c = Cli(url=empty_url, backend=backend)
    c.fails("init", "--clinic", "X", operator=False)
    if backend == "sqlite":
        assert not Path(empty_url.removeprefix("sqlite:///")).exists()


def test_init_refuses_an_unknown_zone_and_a_bad_rule_pack(empty_url: str, backend: str) -> None:
    c = Cli(url=empty_url, backend=backend)
    r = c.fails("init", "--tz", "Mars/Olympus", "--manager", "m", "--name", "M", operator=False)
    assert "unknown time zone" in r.stderr
    r = c.fails("init", "--rules", "nowhere", "--manager", "m", "--name", "M", operator=False)
    assert "nowhere" in r.stderr


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "clinic.db"
    args = ["--db", str(path), "init", "--training", "--manager", "m", "--name", "M"]
    result = CliRunner().invoke(main, args, env={"STERILOG_NOW": NOW})
    assert result.exit_code == 0, result.output
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_registers_add_and_list_with_the_spec_json_keys(cli: Cli) -> None:
    cli.ok("room", "add", "R1", "--name", "Room 1")
    cli.ok("device", "add", "SN-1", "--model", "Pen 4", "--max-depth-mm", "2.5")
    cli.ok("sterilizer", "add", "AC1", "--model", "Vacuklav", "--type", "B", "--serial", "77")
    cli.ok("sterilizer", "program", "AC1", "fast", "--temp-c", "134", "--hold-min", "4")
    cli.ok("pack", "add", "P1", "--contents", "tweezers & bowl <2>")
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "1", "--level", "intermediate")
    assert cli.json("room", "list") == {"rooms": [{"id": "R1", "name": "Room 1"}]}
    assert cli.json("device", "list")["devices"] == [
        {"id": "SN-1", "model": "Pen 4", "max_depth_mm": 2.5, "retired": False}
    ]
    (st,) = cli.json("sterilizer", "list")["sterilizers"]
    assert (st["id"], st["model"], st["type"], st["serial"]) == ("AC1", "Vacuklav", "B", "77")
    assert {"name": "fast", "temp_c": 134.0, "hold_min": 4.0} in st["programs"]
    assert cli.json("pack", "list") == {"packs": [{"id": "P1", "contents": "tweezers & bowl <2>"}]}
    (d,) = cli.json("disinfectant", "list")["disinfectants"]
    assert (d["id"], d["contact_min"], d["level"]) == ("Clinell", 1.0, "intermediate")


def test_adding_an_id_that_exists_is_exit_1_and_writes_nothing(cli: Cli) -> None:
    cli.ok("room", "add", "R1")
    before = cli.audit_count()
    r = cli.fails("room", "add", "R1")
    assert "already exists" in r.stderr
    assert cli.audit_count() == before


@pytest.mark.parametrize("bad", ["", "two words", "tab\there", "nul\x01", "x" * 201])
def test_ids_with_whitespace_or_control_characters_are_refused(cli: Cli, bad: str) -> None:
    before = cli.audit_count()
    cli.fails("room", "add", bad)
    assert cli.audit_count() == before


def test_ids_are_case_sensitive(cli: Cli) -> None:
    cli.ok("room", "add", "r1")
    cli.ok("room", "add", "R1")
    assert [r["id"] for r in cli.json("room", "list")["rooms"]] == ["R1", "r1"]


@pytest.mark.parametrize(
    "args",
    [
        ("device", "add", "D", "--model", "M", "--max-depth-mm", "nan"),
        ("device", "add", "D", "--model", "M", "--max-depth-mm", "inf"),
        ("device", "add", "D", "--model", "M", "--max-depth-mm", "-1"),
        ("device", "add", "D", "--model", "M", "--max-depth-mm", "1e9"),
        ("disinfectant", "add", "X", "--contact-min", "0"),
        ("disinfectant", "add", "X", "--contact-min", "nan"),
    ],
)
def test_absurd_numbers_are_refused_not_recorded(cli: Cli, args: tuple[str, ...]) -> None:
    before = cli.audit_count()
    cli.fails(*args)
    assert cli.audit_count() == before


def test_every_write_needs_an_operator(cli: Cli) -> None:
    r = cli.fails("room", "add", "R1", operator=False)
    assert "operator" in r.stderr


def test_roles_are_enforced_and_inspectors_only_read(cli: Cli) -> None:
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
    cli.ok("staff", "add", "ivy", "--name", "Ivy", "--role", "inspector")
    before = cli.audit_count()
    assert "may not" in cli.fails("room", "add", "R1", operator="ivy").stderr
    assert "may not" in cli.fails("pack", "add", "P1", "--contents", "x", operator="ivy").stderr
    assert "may not" in cli.fails(
        "staff", "add", "z", "--name", "Z", "--role", "manager", operator="ann"
    ).stderr
    assert cli.audit_count() == before
    cli.ok("pack", "add", "P1", "--contents", "x", operator="ann")
    cli.ok("room", "list", operator="ivy")


def test_a_deactivated_person_can_no_longer_act_but_keeps_their_records(cli: Cli) -> None:
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
    cli.ok("pack", "add", "P1", "--contents", "x", operator="ann")
    cli.ok("staff", "deactivate", "ann", "--reason", "left")
    assert "deactivated" in cli.fails("pack", "add", "P2", "--contents", "x", operator="ann").stderr
    staff = {s["id"]: s for s in cli.json("staff", "list")["staff"]}
    assert staff["ann"]["active"] is False
    log = cli.json("audit", "log")["entries"]
    assert any(e["operator"] == "ann" and e["action"] == "pack.add" for e in log)


def test_a_pin_is_needed_for_writes_and_a_wrong_one_is_audited(cli: Cli) -> None:
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner", "--pin",
           env={"STERILOG_NEW_PIN": "4821"})
    before = cli.audit_count()
    r = cli.fails("pack", "add", "P1", "--contents", "x", operator="ann")
    assert "PIN" in r.stderr
    r = cli.fails("pack", "add", "P1", "--contents", "x", operator="ann",
                  env={"STERILOG_PIN": "0000"})
    assert "wrong PIN" in r.stderr
    assert cli.audit_count() == before + 2
    assert cli.json("pack", "list")["packs"] == []
    actions = [e["action"] for e in cli.json("audit", "log")["entries"]]
    assert actions[-2:] == ["auth.failed", "auth.failed"]
    cli.ok("pack", "add", "P1", "--contents", "x", operator="ann", env={"STERILOG_PIN": "4821"})
    with cli.engine().connect() as conn:
        stored = conn.execute(text("SELECT pin_hash FROM staff WHERE code='ann'")).scalar_one()
    assert "4821" not in stored and stored.startswith("scrypt$")


def test_the_database_rejects_update_and_delete_on_the_audit_log(cli: Cli) -> None:
    engine = cli.engine()
    try:
        for stmt in ("UPDATE audit_log SET action='x'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
                conn.execute(text(stmt))
    finally:
        engine.dispose()
    assert cli.audit_count() >= 2


def _tamper(cli: Cli, *statements: str) -> None:
    engine = cli.engine()
    try:
        with engine.begin() as conn:
            for s in statements:
                conn.execute(text(s))
    finally:
        engine.dispose()


def _populate(cli: Cli) -> None:
    cli.ok("room", "add", "R1", "--name", "Room 1")
    cli.ok("room", "add", "R2")
    cli.ok("pack", "add", "P1", "--contents", "tweezers")


def test_audit_verify_passes_on_an_untouched_database_and_reports_the_head(cli: Cli) -> None:
    _populate(cli)
    out = cli.json("audit", "verify")
    assert out["ok"] is True and out["problems"] == []
    seq, digest = out["head"].split(":")
    assert int(seq) == out["entries"] == cli.audit_count()
    assert len(digest) == 64
    cli.json("audit", "verify", "--anchor", out["head"])


def test_a_row_changed_behind_the_tools_back_is_named(cli: Cli) -> None:
    _populate(cli)
    _tamper(cli, "UPDATE rooms SET name = 'Room One' WHERE code = 'R1'")
    out = cli.json("audit", "verify", expect=4)
    assert out["ok"] is False
    assert out["problems"][0]["record"] == "rooms #1"
    assert "changed: name" in out["problems"][0]["message"]


def test_a_row_deleted_behind_the_tools_back_is_named(cli: Cli) -> None:
    _populate(cli)
    _tamper(cli, "DELETE FROM rooms WHERE code = 'R2'")
    out = cli.json("audit", "verify", expect=4)
    assert [p["record"] for p in out["problems"]] == ["rooms #2"]
    assert "deleted" in out["problems"][0]["message"]


def test_a_row_inserted_behind_the_tools_back_is_named(cli: Cli) -> None:
    _populate(cli)
    _tamper(cli, "INSERT INTO rooms (id, code, name, recorded_at) "
                 "VALUES (99, 'R9', 'ghost', '2026-11-24 09:00:00')")
    out = cli.json("audit", "verify", expect=4)
    assert [p["record"] for p in out["problems"]] == ["rooms #99"]
    assert "inserted" in out["problems"][0]["message"]


def test_an_audit_entry_altered_after_dropping_the_triggers_breaks_the_chain(cli: Cli) -> None:
    _populate(cli)
    drop = (
        ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"]
        if cli.backend == "sqlite"
        else ["DROP TRIGGER audit_log_no_update_delete ON audit_log"]
    )
    _tamper(cli, *drop, "UPDATE audit_log SET operator = 'someone' WHERE seq = 3",
            *rearm_triggers(cli.backend))
    out = cli.json("audit", "verify", expect=4)
    assert out["problems"][0]["record"] == "audit_log #3"


def test_a_truncated_log_is_caught_by_the_anchor(cli: Cli) -> None:
    _populate(cli)
    head = cli.json("audit", "verify")["head"]
    seq = int(head.split(":")[0])
    drop = (
        ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"]
        if cli.backend == "sqlite"
        else ["DROP TRIGGER audit_log_no_update_delete ON audit_log"]
    )
    # Cut the log and the records it covered: the chain itself is still consistent.
    _tamper(cli, *drop, f"DELETE FROM audit_log WHERE seq = {seq}",
            "DELETE FROM packs WHERE code = 'P1'", *rearm_triggers(cli.backend))
    assert cli.json("audit", "verify")["ok"] is True
    out = cli.json("audit", "verify", "--anchor", head, expect=4)
    assert out["anchor_ok"] is False
    assert out["problems"][0]["record"] == f"audit_log #{seq}"


@pytest.mark.parametrize("bad", ["12", "x:y", "3:" + "A" * 64, "3:" + "a" * 63])
def test_a_malformed_anchor_is_a_usage_error(cli: Cli, bad: str) -> None:
    cli.fails("audit", "verify", "--anchor", bad)


def test_audit_entries_made_under_sterilog_now_say_so(cli: Cli) -> None:
    cli.ok("room", "add", "R1")
    entry = cli.json("audit", "log", "--limit", "1")["entries"][0]
    assert entry["clock"] == "STERILOG_NOW"
    assert entry["at"] == "2026-11-24T09:00:00Z"


def test_audit_entries_record_the_full_content_written(cli: Cli) -> None:
    cli.ok("room", "add", "R1", "--name", "Zoë & <Co>")
    with cli.engine().connect() as conn:
        records = conn.execute(
            text("SELECT records FROM audit_log ORDER BY seq DESC LIMIT 1")
        ).scalar_one()
    (rec,) = json.loads(records)
    assert rec["table"] == "rooms"
    assert rec["content"]["name"] == "Zoë & <Co>"
    assert rec["content"]["code"] == "R1"


# --- backends and bad databases ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://u@h/db", "not supported"),
        ("postgresql+psycopg://u@127.0.0.1:1/x", "cannot reach"),
        ("sqlite:///nonexistent-dir/x.db", "does not exist"),
        ("://nonsense", "not a valid database URL"),
    ],
)
def test_bad_database_urls_are_a_clear_exit_1(url: str, message: str) -> None:
    result = CliRunner().invoke(main, ["--db", url, "room", "list"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and message in result.stderr


def test_a_file_that_is_not_a_database_is_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    result = CliRunner().invoke(main, ["--db", str(path), "room", "list"])
    assert result.exit_code == 1
    assert "not a sterilog database" in result.stderr


def test_a_missing_sqlite_file_is_not_created_by_a_read(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    result = CliRunner().invoke(main, ["--db", str(path), "room", "list"])
    assert result.exit_code == 1 and "sterilog init" in result.stderr
    assert not path.exists()


def test_the_default_database_lives_in_the_user_data_dir(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "STERILOG_NOW": NOW, "STERILOG_DB": ""}
    args = ["init", "--training", "--manager", "m", "--name", "M"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "xdg" / "sterilog" / "sterilog.db").exists()


def test_sterilog_now_that_is_not_a_real_time_is_exit_1(cli: Cli) -> None:
    for bad in ("yesterday", "2026-02-30T10:00:00+00:00", "2026-11-24T09:00:00"):
        cli.fails("room", "add", "R1", now=bad)


# --- migrations --------------------------------------------------------------------------------


def test_migrations_upgrade_an_empty_database_and_agree_with_the_models(
    empty_url: str, backend: str
) -> None:
    from sterilog import migrate
    from sterilog.db import make_engine, resolve_url

    url = resolve_url(empty_url)
    engine = make_engine(url, create_file=True)
    try:
        migrate.upgrade(engine)
        assert migrate.check(engine) == []
        assert migrate.current(engine) == migrate.head_revision(engine)
        migrate.downgrade(engine, "base")
        assert migrate.current(engine) is None
        migrate.upgrade(engine)
        assert migrate.check(engine) == []
    finally:
        engine.dispose()


def test_db_commands_report_the_revision_and_agreement(cli: Cli) -> None:
    assert cli.json("db", "check")["ok"] is True
    current = cli.json("db", "current")
    assert current["up_to_date"] is True and current["revision"] == current["head"]
    assert cli.json("db", "upgrade")["revision"] == current["head"]


def test_the_installed_package_finds_its_migrations_from_any_directory(
    tmp_path: Path,
) -> None:
    from sterilog.migrate import script_location

    assert (script_location() / "env.py").is_file()
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        result = CliRunner().invoke(
            main, ["--db", "x.db", "init", "--training", "--manager", "m", "--name", "M"],
            env={"STERILOG_NOW": NOW},
        )
        assert result.exit_code == 0, result.output
    finally:
        os.chdir(cwd)
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM settings")).scalar_one() == 1
    engine.dispose()


def test_a_service_entry_in_the_future_is_refused_and_an_earlier_one_kept(cli: Cli) -> None:
    cli.ok("sterilizer", "add", "AC1", "--model", "M", "--type", "B")
    before = cli.audit_count()
    r = cli.fails("sterilizer", "service", "AC1", "--note", "seal", "--at",
                  "2026-11-24T09:00:01+00:00")
    assert "--at is in the future" in r.stderr
    assert cli.audit_count() == before
    cli.ok("sterilizer", "service", "AC1", "--note", "seal", "--at", "2026-11-23T15:00")
    (entry,) = cli.json("audit", "log", "--limit", "1")["entries"]
    assert entry["action"] == "sterilizer.service"


def test_is_training_reads_the_flag_and_knows_an_empty_or_older_database(empty_url: str) -> None:
    """db.is_training asks one query and reads the catalogue only when it fails: None for a
    database without settings, False for settings from before the flag (a live database),
    else the latest row's flag."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from sterilog import db as sterilog_db

    raw = create_engine(empty_url, poolclass=NullPool)
    engine = create_engine(empty_url, poolclass=NullPool)
    try:
        assert sterilog_db.is_training(engine) is None  # nothing at all
        with raw.begin() as conn:
            conn.execute(text("CREATE TABLE settings (id INTEGER PRIMARY KEY, tz TEXT)"))
            conn.execute(text("INSERT INTO settings (id, tz) VALUES (1, 'UTC')"))
        assert sterilog_db.is_training(engine) is False  # before the flag: live
        with raw.begin() as conn:
            conn.execute(text("ALTER TABLE settings ADD COLUMN training BOOLEAN"))
            conn.execute(text("DELETE FROM settings"))
        assert sterilog_db.is_training(engine) is None  # the flag, no row yet
        with raw.begin() as conn:
            conn.execute(text("INSERT INTO settings (id, tz, training) VALUES (1, 'UTC', true)"))
        assert sterilog_db.is_training(engine) is True
        with raw.begin() as conn:
            conn.execute(text("INSERT INTO settings (id, tz, training) VALUES (2, 'UTC', false)"))
        assert sterilog_db.is_training(engine) is False  # the latest row decides
    finally:
        raw.dispose()
        engine.dispose()


def test_is_training_tries_an_unreachable_server_once() -> None:
    """A server that does not answer costs one connection attempt (up to the 5-second connect
    timeout each), not one for the query and another for the catalogue."""
    import socket

    from sqlalchemy import create_engine, event

    from sterilog import db as sterilog_db

    with socket.socket() as s:  # a free port on 127.0.0.1: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{port}/none")
    attempts: list[int] = []
    event.listen(engine, "do_connect", lambda *args: attempts.append(1))
    try:
        assert sterilog_db.is_training(engine) is None
    finally:
        engine.dispose()
    assert len(attempts) == 1
