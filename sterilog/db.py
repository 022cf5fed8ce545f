"""Engine and transactions for both backends.

Writes are serialised: every write transaction first takes one database-wide lock (SQLite:
`BEGIN IMMEDIATE`; PostgreSQL: a transaction-scoped advisory lock). The audit chain needs its
appends in a single order, and the gate must evaluate and record atomically, so a unit can be
used at most once even when terminals race. Reads never take the lock (WAL readers and
PostgreSQL MVCC do not block writers).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session

from sterilog.errors import DatabaseError, UserError

# Any constant works; it only has to be the same for every sterilog process on a server.
PG_WRITE_LOCK_KEY = 0x57E1106  # "sterilog"
SQLITE_BUSY_TIMEOUT_MS = 60_000
PG_CONNECT_TIMEOUT_S = 5


def default_path() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("sterilog", appauthor=False)) / "sterilog.db"


def resolve_url(raw: str | None) -> URL:
    """`--db`: a SQLAlchemy URL, or a plain path meaning SQLite. None: the default location."""
    if raw is None or raw == "":
        path = default_path()
        path.parent.mkdir(parents=True, exist_ok=True)  # only the default directory is created
        return URL.create("sqlite+pysqlite", database=str(path))
    if "\x00" in raw or any(ord(c) < 32 for c in raw):
        raise UserError("--db contains control characters")
    if "://" in raw:
        try:
            url = make_url(raw)
        except (exc.ArgumentError, ValueError):
            raise UserError(f"--db {raw!r} is not a valid database URL") from None
        backend = url.get_backend_name()
        if backend == "sqlite":
            if url.database in (None, "", ":memory:"):
                raise UserError("--db needs a SQLite file path, e.g. sqlite:///clinic.db")
            url = url.set(drivername="sqlite+pysqlite")
        elif backend == "postgresql":
            if url.get_driver_name() not in ("psycopg",):
                url = url.set(drivername="postgresql+psycopg")
        else:
            raise UserError(
                f"--db backend {backend!r} is not supported; use sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST/DB"
            )
        if backend == "sqlite":
            _check_sqlite_path(Path(str(url.database)))
        return url
    path = Path(raw).expanduser()
    _check_sqlite_path(path)
    return URL.create("sqlite+pysqlite", database=str(path.absolute()))


def _check_sqlite_path(path: Path) -> None:
    parent = path.absolute().parent
    if not parent.is_dir():
        raise UserError(
            f"directory {str(parent)!r} does not exist; create it first or choose another --db"
        )
    if path.exists() and not path.is_file():
        raise UserError(f"--db {str(path)!r} is not a file")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def sqlite_file_exists(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and Path(str(url.database)).exists()


def make_engine(url: URL, *, create_file: bool = False) -> Engine:
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        if not path.exists():
            if not create_file:
                raise UserError(
                    f"no sterilog database at {str(path)!r}; run `sterilog init` first "
                    "(or pass the right --db)"
                )
            # Owner-only from the first byte: the log holds client references (SPEC §10).
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
            os.close(fd)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _sqlite_events(engine)
        return engine
    connect_args: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    return create_engine(url, connect_args=connect_args, pool_pre_ping=False)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that we can issue
        # BEGIN IMMEDIATE for writes (SQLAlchemy's documented pysqlite recipe).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys = ON")
            # WAL is switched on once, by `init` (it is persistent in the file): opening some
            # other program's SQLite file by mistake must not change it.
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("sterilog_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def describe(url: URL) -> str:
    """How a database is named in messages: the file path for SQLite, the URL without password."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.render_as_string(hide_password=True)


def friendly(error: exc.DBAPIError | exc.SQLAlchemyError, url: URL | None = None) -> DatabaseError:
    """Turn a driver error into a message a clinic can act on."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error) else ""
    where = describe(url) if url is not None else "the database"
    low = text.lower()
    if "file is not a database" in low or "not a database" in low:
        return DatabaseError(f"{where} is not a sterilog database (not SQLite at all)")
    if "database is locked" in low:
        return DatabaseError(
            "the database stayed busy for too long (another terminal is writing); try again"
        )
    if "unable to open database" in low:
        return DatabaseError(f"cannot open {where}: check the path and its permissions")
    if "readonly" in low or "read-only" in low:
        return DatabaseError(f"{where} is read-only for this user")
    if "connection" in low or "could not" in low or "timeout" in low or "resolve" in low:
        return DatabaseError(f"cannot reach {where}: {text}")
    return DatabaseError(f"database error on {where}: {text}")


def enable_wal(engine: Engine) -> None:
    """Switch a sterilog SQLite database to WAL (done at init and upgrade; it persists)."""
    if is_sqlite(engine):
        raw = engine.raw_connection()  # outside any transaction: the pragma refuses to run in one
        try:
            raw.driver_connection.execute("PRAGMA journal_mode = WAL")  # type: ignore[union-attr]
        finally:
            raw.close()


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A read-only view in ONE snapshot. SQLite's read transaction is one already (WAL); on
    PostgreSQL READ COMMITTED would give each statement a new snapshot, and a multi-query read
    such as `audit verify` could see a row committed between two of its queries."""
    with engine.connect() as conn:
        if not is_sqlite(engine):
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            session = Session(bind=conn, expire_on_commit=False)
            try:
                yield session
            finally:
                session.close()


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One serialised write transaction; commits on success, rolls back on any error."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(sterilog_write=True)
        with conn.begin():
            if not is_sqlite(engine):
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK_KEY})")
            session = Session(bind=conn, expire_on_commit=False, autoflush=True)
            try:
                yield session
                session.flush()
            finally:
                session.close()


def secure_sqlite_files(url: URL) -> None:
    """Owner-only permissions on the database file and its WAL/SHM companions (POSIX)."""
    if url.get_backend_name() != "sqlite" or os.name != "posix":
        return
    base = Path(str(url.database))
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(base) + suffix)
        try:
            if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077:
                os.chmod(p, 0o600)
        except OSError:
            pass


def server_now(session: Session) -> Any:
    """PostgreSQL's clock, read inside the caller's transaction (the clock of record)."""
    import datetime as dt

    from sqlalchemy import text

    value = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    return value.astimezone(dt.UTC).replace(microsecond=0)


def is_training(engine: Engine) -> bool | None:
    """Whether the database is a training one: True/False, None when it is not initialised
    (no settings yet). A database from before revision 0002 has no flag: it is live."""
    from sqlalchemy import inspect, text

    flag = text("SELECT training FROM settings ORDER BY id DESC LIMIT 1")
    try:
        with engine.connect() as conn:
            # The one query first (every command on a training database asks, before its own
            # work); on the same connection, the catalogue only when that query fails: no
            # settings table yet, or settings from before the flag. An unreachable server is
            # one connection attempt, not two.
            try:
                row = conn.execute(flag).first()
            except exc.DBAPIError:
                conn.rollback()  # PostgreSQL: the failed statement aborted the transaction
                inspector = inspect(conn)
                if not inspector.has_table("settings"):
                    return None
                if "training" not in {c["name"] for c in inspector.get_columns("settings")}:
                    return False  # settings without the flag: a live database from before 0002
                row = conn.execute(flag).first()
    except exc.DBAPIError:
        return None  # not reachable or not ours: the command itself reports it
    return None if row is None else bool(row[0])
