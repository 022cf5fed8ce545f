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
  into place under PATH (sterilog/output.py). An existing PATH is replaced only with --force.
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

from sterilog import audit, output, tempfiles
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


def check_target(raw: str, force: bool = False) -> output.Target:
    """PATH as sterilog.output checks every output: an existing file only with --force."""
    return output.check(raw, force=force, option="PATH")


def backup(
    engine: Engine, raw_target: str, *, progress: Progress | None = None, force: bool = False
) -> BackupResult:
    if engine.dialect.name != "sqlite":
        raise UserError(
            "backup copies SQLite databases only; for PostgreSQL use pg_dump "
            "(see docs/operations.md)"
        )
    checked = check_target(raw_target, force)
    assert checked.path is not None
    target = checked.path
    fd, tmp_name = tempfiles.mkstemp(target.parent, target.name)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        integrity = _copy(engine, tmp, progress)
        verification = _verify(tmp)
        output.publish(tmp, checked)
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
