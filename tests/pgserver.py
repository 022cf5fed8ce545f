"""Throwaway PostgreSQL server for the test session (stdlib only).

Usage::

    server = start_postgres(tmp_path_factory.mktemp("pg"))   # may raise PostgresUnavailable
    url = server.create_database("sterilog_test")           # SQLAlchemy URL (psycopg driver)
    ...
    server.stop()

Binaries are taken from the highest ``/usr/lib/postgresql/*/bin`` or from ``PATH``.  The cluster
is created with ``initdb`` (trust auth, UTF8, ``--no-sync``) in a fresh temporary directory and
started with ``pg_ctl start -w`` on a free port, listening on 127.0.0.1 and on a unix socket
directory inside that temporary directory.  Durability is switched off for speed.

PostgreSQL refuses to run as root; when ``os.geteuid() == 0`` the binaries are run as the
``postgres`` system user via ``runuser -u postgres --`` and the cluster lives in a ``/tmp``
directory (mode 0755, owned by ``postgres``) instead of under ``base_dir``, because every parent
directory must be traversable by that user.

Every subprocess has a timeout, and an ``atexit`` hook stops the server if the caller forgets.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PgServer", "PostgresUnavailable", "find_bindir", "start_postgres"]

SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
LOOPBACK = "127.0.0.1"

INITDB_TIMEOUT = 120.0
START_WAIT = 60  # seconds pg_ctl waits for the server to accept connections
STOP_WAIT = 30
CLIENT_TIMEOUT = 60.0
START_ATTEMPTS = 3  # retries with a new port if the chosen one got taken meanwhile

# Unix socket paths are limited to ~107 bytes; ".s.PGSQL.NNNNN" needs 15 more.
_MAX_SOCKDIR_LEN = 90

_SETTINGS: dict[str, str] = {
    "listen_addresses": LOOPBACK,
    "max_connections": "100",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "jit": "off",
}


class PostgresUnavailable(RuntimeError):
    """A throwaway PostgreSQL server cannot be started here; the message says why."""


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name  # /usr/lib/postgresql/<version>/bin
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (0,)


def find_bindir() -> Path:
    """Directory holding initdb/pg_ctl: highest /usr/lib/postgresql/*/bin, else PATH."""
    candidates = [
        d
        for d in glob.glob("/usr/lib/postgresql/*/bin")
        if os.access(os.path.join(d, "initdb"), os.X_OK)
        and os.access(os.path.join(d, "pg_ctl"), os.X_OK)
    ]
    if candidates:
        return Path(max(candidates, key=_version_key))
    initdb = shutil.which("initdb")
    if initdb is not None:
        bindir = Path(initdb).resolve().parent
        if os.access(bindir / "pg_ctl", os.X_OK):
            return bindir
        raise PostgresUnavailable(f"found {initdb} but no pg_ctl next to it")
    raise PostgresUnavailable("no initdb found in /usr/lib/postgresql/*/bin or PATH")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """Environment without PG* variables (PGDATA, PGPORT, ... would interfere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no server log: {exc}>"
    return "\n".join(text.splitlines()[-lines:]) or "<server log empty>"


def _conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return ((proc.stdout or "") + (proc.stderr or "")).strip()


@dataclass
class PgServer:
    datadir: Path
    port: int
    host: str = LOOPBACK
    user: str = SUPERUSER
    bindir: Path | None = field(default=None, repr=False)
    root: Path | None = field(default=None, repr=False)  # temp dir removed by stop()
    sockdir: Path | None = field(default=None, repr=False)
    logfile: Path | None = field(default=None, repr=False)
    run_as: str | None = field(default=None, repr=False)  # system user for `runuser -u`
    _stopped: bool = field(default=False, repr=False, compare=False)

    # -- connection strings -------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL using the psycopg (v3) driver."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq conninfo string, e.g. for ``psycopg.connect()``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    # -- databases ------------------------------------------------------------------------------

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE ``name`` (optionally from ``template``); returns its URL."""
        try:
            import psycopg
            from psycopg import sql
        except ImportError:
            self._createdb(name, template)
            return self.url(name)
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        with psycopg.connect(
            self.dsn("postgres"), autocommit=True, connect_timeout=int(CLIENT_TIMEOUT)
        ) as conn:
            conn.execute(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE ``name`` if it exists, closing what is still connected to it. Tests
        drop theirs when done: ~1 700 PostgreSQL tests left ~7 MB each (the system catalogs)
        on the server's disk, gigabytes written during the run and removed at its end."""
        import psycopg
        from psycopg import sql

        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        with psycopg.connect(
            self.dsn("postgres"), autocommit=True, connect_timeout=int(CLIENT_TIMEOUT)
        ) as conn:
            conn.execute(query)

    def _createdb(self, name: str, template: str | None) -> None:
        if self.bindir is None:
            raise PostgresUnavailable("no PostgreSQL bindir known; cannot run createdb")
        cmd = [str(self.bindir / "createdb"), "-h", self.host, "-p", str(self.port)]
        cmd += ["-U", self.user]
        if template is not None:
            cmd += ["-T", template]
        cmd += ["--", name]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {_output(proc)}")

    # -- lifecycle ------------------------------------------------------------------------------

    def _cmd(self, args: Sequence[str]) -> list[str]:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        return [*prefix, *args]

    def _run(self, args: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        # Output goes to a temp file rather than a pipe: a daemonised postmaster that inherited
        # the pipe would otherwise keep communicate() waiting.
        with tempfile.TemporaryFile(mode="w+") as out:
            proc = subprocess.run(
                self._cmd(args),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                env=_clean_env(),
                cwd=self.root,
                check=False,
            )
            out.seek(0)
            return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), "")

    def _pg_ctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        assert self.bindir is not None
        return self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args], timeout)

    def stop(self) -> None:
        """Stop immediately (``pg_ctl stop -m immediate``) and delete the temp dir. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if self.bindir is not None and (self.datadir / "postmaster.pid").exists():
            try:
                proc = self._pg_ctl(
                    "stop", "-m", "immediate", "-w", "-t", str(STOP_WAIT), timeout=STOP_WAIT + 15
                )
                failed = proc.returncode != 0
            except (OSError, subprocess.SubprocessError):
                failed = True
            if failed:
                self._kill_postmaster()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _prepare_root(base_dir: Path, run_as: str | None) -> Path:
    if run_as is not None:
        # Every parent must be traversable by the postgres user: use /tmp, mode 0755.
        root = Path(tempfile.mkdtemp(prefix="sterilog-pg-", dir="/tmp"))
        entry = pwd.getpwnam(run_as)
        os.chmod(root, 0o755)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        return root
    base_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="pg-", dir=base_dir))
    if len(str(root / "sock")) > _MAX_SOCKDIR_LEN:
        shutil.rmtree(root, ignore_errors=True)
        root = Path(tempfile.mkdtemp(prefix="sterilog-pg-"))
    return root


def _system_user() -> str | None:
    """User to run PostgreSQL as: None for the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no {SYSTEM_USER!r} system user to run PostgreSQL as"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root but `runuser` is not available")
    return SYSTEM_USER


def start_postgres(base_dir: Path) -> PgServer:
    """initdb + start a throwaway server; raise PostgresUnavailable (with reason) on failure."""
    bindir = find_bindir()
    run_as = _system_user()
    root = _prepare_root(Path(base_dir), run_as)
    server = PgServer(
        datadir=root / "data",
        port=0,
        bindir=bindir,
        root=root,
        sockdir=root / "sock",
        logfile=root / "postgres.log",
        run_as=run_as,
    )
    try:
        _initdb(server)
        _configure(server)
        _start(server)
    except BaseException:
        server.stop()
        raise
    atexit.register(server.stop)
    return server


def _initdb(server: PgServer) -> None:
    assert server.bindir is not None
    args = [str(server.bindir / "initdb"), "-D", str(server.datadir), "-U", server.user]
    args += ["-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]
    try:
        proc = server._run(args, INITDB_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise PostgresUnavailable(f"initdb timed out after {INITDB_TIMEOUT:.0f}s") from None
    except OSError as exc:
        raise PostgresUnavailable(f"cannot run initdb: {exc}") from None
    if proc.returncode != 0:
        raise PostgresUnavailable(f"initdb failed (exit {proc.returncode}):\n{_output(proc)}")


def _configure(server: PgServer) -> None:
    assert server.sockdir is not None
    server.sockdir.mkdir(mode=0o755)
    if server.run_as is not None:
        entry = pwd.getpwnam(server.run_as)
        os.chown(server.sockdir, entry.pw_uid, entry.pw_gid)
    settings = {**_SETTINGS, "unix_socket_directories": str(server.sockdir)}
    lines = [f"{key} = {_conf_quote(value)}" for key, value in settings.items()]
    with open(server.datadir / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write("\n# sterilog test server\n" + "\n".join(lines) + "\n")


def _start(server: PgServer) -> None:
    assert server.logfile is not None
    message = ""
    for _attempt in range(START_ATTEMPTS):
        server.port = _free_port()
        args = ["start", "-w", "-t", str(START_WAIT), "-l", str(server.logfile)]
        args += ["-o", f"-p {server.port}"]
        try:
            proc = server._pg_ctl(*args, timeout=START_WAIT + 30)
        except subprocess.TimeoutExpired:
            message = f"pg_ctl start timed out after {START_WAIT + 30}s"
            break
        except OSError as exc:
            raise PostgresUnavailable(f"cannot run pg_ctl: {exc}") from None
        if proc.returncode == 0:
            return
        message = f"pg_ctl start failed (exit {proc.returncode}): {_output(proc)}"
        log = _tail(server.logfile)
        if "could not bind" not in log and "already in use" not in log:
            break
    raise PostgresUnavailable(
        f"{message}\n--- server log ({server.logfile}) ---\n{_tail(server.logfile)}"
    )
