"""Test fixtures: every database test runs on SQLite and on a real PostgreSQL server.

A migrated, initialised template database is built once per backend per test session and
copied for each test (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL).

PostgreSQL: a throwaway server is started once (tests/pgserver.py). Without PostgreSQL the
PostgreSQL variants skip with the reason, unless STERILOG_TEST_POSTGRES=required, which turns
that skip into a failure (CI sets it).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).parent))

from pgserver import PgServer, PostgresUnavailable, start_postgres

from sterilog import db as _db
from sterilog.cli import main

# One engine per database per test process, as a resident terminal has: the suite runs the CLI
# in-process thousands of times, and a new engine per command compiled every SQL statement
# again (SQLAlchemy caches compiled statements per engine): tests/test_gate.py in one
# process took 81 s with an engine per command, 70 s with this. The
# product's one-shot commands are unaffected (one engine per process either way). Keyed by
# process too: a forked child (verify's second half) must never reuse its parent's pool.
_ENGINES: dict[tuple[int, str, bool], Any] = {}
_make_engine = _db.make_engine


def _shared_engine(url: Any, *, create_file: bool = False) -> Any:
    key = (os.getpid(), url.render_as_string(hide_password=False), create_file)
    engine = _ENGINES.get(key)
    if engine is not None and (
        url.get_backend_name() != "sqlite" or Path(str(url.database)).exists()
    ):
        return engine
    engine = _make_engine(url, create_file=create_file)
    if len(_ENGINES) >= 4:
        _ENGINES.pop(next(iter(_ENGINES))).dispose()
    _ENGINES[key] = engine
    return engine


_db.make_engine = _shared_engine

NOW = "2026-11-24T09:00:00+00:00"
TZ = "Europe/London"
MANAGER = "boss"
PG_REQUIRED = os.environ.get("STERILOG_TEST_POSTGRES") == "required"
_counter = itertools.count()

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)]


@dataclass
class Cli:
    """Runs the real CLI in-process against one database."""

    url: str
    backend: str
    now: str = NOW
    operator: str | None = MANAGER
    env: dict[str, str] = field(default_factory=dict)
    # `init` through this helper makes a training database (the suite plays days with
    # STERILOG_NOW); tests of live databases set training=False and run with now="".
    training: bool = True

    def run(
        self,
        *args: str,
        operator: str | bool | None = True,
        input: str | None = None,
        env: dict[str, str] | None = None,
        now: str | None = None,
    ) -> Result:
        runner = CliRunner()
        full_env = {
            "STERILOG_NOW": self.now if now is None else now,
            "STERILOG_DB": "",
            "STERILOG_OPERATOR": "",
            "STERILOG_PIN": "",
            "STERILOG_NEW_PIN": "",
            **self.env,
            **(env or {}),
        }
        argv: list[str] = ["--db", self.url]
        op = self.operator if operator is True else operator
        if op:
            argv += ["--operator", str(op)]
        if args and args[0] == "init" and self.training and "--training" not in args:
            args = ("init", "--training", *args[1:])
        argv += list(args)
        return runner.invoke(main, argv, env=full_env, input=input, catch_exceptions=True)

    def ok(self, *args: str, **kw: Any) -> Result:
        result = self.run(*args, **kw)
        assert result.exit_code == 0, _explain(result)
        return result

    def json(self, *args: str, expect: int = 0, **kw: Any) -> Any:
        result = self.run("--json", *args, **kw)
        assert result.exit_code == expect, _explain(result)
        return json.loads(result.stdout)

    def fails(self, *args: str, code: int = 1, **kw: Any) -> Result:
        result = self.run(*args, **kw)
        assert result.exit_code == code, _explain(result)
        assert "Traceback" not in result.output
        if code == 1:
            assert result.stderr.startswith("Error: "), result.stderr
        return result

    def engine(self) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        # NullPool: connections close when their block ends, none is left for the GC.
        return create_engine(self.url, poolclass=NullPool)

    def audit_count(self) -> int:
        from sqlalchemy import text

        engine = self.engine()
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())
        finally:
            engine.dispose()


def rearm_triggers(backend: str) -> list[str]:
    """What a careful forger runs after editing the log: the append-only triggers exactly as the
    migration made them, so the schema looks untouched (tests of row/chain checks use it)."""
    if backend == "sqlite":
        return [
            f"CREATE TRIGGER audit_log_no_{v.lower()} BEFORE {v} ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            for v in ("UPDATE", "DELETE")
        ]
    return [
        "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    ]


def _explain(result: Result) -> str:
    import traceback

    tb = ""
    if result.exc_info and not isinstance(result.exception, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))
    return f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}\n{tb}"


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer | None]:
    try:
        import psycopg  # noqa: F401

        server = start_postgres(tmp_path_factory.mktemp("pg"))
    except (PostgresUnavailable, ImportError) as error:
        if PG_REQUIRED:
            pytest.fail(f"PostgreSQL is required (STERILOG_TEST_POSTGRES=required): {error}")
        yield None
        return
    yield server
    server.stop()


def _need_pg(pg_server: PgServer | None) -> PgServer:
    if pg_server is None:
        pytest.skip(
            "PostgreSQL is not available here (no initdb/pg_ctl or psycopg); "
            "set STERILOG_TEST_POSTGRES=required to make this a failure"
        )
    return pg_server


def _init_args(url: str) -> list[str]:
    # A training database: the suite plays days with STERILOG_NOW, which a live one refuses.
    return [
        "--db",
        url,
        "init",
        "--training",
        "--clinic",
        "Test Clinic",
        "--tz",
        TZ,
        "--manager",
        MANAGER,
        "--name",
        "Boss Manager",
    ]


def _run_init(url: str) -> None:
    result = CliRunner().invoke(main, _init_args(url), env={"STERILOG_NOW": NOW})
    assert result.exit_code == 0, _explain(result)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    _run_init(str(path))
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer | None) -> str | None:
    if pg_server is None:
        return None
    url = pg_server.create_database("sterilog_template")
    _run_init(url)
    return "sterilog_template"


def fresh_url(
    backend: str,
    tmp_path: Path,
    pg_server: PgServer | None,
    *,
    template: str | Path | None,
    request: pytest.FixtureRequest | None = None,
) -> str:
    """A new database for one test: initialised from the template, or empty. With `request`,
    a PostgreSQL database is dropped when the test is done (a SQLite file goes with tmp_path)."""
    if backend == "sqlite":
        path = tmp_path / f"db{next(_counter)}.db"
        if template is not None:
            shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    server = _need_pg(pg_server)
    name = f"t{os.getpid()}_{next(_counter)}"
    url = server.create_database(name, template=str(template) if template else None)
    if request is not None:

        def drop() -> None:
            # a database left behind costs disk, not correctness: never fail a test on it
            with contextlib.suppress(Exception):
                server.drop_database(name)

        request.addfinalizer(drop)
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cli(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Cli:
    """An initialised clinic (manager `boss`, Europe/London) on each backend."""
    if backend == "sqlite":
        template: str | Path | None = request.getfixturevalue("sqlite_template")
        pg = None
    else:
        pg = _need_pg(request.getfixturevalue("pg_server"))
        template = request.getfixturevalue("pg_template")
    url = fresh_url(backend, tmp_path, pg, template=template, request=request)
    return Cli(url=url, backend=backend)


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database URL with nothing in it (SQLite: the file does not exist yet)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'new.db'}"
    pg = _need_pg(request.getfixturevalue("pg_server"))
    return fresh_url(backend, tmp_path, pg, template=None, request=request)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `soak` (long random or stress variants) run only when asked for, so the
    suite `.ci/run` runs stays bounded and deterministic.

    Tests marked `slow` (the longest ones) are moved to the front, in their order: the
    workers start them first and finish on short tests, instead of one worker still running
    a one-minute test when everything else is done (the suite's wall time was its tail)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable
    expr = config.getoption("-m") or ""
    if os.environ.get("STERILOG_SOAK") == "1" or ("soak" in expr and "not soak" not in expr):
        return
    skip = pytest.mark.skip(reason="long soak variant: run with `-m soak` or STERILOG_SOAK=1")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
