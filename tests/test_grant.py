"""`sterilog db grant ROLE` on a real PostgreSQL server (issue 10): the terminals' role runs the
whole CLI, and every statement that could forge or hide a record fails for it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import MANAGER, TZ, Cli
from test_tamper import record_days

from sterilog.models import AUDITED


def _as(url: str, user: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}@{rest.split('@', 1)[1]}"


@pytest.fixture(scope="module")
def granted(pg_server: Any) -> Iterator[tuple[Cli, Cli, str]]:
    """(owner, terminal, database) on a database owned by an ordinary (non-super) role."""
    if pg_server is None:
        pytest.skip("PostgreSQL is not available here")
    tag = f"g{os.getpid()}"
    owner, terminal, dbname = f"{tag}_owner", f"{tag}_terminal", f"{tag}_clinic"
    with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as c:
        c.execute(f"CREATE ROLE {owner} LOGIN")
        c.execute(f"CREATE ROLE {terminal} LOGIN")
        c.execute(f"CREATE DATABASE {dbname} OWNER {owner}")
    base = pg_server.url(dbname)
    own = Cli(url=_as(base, owner), backend="postgresql")
    own.ok(
        "init",
        "--clinic",
        "Test",
        "--tz",
        TZ,
        "--manager",
        MANAGER,
        "--name",
        "Boss",
        operator=False,
    )
    out = own.json("db", "grant", terminal)
    assert out["role"] == terminal and out["tables"] >= len(AUDITED) + 2
    yield own, Cli(url=_as(base, terminal), backend="postgresql"), terminal


@pytest.mark.pg
@pytest.mark.slow
def test_the_granted_role_runs_the_whole_cli(granted: tuple[Cli, Cli, str], tmp_path: Path) -> None:
    _own, term, _ = granted
    record_days(Cli(url=term.url, backend="postgresql", now="2026-11-24T12:00:00+00:00"))
    for args in (
        ("status",),
        ("staff", "list"),
        ("session", "list"),
        ("cartridge", "list"),
        ("trace", "client", "C-001"),
        ("audit", "log", "--limit", "5"),
        ("db", "current"),
        ("db", "check"),
        ("report", "monthly", "--month", "2026-11", "-o", str(tmp_path / "m.pdf")),
        (
            "report",
            "audit",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "-o",
            str(tmp_path / "a.pdf"),
        ),
        (
            "export",
            "--format",
            "json",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "-o",
            str(tmp_path / "x.json"),
        ),
    ):
        r = term.run(*args)
        assert r.exit_code == 0, (args, r.output)
    assert term.json("audit", "verify")["ok"] is True
    # init on an initialised database is an upgrade to the same head: nothing to do, allowed.
    term.ok("init", operator=False)
    # ...but granting is the owner's act.
    term.fails("db", "grant", "someone")


def forbidden_statements() -> list[str]:
    out = []
    for model in AUDITED:
        t = model.__tablename__
        out += [
            f"UPDATE {t} SET id = id",
            f"DELETE FROM {t}",
            f"TRUNCATE {t}",
            f"ALTER TABLE {t} ADD COLUMN zz integer",
            f"ALTER TABLE {t} DISABLE TRIGGER ALL",
            f"DROP TABLE {t}",
            f"CREATE TRIGGER zz BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION "
            "audit_log_append_only()",
            f"CREATE RULE zz AS ON INSERT TO {t} DO INSTEAD NOTHING",
            f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
        ]
    out += [
        "UPDATE audit_log SET operator = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
        "DROP TRIGGER audit_log_no_update_delete ON audit_log",
        "INSERT INTO alembic_version VALUES ('0000')",
        "UPDATE alembic_version SET version_num = 'zz'",
        "DELETE FROM alembic_version",
        "SET session_replication_role = replica",
        "CREATE TABLE zz_forged (id integer)",
        "CREATE VIEW zz_view AS SELECT 1",
        "CREATE FUNCTION zz() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NEW; END $$",
        "DROP INDEX ix_sessions_client",
        "CREATE INDEX zz_ix ON sessions (client)",
        "ALTER SEQUENCE staff_id_seq RESTART WITH 1",
        "SELECT setval('staff_id_seq', 1)",
    ]
    return out


@pytest.mark.pg
def test_the_granted_role_cannot_change_remove_or_hide_anything(
    granted: tuple[Cli, Cli, str], pg_server: Any
) -> None:
    own, term, role = granted
    dsn = pg_server.dsn(own.url.rsplit("/", 1)[1]).replace("user=postgres", f"user={role}")
    allowed = []
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
        for statement in forbidden_statements():
            try:
                conn.execute(statement)
            except psycopg.Error as error:
                conn.rollback()
                assert error.sqlstate in ("42501", "42809"), (statement, error.sqlstate, error)
            else:
                allowed.append(statement)
                conn.rollback()
    assert allowed == []
    assert term.json("audit", "verify")["ok"] is True


@pytest.mark.pg
def test_db_grant_refuses_what_would_undo_it(granted: tuple[Cli, Cli, str], pg_server: Any) -> None:
    own, _term, _ = granted
    assert "does not exist" in own.fails("db", "grant", "nobody_here").stderr
    assert "superuser" in own.fails("db", "grant", "postgres").stderr


def test_db_grant_on_sqlite_says_what_to_do_instead(cli: Cli) -> None:
    if cli.backend != "sqlite":
        pytest.skip("the SQLite message")
    assert "file permissions" in cli.fails("db", "grant", "terminal").stderr
