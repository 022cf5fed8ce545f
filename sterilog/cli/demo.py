"""`sterilog demo`: a realistic clinic month in a new SQLite database, and its monthly PDF."""

from __future__ import annotations

import contextlib
import shlex
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sterilog import output
from sterilog.cli.app import App, pass_app
from sterilog.errors import UserError

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable

    from sqlalchemy import Engine

DB_NAME = "sterilog.db"
SUFFIXES = ("", "-wal", "-shm")


def _target_dir(raw: Path) -> Path:
    target = raw.expanduser().absolute()
    if target.exists():
        if not target.is_dir():
            raise UserError(f"--dir {str(target)!r} is not a directory")
        return target
    if not target.parent.is_dir():
        raise UserError(
            f"directory {str(target.parent)!r} does not exist; create it first or choose "
            "another --dir"
        )
    target.mkdir()
    return target


def _replaceable(path: Path) -> bool:
    """A database the demo made (its first audit entry ran on the demo's clock), or one that
    holds no record at all (a demo killed before its first act). Anything else is kept."""
    from sterilog.services.demo import CLOCK

    if path.stat().st_size == 0:
        return True
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT clock FROM audit_log ORDER BY seq LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return row is None or row[0] == CLOCK


def _remove(db_path: Path) -> None:
    for suffix in SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            Path(str(db_path) + suffix).unlink()


def _write_monthly_pdf(
    engine: Engine,
    year: int,
    month: int,
    path: Path,
    generated_at: dt.datetime,
    progress: Callable[[int], None] | None,
) -> None:
    """The month's report, through the same functions `sterilog report monthly` calls."""
    from sterilog import db
    from sterilog.reports import monthly
    from sterilog.services.base import load_clinic

    with db.read_session(engine) as session:
        clinic = load_clinic(session)
        data = monthly.rows(
            session, year, month, tz=clinic.tz, now=generated_at, rules=clinic.rules
        )
    pdf = monthly.render(
        data,
        generated_at=generated_at,
        clinic=clinic.name,
        tz_name=clinic.tz_name,
        author="sterilog",
        target=None,
        progress=progress,
        training=clinic.training,
    )
    # The demo's own report is replaced on a re-run; the rename replaces a link, never follows it.
    output.write_bytes(output.Target(path, force=True, shown=str(path)), pdf)


@click.command(
    "demo",
    epilog="Example: sterilog demo --dir ./sterilog-demo && "
    "sterilog --db ./sterilog-demo/sterilog.db status",
)
@click.option(
    "--dir",
    "directory",
    default="sterilog-demo",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Directory for the demo database and its monthly PDF (created if its parent exists).",
)
@pass_app
def demo(app: App, directory: Path) -> None:
    """Build a realistic demo clinic month in DIR/sterilog.db and write its monthly PDF.

    The month is the last full calendar month before now (STERILOG_NOW works), in the clinic's
    zone Europe/London. --db and STERILOG_DB are ignored; a demo database already in DIR is
    replaced, any other database there is left alone (exit 1).
    """
    from zoneinfo import ZoneInfo

    from sqlalchemy.engine import URL

    from sterilog import db, migrate
    from sterilog.services import demo as svc

    target = _target_dir(directory)
    db_path = target / DB_NAME
    if any(Path(str(db_path) + s).exists() for s in SUFFIXES):
        if db_path.exists() and not _replaceable(db_path):
            raise UserError(
                f"{str(db_path)!r} exists and is not a demo database; it is never replaced. "
                "Choose another --dir"
            )
        _remove(db_path)

    year, month = svc.previous_month(app.clock.now, ZoneInfo(svc.TZ_NAME))
    label = f"{year:04d}-{month:02d}"
    pdf_path = target / f"monthly-{label}.pdf"
    progress = pages = None
    if sys.stderr.isatty() and not app.json:

        def progress(day: dt.date, n: int, sessions: int) -> None:
            click.echo(
                f"\r  demo month {label}: day {n:>2}, {sessions} sessions", err=True, nl=False
            )

        def pages(n: int) -> None:
            click.echo(f"\r  monthly report: {n} pages laid out...", err=True, nl=False)

    url = URL.create("sqlite+pysqlite", database=str(db_path))
    started = time.monotonic()
    engine = db.make_engine(url, create_file=True)
    try:
        migrate.upgrade(engine)
        result = svc.build(engine, year, month, progress=progress)
        if progress is not None:
            click.echo("", err=True)
        _write_monthly_pdf(engine, year, month, pdf_path, app.clock.now, pages)
        if pages is not None:
            click.echo("", err=True)
    except BaseException:
        engine.dispose()
        _remove(db_path)
        with contextlib.suppress(FileNotFoundError):
            pdf_path.unlink()
        raise
    engine.dispose()
    db.secure_sqlite_files(url)
    elapsed = time.monotonic() - started
    codes = ", ".join(f"{code} {n}" for code, n in result.refusal_codes.items())
    app.emit(
        {
            "path": str(pdf_path),
            "db": str(db_path),
            "month": result.month,
            "clinic": result.clinic,
            "sessions": result.sessions,
            "refusals": result.refusals,
            "refusal_codes": result.refusal_codes,
            "positive_bi": result.positive_bi,
            "suspect_loads": result.suspect_loads,
            "bi_sessions_affected": result.bi_sessions_affected,
            "recall": result.recall,
            "incident_session": result.incident_session,
            "seconds": round(elapsed, 1),
        },
        [
            f"Demo clinic {result.clinic!s}, month {result.month}: {result.sessions} sessions, "
            f"{result.refusals} refusals ({codes}).",
            f"Database: {db_path}",
            f"Monthly report: {pdf_path}",
            f"Try: sterilog --db {shlex.quote(str(db_path))} trace bi {result.positive_bi}",
        ],
    )
