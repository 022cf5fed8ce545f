"""Tests for the throwaway PostgreSQL helper in tests/pgserver.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.pgserver import PgServer, PostgresUnavailable, start_postgres


def _unavailable(reason: str) -> None:
    if os.environ.get("STERILOG_TEST_POSTGRES") == "required":
        pytest.fail(f"PostgreSQL required but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def test_url_format() -> None:
    server = PgServer(datadir=Path("/nonexistent"), port=54321, host="127.0.0.1", user="postgres")
    assert server.url() == "postgresql+psycopg://postgres@127.0.0.1:54321/postgres"
    assert server.url("sterilog") == "postgresql+psycopg://postgres@127.0.0.1:54321/sterilog"
    assert server.dsn("x") == "host=127.0.0.1 port=54321 user=postgres dbname=x"
    server.stop()  # nothing started: must be a harmless no-op


@pytest.mark.pg
def test_start_query_template_stop(tmp_path: Path) -> None:
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'psycopg[binary]')")
    t0 = time.monotonic()
    try:
        server = start_postgres(tmp_path)
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
    started = time.monotonic() - t0
    root = server.root
    try:
        assert started < 30, f"start took {started:.1f}s"
        assert server.url().startswith(f"postgresql+psycopg://{server.user}@127.0.0.1:")
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
            assert conn.execute("show fsync").fetchone() == ("off",)
            assert conn.execute("show server_encoding").fetchone() == ("UTF8",)

        tmpl_url = server.create_database("tmpl_db")
        assert tmpl_url == server.url("tmpl_db")
        with psycopg.connect(server.dsn("tmpl_db"), autocommit=True) as conn:
            conn.execute("create table marker (id int primary key)")
            conn.execute("insert into marker values (42)")

        url = server.create_database("copy_db", template="tmpl_db")
        assert url == server.url("copy_db")
        with psycopg.connect(server.dsn("copy_db")) as conn:
            assert conn.execute("select id from marker").fetchall() == [(42,)]
    finally:
        server.stop()
    assert root is not None and not root.exists()
    server.stop()  # idempotent
