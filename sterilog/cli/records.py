"""Correction, sign-off, export and backup (SPEC §6.7): void, sign, export, backup."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from sterilog import db, output
from sterilog.cli.app import App, pass_app
from sterilog.clock import fmt_local, iso, parse_date
from sterilog.compliance.vocab import VOIDABLE_KINDS as KINDS
from sterilog.errors import IntegrityFailure, UnknownRecord, UserError
from sterilog.services.base import Ctx
from sterilog.services.people import MANAGER
from sterilog.services.signoff import MEANINGS

MAX_RECORD_ID = 2**31 - 1


def _record_id(raw: str, kind: str = "record") -> int:
    text = raw.strip()
    if text.isascii() and text.isdigit() and int(text) > MAX_RECORD_ID:
        raise UnknownRecord(kind, int(text))  # as SQLite says, on PostgreSQL too
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise UserError(
            f"ID {raw!r} is not a record number; use the number the record was given "
            "(e.g. `clean 12`, `load_id`, `bi_id`)"
        )
    return int(text)


def _progress_wanted(app: App) -> bool:
    return sys.stderr.isatty() and not app.json


# --- void --------------------------------------------------------------------------------------


@click.command(
    "void",
    help="Void a mistaken record (managers only): it stops counting everywhere but is never "
    "erased.\n\nReports show it struck through next to its void. KIND is one of: "
    + ", ".join(KINDS)
    + ". ID is the record's number as printed when it was recorded and in lists: the clean, "
    "load, discard, service, incident or recall ID; for bi-read the READ ID shown by `bi read` "
    "and `bi list` (not the BI ID). "
    "Sessions, refusals and cartridge receipts record physical acts and cannot be voided.",
    epilog="Example: sterilog --operator boss void room-clean 12 "
    "--reason 'entered for the wrong room'",
)
@click.argument("kind", type=click.Choice(list(KINDS)), metavar="KIND")
@click.argument("record_id", metavar="ID")
@click.option("--reason", required=True, help="Why the record was a mistake (kept and printed).")
@pass_app
def void(app: App, kind: str, record_id: str, reason: str) -> None:
    from sterilog.services import voids

    rid = _record_id(record_id, kind)
    with app.writing(MANAGER, "void records") as ctx:
        row, words = voids.void_in_words(ctx, kind, rid, reason=reason)
        data = {
            "void_id": row.id,
            "kind": row.kind,
            "record_id": row.record_id,
            "reason": row.reason,
            "at": iso(row.at),
            "voided": words,
        }
        when = fmt_local(row.at, ctx.clinic.tz)
    app.emit(
        data,
        [
            f"Voided {words} (void {data['void_id']}, {when}).",
            "It no longer counts; the original stays in the log.",
            f"Reason: {data['reason']}",
        ],
    )


# --- sign --------------------------------------------------------------------------------------


@click.command("sign", epilog="Example: sterilog --operator boss sign 2026-11 --meaning approved")
@click.argument("month", metavar="MONTH")
@click.option(
    "--meaning",
    required=True,
    type=click.Choice(list(MEANINGS)),
    help="What the signature means: reviewed (read and checked) or approved.",
)
@pass_app
def sign(app: App, month: str, meaning: str) -> None:
    """E-sign a month (YYYY-MM) as its manager; printed on that month's report.

    The signature records your name, the time, its meaning and the audit chain head at that
    moment. A month may be signed at any time; signing again adds another signature.
    """
    from sterilog.services import signoff

    key = signoff.month_key(month)
    with app.writing(MANAGER, "sign months off") as ctx:
        row = signoff.sign(ctx, key, meaning)
        data = {
            "signature_id": row.id,
            "month": row.month,
            "meaning": row.meaning,
            "name": row.name,
            "at": iso(row.at),
            "head": row.head,
        }
        when = fmt_local(row.at, ctx.clinic.tz)
        zone = ctx.clinic.tz_name
    app.emit(
        data,
        [
            f"Signed {data['month']} as {meaning} by {data['name']} at {when} ({zone}) "
            f"(signature {data['signature_id']}).",
            f"Audit chain head at signing: {data['head']}",
        ],
    )


# --- export ------------------------------------------------------------------------------------


@contextmanager
def _snapshot(app: App) -> Iterator[Ctx]:
    """One consistent view of the database for a multi-query read (REPEATABLE READ on
    PostgreSQL; a SQLite read transaction is a snapshot already)."""
    with app.reading() as first:
        clinic = first.clinic
    engine = app.engine()
    if not db.is_sqlite(engine):
        engine = engine.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    with db.read_session(engine) as session:
        yield Ctx(session=session, now=app.clock.now, clock=app.clock.source, clinic=clinic)


@click.command(
    "export",
    epilog="Example: sterilog export --from 2026-11-01 --to 2026-11-30 --format csv "
    "-o inspection-2026-11",
)
@click.option("--from", "date_from", required=True, metavar="DATE", help="First day (YYYY-MM-DD).")
@click.option("--to", "date_to", required=True, metavar="DATE", help="Last day, included.")
@click.option(
    "--format", "fmt", required=True, type=click.Choice(["csv", "json"]), help="Output format."
)
@click.option(
    "-o",
    "--output",
    "output_",
    required=True,
    metavar="PATH",
    help="json: the file to write (- for standard output). csv: a new or empty folder (its "
    "parent must exist).",
)
@output.force_option
@pass_app
def export(app: App, date_from: str, date_to: str, fmt: str, output_: str, force: bool) -> None:
    """Export every record of a period (clinic days, both included) for an inspector.

    json: one file with a list per record type and a `meta` object. csv: one CSV per record
    type plus manifest.json with each file's SHA-256 and row count; cells that a spreadsheet
    would run as a formula are prefixed with '. Registers are included whole.
    """
    from sterilog import __version__
    from sterilog.services import export as svc

    start = parse_date(date_from, "--from")
    end = parse_date(date_to, "--to")
    svc.check_period(start, end)
    if fmt == "json":
        out: Path | output.Target = output.check(
            output_, force=force, stdout_ok=True, json_mode=app.json
        )
    else:
        if force:
            raise UserError("--force applies to --format json; a CSV export needs a new folder")
        out = Path(output_)
    progress = None
    if _progress_wanted(app):

        def progress(name: str, n: int) -> None:
            click.echo(f"\r  {name}: {n:,} rows...".ljust(40), err=True, nl=False)

    with _snapshot(app) as ctx:
        result = svc.export(
            ctx.session,
            ctx.clinic,
            ctx.now,
            start,
            end,
            fmt,
            out,
            progress=progress,
            version=__version__,
        )
    if progress is not None:
        click.echo("\r".ljust(41) + "\r", err=True, nl=False)
    data = {
        "path": result.path,
        "format": result.format,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "head": result.head,
        "counts": result.counts,
    }
    if result.sha256:
        data["sha256"] = result.sha256
    main_types = ("sessions", "refusals", "cycles", "room_cleans", "device_cleans", "audit")
    summary = ", ".join(f"{result.counts[t]} {t}" for t in main_types)
    lines = [f"Exported {start} to {end} as {fmt} to {result.path}", f"  {summary}"]
    if result.sha256:
        lines.append(f"  SHA-256 {result.sha256}")
    else:
        lines.append(f"  {len(result.files)} CSV files; SHA-256 of each in manifest.json")
    lines.append(f"  audit chain head {result.head}")
    if isinstance(out, output.Target):
        output.say(app, data, lines, out)
    else:
        app.emit(data, lines)


# --- backup ------------------------------------------------------------------------------------


@click.command("backup", epilog="Example: sterilog backup /mnt/usb/sterilog-2026-11-24.db")
@click.argument("path", metavar="PATH")
@output.force_option
@pass_app
def backup(app: App, path: str, force: bool) -> None:
    """Copy a live SQLite database consistently, while other terminals keep writing.

    The copy (mode 0600, never over an existing file unless --force) is checked with SQLite's
    integrity check and `audit verify`; exit 4 when either fails (the copy is kept). PostgreSQL: use
    pg_dump (docs/operations.md).
    """
    from sterilog.services import backup as svc

    with app.reading():
        pass  # an initialised sterilog database, or a clear error
    progress = None
    if _progress_wanted(app):

        def progress(done: int, total: int) -> None:
            click.echo(f"\r  copied {done:,} of {total:,} pages...", err=True, nl=False)

    result = svc.backup(app.engine(), path, progress=progress, force=force)
    if progress is not None:
        click.echo("", err=True)
    data = {
        "path": result.path,
        "bytes": result.bytes,
        "integrity": result.integrity,
        "audit_ok": result.audit_ok,
        "entries": result.entries,
        "head": result.head,
        "problems": result.problems,
    }
    lines = [
        f"Backed up to {result.path} ({result.bytes:,} bytes).",
        f"  integrity check: {result.integrity}",
        f"  audit verify: {'OK' if result.audit_ok else 'FAILED'}, {result.entries} entries, "
        f"head {result.head}",
    ]
    lines += [f"  {p['record']}: {p['message']}" for p in result.problems[:20]]
    app.emit(data, lines)
    if not result.ok:
        raise IntegrityFailure(
            f"the backup at {result.path} was written but does not verify "
            f"(integrity: {result.integrity}; audit ok: {result.audit_ok}); the live database "
            "may be damaged: run `sterilog audit verify` on it"
        )
