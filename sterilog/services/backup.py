"""`sterilog backup PATH` (SPEC §6.7): a consistent copy of a live SQLite database.

How the copy stays consistent while treatment rooms keep writing:

- SQLite's online backup API copies the database page by page. Left to itself it restarts
  whenever another process writes between two steps, which on a busy clinic PC could go on
  for ever. So the source connection first opens a read transaction and holds it for the
  whole copy: in WAL mode that pins one snapshot (the copy is exactly the database at that
  moment) while writers go on appending to the WAL, never blocked.
- The copy is written to a temporary file next to PATH (mode 0600, locked while it is
  written; a killed run's leftover is removed by the next backup or export, see
  sterilog/tempfiles.py), switched to a self-contained rollback-journal file
  (`journal_mode=DELETE`: no -wal/-shm companions to forget), checked with
  `PRAGMA integrity_check` and `audit verify` (opened read-only), and only then linked
  into place under PATH. An existing PATH is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from sterilog import audit, tempfiles
from sterilog.errors import UserError

PAGES_PER_STEP = 1024
Progress = Callable[[int, int], None]


@dataclass
class BackupResult:
    path: str
    bytes: int
    integrity: str
    audit_ok: bool
    entries: int
    head: str
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.integrity == "ok" and self.audit_ok


def check_target(raw: str) -> Path:
    path = Path(raw).expanduser().absolute()
    if not path.parent.is_dir():
        raise UserError(
            f"directory {str(path.parent)!r} does not exist; create it first or choose "
            "another backup path"
        )
    if path.exists() or path.is_symlink():
        raise UserError(
            f"{str(path)!r} already exists; a backup never overwrites a file: choose a new "
            "name (for example with today's date)"
        )
    return path


def backup(engine: Engine, raw_target: str, *, progress: Progress | None = None) -> BackupResult:
    if engine.dialect.name != "sqlite":
        raise UserError(
            "backup copies SQLite databases only; for PostgreSQL use pg_dump "
            "(see docs/operations.md)"
        )
    target = check_target(raw_target)
    fd, tmp_name = tempfiles.mkstemp(target.parent, target.name)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        integrity = _copy(engine, tmp, progress)
        verification = _verify(tmp)
        _publish(tmp, target)
    finally:
        for leftover in (tmp, Path(f"{tmp}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        tempfiles.release(tmp)
    return BackupResult(
        path=str(target),
        bytes=target.stat().st_size,
        integrity=integrity,
        audit_ok=verification.ok,
        entries=verification.entries,
        head=verification.head,
        problems=[{"record": p.record, "message": p.message} for p in verification.problems],
    )


def _copy(engine: Engine, tmp: Path, progress: Progress | None) -> str:
    raw = engine.raw_connection()
    try:
        src: sqlite3.Connection = raw.driver_connection  # type: ignore[assignment]
        # Pin one snapshot for the whole copy (see the module docstring).
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(tmp, isolation_level=None)
        try:

            def step(_status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(total - remaining, total)

            src.backup(dst, pages=PAGES_PER_STEP, progress=step)
            src.execute("ROLLBACK")
            dst.execute("PRAGMA journal_mode = DELETE").fetchone()
            rows = dst.execute("PRAGMA integrity_check").fetchall()
        finally:
            dst.close()
    finally:
        raw.close()
    messages = [str(r[0]) for r in rows]
    return "ok" if messages == ["ok"] else "; ".join(messages[:20])


def _verify(path: Path) -> audit.Verification:
    uri = path.as_uri() + "?mode=ro"

    def connect() -> Any:
        return sqlite3.connect(uri, uri=True)

    engine = create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)
    try:
        with Session(engine) as session, session.begin():
            return audit.verify(session)
    finally:
        engine.dispose()


def _publish(tmp: Path, target: Path) -> None:
    """Move the finished copy to `target` without ever replacing an existing file."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, target)  # fails if target appeared meanwhile: never overwrite
    except FileExistsError:
        raise UserError(f"{str(target)!r} already exists; choose a new name") from None
    except OSError:
        # A file system without hard links: a plain rename, after checking again.
        if target.exists():
            raise UserError(f"{str(target)!r} already exists; choose a new name") from None
        os.replace(tmp, target)
    if os.name == "posix":
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
