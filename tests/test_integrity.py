"""Issue 10 through the real CLI: forgeries named with exit 4, a damaged database refused
clearly (never re-initialised, never a traceback), the expected schemas up to date, private
temporary files that a killed run cannot leave behind, and least privilege on PostgreSQL."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from sqlalchemy import text

from sterilog import schema


def tamper(cli: Cli, *statements: str) -> None:
    engine = cli.engine()
    try:
        with engine.begin() as conn:
            for s in statements:
                conn.execute(text(s))
    finally:
        engine.dispose()


def scalar(cli: Cli, sql: str) -> Any:
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def fails_naming(cli: Cli, name: str, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = cli.json("audit", "verify", *args, expect=4)
    assert any(name in p["record"] for p in out["problems"]), out["problems"][:5]
    r = cli.run("audit", "verify")
    assert r.exit_code == 4 and "Traceback" not in r.output
    assert r.stderr.startswith("Error: audit verification failed")
    return out


def a_clean(cli: Cli) -> None:
    cli.ok("room", "add", "R1")
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    cli.ok(
        "clean",
        "room",
        "R1",
        "--kind",
        "between-clients",
        "--disinfectant",
        "Clinell",
        "--at",
        "2026-11-24T08:00:00+00:00",
    )


def test_a_manager_forged_with_a_negative_id_is_named(cli: Cli) -> None:
    tamper(
        cli,
        "INSERT INTO staff (id, code, name, role, recorded_at) "
        "VALUES (-7, 'mallory', 'Mallory', 'manager', '2026-11-24 09:00:00')",
    )
    out = fails_naming(cli, "staff #-7")
    assert "inserted" in next(p for p in out["problems"] if p["record"] == "staff #-7")["message"]


def test_a_clean_moved_by_the_same_instant_in_other_text_or_type_is_named(cli: Cli) -> None:
    a_clean(cli)
    if cli.backend == "sqlite":
        # The forgery: the same UTC instant, but the gate and reports would read 08:45.
        tamper(cli, "UPDATE room_cleans SET at = '2026-11-24T08:45:00+00:45' WHERE id = 1")
        out = fails_naming(cli, "room_cleans #1")
        assert "at" in out["problems"][0]["message"]
    else:
        tamper(cli, "ALTER TABLE room_cleans ALTER COLUMN at TYPE timestamptz")
        fails_naming(cli, "column room_cleans.at")
        check = cli.json("db", "check", expect=4)
        assert any("room_cleans.at" in d for d in check["differences"])


def test_a_planted_trigger_is_named_by_verify_and_db_check(cli: Cli) -> None:
    if cli.backend == "sqlite":
        tamper(
            cli,
            "CREATE TRIGGER anon AFTER INSERT ON sessions BEGIN "
            "UPDATE sessions SET client = 'ANON' WHERE id = NEW.id; END",
        )
        name = "trigger anon"
    else:
        tamper(
            cli,
            "CREATE FUNCTION anon() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN UPDATE sessions SET client = 'ANON' WHERE id = NEW.id; RETURN NEW; END $$",
            "CREATE TRIGGER anon AFTER INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION anon()",
        )
        name = "trigger sessions.anon"
    fails_naming(cli, name)
    check = cli.json("db", "check", expect=4)
    assert any(name in d for d in check["differences"])


def test_a_deleted_settings_row_is_damage_everywhere_and_init_never_reinitialises(
    cli: Cli,
) -> None:
    staff_before = scalar(cli, "SELECT count(*) FROM staff")
    tamper(cli, "DELETE FROM settings")
    out = fails_naming(cli, "settings")
    assert "damaged" in out["problems"][0]["message"]
    assert "backup" in out["problems"][0]["message"]
    assert any(p["record"] == "settings #1" for p in out["problems"])
    for args in (("status",), ("staff", "list"), ("room", "add", "R9")):
        r = cli.fails(*args)
        assert "damaged" in r.stderr and "backup" in r.stderr
    r = cli.fails("init", "--manager", "eve", "--name", "Eve", "--tz", "Europe/London")
    assert "damaged" in r.stderr
    assert scalar(cli, "SELECT count(*) FROM settings") == 0
    assert scalar(cli, "SELECT count(*) FROM staff") == staff_before


@pytest.mark.parametrize(
    "forgery",
    [
        "UPDATE alembic_version SET version_num = 'zz99'",
        "DELETE FROM alembic_version",
        "INSERT INTO alembic_version VALUES ('0000')",
    ],
)
def test_a_tampered_alembic_version_is_a_clear_message_never_a_traceback(
    cli: Cli, forgery: str
) -> None:
    tamper(cli, forgery)
    fails_naming(cli, "alembic_version")
    for args in (("init",), ("db", "upgrade")):
        r = cli.fails(*args)
        assert "alembic_version" in r.stderr
    r = cli.run("db", "check")
    assert r.exit_code in (1, 4) and "Traceback" not in r.output


def test_every_command_refuses_an_uninitialised_database_without_tracebacks(
    empty_url: str, backend: str
) -> None:
    c = Cli(url=empty_url, backend=backend)
    r = c.run("audit", "verify")
    assert r.exit_code == 1 and "Traceback" not in r.output


# --- the expected schemas come from the migrations ----------------------------------------------


def test_the_stored_sqlite_schemas_are_what_the_migrations_make(tmp_path: Path) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(f"sqlite:///{tmp_path / 'scratch.db'}", poolclass=NullPool)
    built = schema.build(engine)
    engine.dispose()
    assert [rev for rev, _ in built] == schema.known_revisions()
    for rev, objects in built:
        assert schema.expected(rev, "sqlite") == objects, (
            f"sterilog/schemas/{rev}.sqlite.json is stale: "
            "run python scripts/schema_fingerprints.py"
        )


@pytest.mark.pg
def test_the_stored_postgresql_schemas_are_what_the_migrations_make(pg_server: Any) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    if pg_server is None:
        pytest.skip("PostgreSQL is not available here")
    engine = create_engine(pg_server.create_database(f"scratch{os.getpid()}"), poolclass=NullPool)
    built = schema.build(engine)
    engine.dispose()
    for rev, objects in built:
        assert schema.expected(rev, "postgresql") == objects, (
            f"sterilog/schemas/{rev}.postgresql.json is stale: run "
            "python scripts/schema_fingerprints.py"
        )


# --- nothing left behind --------------------------------------------------------------------------

_HOLD = """
import sys, time
from pathlib import Path
from sterilog import tempfiles
fd, name = tempfiles.mkstemp(Path(sys.argv[1]), "backup.db")
import os
os.write(fd, b"client references")
print(name, flush=True)
time.sleep(60)
"""


def _holder(directory: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    name = Path(proc.stdout.readline().strip())
    return proc, name


def test_a_killed_backup_leaves_no_copy_past_the_next_run_and_none_is_world_readable(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from sterilog.cli import main

    if os.name != "posix":
        pytest.skip("flock-based cleanup is POSIX")
    db_path = tmp_path / "clinic.db"
    env = {"STERILOG_NOW": "2026-11-24T09:00:00+00:00", "STERILOG_OPERATOR": "boss"}
    r = CliRunner().invoke(
        main,
        ["--db", str(db_path), "init", "--training", "--manager", "boss", "--name", "B"],
        env=env,
    )
    assert r.exit_code == 0, r.output
    out = tmp_path / "backups"
    out.mkdir()
    killed, killed_name = _holder(out)
    alive, alive_name = _holder(out)
    try:
        assert stat.S_IMODE(killed_name.stat().st_mode) == 0o600
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        assert killed_name.exists()  # what a killed run leaves...
        r = CliRunner().invoke(main, ["--db", str(db_path), "backup", str(out / "b.db")], env=env)
        assert r.exit_code == 0, r.output
        assert not killed_name.exists()  # ...is gone after the next run
        assert alive_name.exists()  # a run still going keeps its file
        left = sorted(p.name for p in out.iterdir())
        assert left == sorted(["b.db", alive_name.name])
    finally:
        alive.kill()
        alive.wait(10)
        for proc in (killed, alive):
            assert proc.stdout is not None
            proc.stdout.close()
