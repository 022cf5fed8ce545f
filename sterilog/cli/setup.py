"""`sterilog init` and `sterilog db upgrade|current|check`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sterilog import db
from sterilog.cli.app import App, pass_app
from sterilog.errors import IntegrityFailure, UserError

if TYPE_CHECKING:
    from sterilog.services.base import Clinic
    from sterilog.services.setup import InitRequest


@click.command(
    "init",
    epilog="Example: sterilog init --clinic 'Skin Studio' --tz Europe/London "
    "--manager alice --name 'Alice Smith'",
)
@click.option("--clinic", default="My clinic", show_default=True, help="Clinic name.")
@click.option("--tz", "tz_name", help="IANA time zone [default: the system zone].")
@click.option(
    "--rules",
    default="default",
    show_default=True,
    help="Rule pack: default, uk-htm-01-05, or a FILE.toml.",
)
@click.option("--scanner-gs", help="Character your scanner types instead of GS (ASCII 29).")
@click.option("--manager", help="ID of the first manager (a new database needs one).")
@click.option("--name", "manager_name", help="Name of the first manager.")
@click.option(
    "--training",
    is_flag=True,
    help="A training database: accepts STERILOG_NOW for drills; every PDF page says "
    "TRAINING — NOT A CLINICAL RECORD. Never for real clinic records.",
)
@pass_app
def init_cmd(
    app: App,
    clinic: str,
    tz_name: str | None,
    rules: str,
    scanner_gs: str | None,
    manager: str | None,
    manager_name: str | None,
    training: bool,
) -> None:
    """Create a clinic database, or upgrade an existing one (never losing data).

    A new live database needs its first manager's PIN: asked at a terminal (hidden), else read
    from STERILOG_NEW_PIN. STERILOG_NOW is refused on live databases; drills and training use
    `init --training`.
    """
    from sterilog import migrate
    from sterilog.clock import system_zone_name, zone
    from sterilog.services.base import Ctx, load_clinic
    from sterilog.services.setup import (
        InitRequest,
        check_scanner_gs,
        initialise,
        is_initialised,
    )

    url = app.url
    existed = db.sqlite_file_exists(url) or url.get_backend_name() != "sqlite"
    if existed:
        engine = app.engine()
        with engine.connect() as conn:
            initialised = is_initialised(conn)
        if initialised:
            migrate.upgrade(engine)
            given = [
                opt
                for opt, val in (
                    ("--clinic", clinic != "My clinic"),
                    ("--tz", tz_name),
                    ("--rules", rules != "default"),
                    ("--scanner-gs", scanner_gs),
                    ("--manager", manager),
                    ("--name", manager_name),
                    ("--training", training),
                )
                if val
            ]
            note = f"; ignored {', '.join(given)}" if given else ""
            app.emit(
                {
                    "initialised": False,
                    "upgraded": True,
                    "revision": migrate.current(engine),
                    "ignored": given,
                },
                f"Database already initialised: upgraded to the latest schema{note}.",
            )
            return

    from sterilog.rulepack import RulePackError, load_pack

    if not manager or not manager_name:
        raise UserError("a new database needs its first manager: --manager ID --name NAME")
    if not training and os.environ.get("STERILOG_NOW"):
        from sterilog.cli.app import LIVE_CLOCK_MESSAGE

        raise UserError(LIVE_CLOCK_MESSAGE)
    from sterilog.services import validate as v

    v.ident(manager, "--manager")
    v.name(manager_name, "--name")
    v.name(clinic, "--clinic")
    tz_value = tz_name or system_zone_name()
    zone(tz_value)
    try:
        pack = load_pack(rules)
    except RulePackError as error:
        raise UserError(str(error)) from None
    manager_pin = _first_manager_pin(manager, required=not training)
    req = InitRequest(
        clinic=clinic,
        tz_name=tz_value,
        rules_name=pack.name,
        rules_toml=pack.text,
        scanner_gs=check_scanner_gs(scanner_gs),
        manager=manager,
        manager_name=manager_name,
        training=training,
        manager_pin=manager_pin,
    )
    created = not db.sqlite_file_exists(url) and url.get_backend_name() == "sqlite"
    try:
        engine = app.engine(create=True)
        migrate.upgrade(engine)
        clock = app.clock
        with db.write_session(engine) as session:
            ctx = Ctx(
                session=session, now=clock.now, clock=clock.source, clinic=_bootstrap_clinic(req)
            )
            initialise(ctx, req)
            load_clinic(session)
    except BaseException:
        if created:
            if app._engine is not None:
                app._engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    Path(str(url.database) + suffix).unlink()
        raise
    where = db.describe(url)
    app.emit(
        {
            "initialised": True,
            "db": where,
            "clinic": req.clinic,
            "tz": req.tz_name,
            "rules": req.rules_name,
            "manager": req.manager,
            "training": req.training,
        },
        [
            f"Initialised {'TRAINING database for ' if req.training else ''}{req.clinic!s} "
            f"({req.tz_name}, rules {req.rules_name}) at {where}.",
            f"First manager: {req.manager}. Next: sterilog --operator {req.manager} staff add ...",
        ],
    )


def _first_manager_pin(manager: str, *, required: bool) -> str | None:
    """STERILOG_NEW_PIN, else a hidden prompt at a terminal. A training database may go without."""
    import sys

    from sterilog.services.people import check_pin_format

    env = os.environ.get("STERILOG_NEW_PIN")
    if env:
        check_pin_format(env)
        return env
    if sys.stdin.isatty():
        value: str = click.prompt(
            f"PIN for {manager}", hide_input=True, confirmation_prompt=True, err=True
        )
        check_pin_format(value)
        return value
    if required:
        raise UserError(
            f"the first manager {manager!r} needs a PIN: give it at the prompt or in "
            "STERILOG_NEW_PIN (a training database, init --training, may go without)"
        )
    return None


def _bootstrap_clinic(req: InitRequest) -> Clinic:
    from zoneinfo import ZoneInfo

    from sterilog.services.base import Clinic

    return Clinic(
        name=req.clinic,
        tz_name=req.tz_name,
        tz=ZoneInfo(req.tz_name),
        rules_name=req.rules_name,
        rules_toml=req.rules_toml,
        scanner_gs=req.scanner_gs,
        training=req.training,
    )


@click.group("db")
def db_group() -> None:
    """Schema migrations and privileges: upgrade, current, check, grant."""


@db_group.command("upgrade", epilog="Example: sterilog --db clinic.db db upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Upgrade the database schema to the latest revision."""
    from sterilog import migrate

    engine = app.engine()
    migrate.upgrade(engine)
    rev = migrate.current(engine)
    app.emit({"revision": rev}, f"Schema at revision {rev}.")


@db_group.command("current", epilog="Example: sterilog db current")
@pass_app
def db_current(app: App) -> None:
    """Show the database's schema revision and the latest one available."""
    from sterilog import migrate

    engine = app.engine()
    rev, head = migrate.current(engine), migrate.head_revision(engine)
    app.emit(
        {"revision": rev, "head": head, "up_to_date": rev == head},
        f"Schema revision {rev} (latest {head}).",
    )


@db_group.command("check", epilog="Example: sterilog db check")
@pass_app
def db_check(app: App) -> None:
    """Check the live schema: it must match the models and, object by object (tables, columns,
    indexes, triggers, functions...), the schema the migrations define at its revision; on
    SQLite, also the file itself (PRAGMA integrity_check: every index agrees with its table)."""
    from sterilog import migrate

    engine = app.engine()
    rev, head = migrate.current(engine), migrate.head_revision(engine)
    diffs = migrate.check(engine)
    problems = [str(d) for d in diffs]
    from sterilog import audit, schema

    with db.read_session(engine) as session:
        problems += [f"{name}: {message}" for name, message in schema.compare(session.connection())]
        # the file itself (SQLite): every index agrees with its table, every page is sound
        problems += [f"{p.record}: {p.message}" for p in audit.file_problems(session)]
    if rev != head:
        problems.insert(0, f"schema at {rev}, latest is {head}: run `sterilog db upgrade`")
    app.emit(
        {"ok": not problems, "revision": rev, "differences": problems},
        [
            "Models and migrations agree." if not problems else "Schema differs:",
            *[f"  {p}" for p in problems],
        ],
    )
    if problems:
        raise IntegrityFailure("the database schema or file does not pass its check")


@db_group.command(
    "grant",
    epilog="Example (as the schema owner): sterilog --db postgresql+psycopg://sterilog_owner@db/"
    "clinic db grant sterilog_terminal",
)
@click.argument("role")
@pass_app
def db_grant(app: App, role: str) -> None:
    """Give an existing PostgreSQL login ROLE exactly what the terminals need.

    Run it as the owner of the schema (the role that runs `db upgrade`). ROLE may then run
    every sterilog command except `db upgrade` and `db grant`; it can only read and insert:
    it cannot UPDATE, DELETE or TRUNCATE records, ALTER or DROP anything, create or disable
    triggers, or set session_replication_role. Run it again after each `db upgrade`.
    """
    from sterilog import privileges
    from sterilog.services import validate as v

    v.ident(role, "ROLE")
    engine = app.engine()
    with engine.begin() as conn:
        granted = privileges.grant(conn, role)
    app.emit(
        {"role": granted.role, "schema": granted.schema, "tables": len(granted.tables)},
        f"Granted {granted.role} read and insert on {len(granted.tables)} tables in schema "
        f"{granted.schema} (no update, delete, truncate, DDL or triggers).",
    )
