"""`sterilog report monthly|audit|trace` and `sterilog label load` (SPEC §8).

Reports are reads: anyone may run them, no operator needed. Each one gathers its rows inside a
read transaction, lays the PDF out after it, and writes `-o FILE` (never creating directories).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from sterilog import output
from sterilog.cli.app import App, pass_app
from sterilog.cli.params import RecordId
from sterilog.clock import parse_date, parse_month
from sterilog.errors import UserError

_OUTPUT_HELP = "The PDF file to write (its directory must exist); - for standard output."


def _target(app: App, raw: str, force: bool) -> output.Target:
    """Check `-o` before any work (sterilog.output: refuse an existing file unless --force)."""
    return output.check(raw, force=force, stdout_ok=True, json_mode=app.json)


def _progress(app: App, what: str) -> Callable[[int], None] | None:
    """Progress on stderr, only when a person is watching it."""
    if app.json or not sys.stderr.isatty():
        return None

    def show(pages: int) -> None:
        click.echo(
            f"\r  {what}: {pages} page{'s' if pages != 1 else ''} laid out...", err=True, nl=False
        )

    return show


def _done(
    app: App,
    target: output.Target,
    data: bytes,
    progress: Callable[[int], None] | None,
    what: str,
) -> None:
    if progress is not None:
        click.echo("", err=True)
    output.write_bytes(target, data)
    output.say(app, {"path": str(target)}, f"{what} written to {target}", target)


def _author(app: App, ctx_actor: object) -> str:
    name = getattr(ctx_actor, "name", None)
    return str(name) if name else "sterilog"


@click.group()
def report() -> None:
    """PDF reports: monthly compliance, audit log, trace (any role may run them)."""


@report.command(
    "monthly", epilog="Example: sterilog report monthly --month 2026-11 -o november.pdf"
)
@click.option("--month", required=True, metavar="YYYY-MM", help="The month to report.")
@click.option("-o", "--output", "output_", required=True, metavar="FILE", help=_OUTPUT_HELP)
@output.force_option
@pass_app
def monthly_cmd(app: App, month: str, output_: str, force: bool) -> None:
    """The monthly compliance report: summary and gaps, charts, every log, integrity proof and
    sign-off. Any gap stamps every page INCOMPLETE."""
    year, number = parse_month(month)
    target = _target(app, output_, force)
    from sterilog.reports import monthly

    with app.reading() as ctx:
        data = monthly.rows(
            ctx.session, year, number, tz=ctx.clinic.tz, now=ctx.now, rules=ctx.clinic.rules
        )
        clinic, tz_name, now = ctx.clinic.name, ctx.clinic.tz_name, ctx.now
        training = ctx.clinic.training
        author = _author(app, ctx.actor)
    progress = _progress(app, "monthly report")
    pdf = monthly.render(
        data,
        generated_at=now,
        clinic=clinic,
        tz_name=tz_name,
        author=author,
        target=None,
        progress=progress,
        training=training,
    )
    _done(
        app, target, pdf, progress, "Monthly report" + (" (INCOMPLETE)" if data.incomplete else "")
    )


@report.command(
    "audit",
    epilog="Example: sterilog report audit --from 2026-11-01 --to 2026-11-30 -o audit.pdf",
)
@click.option("--from", "start", required=True, metavar="DATE", help="First clinic day.")
@click.option("--to", "stop", required=True, metavar="DATE", help="Last clinic day (inclusive).")
@click.option("-o", "--output", "output_", required=True, metavar="FILE", help=_OUTPUT_HELP)
@output.force_option
@pass_app
def audit_cmd(app: App, start: str, stop: str, output_: str, force: bool) -> None:
    """Every audit entry in the period with its full hash, and the verification of the whole
    chain."""
    first = parse_date(start, "--from")
    last = parse_date(stop, "--to")
    if first > last:
        raise UserError("--from is after --to")
    target = _target(app, output_, force)
    from sterilog.reports import audit_report

    with app.reading() as ctx:
        data = audit_report.rows(ctx.session, first, last, tz=ctx.clinic.tz)
        clinic, tz_name, now = ctx.clinic.name, ctx.clinic.tz_name, ctx.now
        training = ctx.clinic.training
        author = _author(app, ctx.actor)
    progress = _progress(app, "audit report")
    pdf = audit_report.render(
        data,
        generated_at=now,
        clinic=clinic,
        tz_name=tz_name,
        author=author,
        target=None,
        progress=progress,
        training=training,
    )
    _done(app, target, pdf, progress, "Audit report")


@report.group("trace")
def trace_group() -> None:
    """Trace reports: back from a session or client, forward from a lot, load or BI."""


def _trace(app: App, output_: str, force: bool, gather: Callable[..., object]) -> None:
    target = _target(app, output_, force)
    from sterilog.reports import trace_report

    with app.reading() as ctx:
        data = gather(ctx.session)
        clinic, tz_name, now = ctx.clinic.name, ctx.clinic.tz_name, ctx.now
        training = ctx.clinic.training
        author = _author(app, ctx.actor)
    progress = _progress(app, "trace report")
    pdf = trace_report.render(
        data,  # type: ignore[arg-type]
        generated_at=now,
        clinic=clinic,
        tz_name=tz_name,
        author=author,
        target=None,
        progress=progress,
        training=training,
    )
    _done(app, target, pdf, progress, "Trace report")


_OUT = click.option("-o", "--output", "output_", required=True, metavar="FILE", help=_OUTPUT_HELP)


@trace_group.command("session", epilog="Example: sterilog report trace session 42 -o s42.pdf")
@click.argument("session_id", type=RecordId("session"))
@_OUT
@output.force_option
@pass_app
def trace_session(app: App, session_id: int, output_: str, force: bool) -> None:
    """Everything behind one session."""
    from sterilog.reports import trace_report

    _trace(app, output_, force, lambda db: trace_report.session_rows(db, session_id))


@trace_group.command("client", epilog="Example: sterilog report trace client C-0042 -o c.pdf")
@click.argument("client")
@_OUT
@output.force_option
@pass_app
def trace_client(app: App, client: str, output_: str, force: bool) -> None:
    """Everything behind every session of one client."""
    from sterilog.reports import trace_report

    _trace(app, output_, force, lambda db: trace_report.client_rows(db, client))


@trace_group.command(
    "lot", epilog="Example: sterilog report trace lot --gtin 09506000134352 --lot A1B2 -o lot.pdf"
)
@click.option("--gtin", required=True)
@click.option("--lot", required=True)
@_OUT
@output.force_option
@pass_app
def trace_lot(app: App, gtin: str, lot: str, output_: str, force: bool) -> None:
    """Every client treated with a cartridge lot (the notification list), then the lot."""
    from sterilog.reports import trace_report

    _trace(app, output_, force, lambda db: trace_report.lot_rows(db, gtin, lot))


@trace_group.command("load", epilog="Example: sterilog report trace load 17 -o load17.pdf")
@click.argument("load_id", type=RecordId("load"))
@_OUT
@output.force_option
@pass_app
def trace_load(app: App, load_id: int, output_: str, force: bool) -> None:
    """Every client treated with a pack from one load, then the load's evidence."""
    from sterilog.reports import trace_report

    _trace(app, output_, force, lambda db: trace_report.load_rows(db, load_id))


@trace_group.command("bi", epilog="Example: sterilog report trace bi 5 -o bi5.pdf")
@click.argument("bi_id", type=RecordId("BI"))
@_OUT
@output.force_option
@pass_app
def trace_bi(app: App, bi_id: int, output_: str, force: bool) -> None:
    """After a positive BI: every client treated with a pack from a suspect load."""
    from sterilog.reports import trace_report

    _trace(app, output_, force, lambda db: trace_report.bi_rows(db, bi_id))


# --- labels ------------------------------------------------------------------------------------


@click.group()
def label() -> None:
    """Pack labels with a 2-D barcode (QR) of the pack ID."""


@label.command("load", epilog="Example: sterilog label load 17 -o labels.pdf")
@click.argument("load_id", type=RecordId("load"))
@click.option("-o", "--output", "output_", required=True, metavar="FILE", help=_OUTPUT_HELP)
@output.force_option
@pass_app
def label_load(app: App, load_id: int, output_: str, force: bool) -> None:
    """One label per pack of a passed load, on an A4 sheet of 3 x 8 labels (63.5 x 33.9 mm).

    A failed, suspect or voided load is refused: its packs are not sterile and must not be
    labelled as if they were."""
    target = _target(app, output_, force)
    from sterilog.reports import labels

    with app.reading() as ctx:
        data = labels.rows(ctx.session, load_id, tz=ctx.clinic.tz, rules=ctx.clinic.rules)
        clinic, tz_name, now = ctx.clinic.name, ctx.clinic.tz_name, ctx.now
        training = ctx.clinic.training
    pdf = labels.render(
        data, generated_at=now, clinic=clinic, tz_name=tz_name, target=None, training=training
    )
    output.write_bytes(target, pdf)
    output.say(
        app,
        {"path": str(target), "load_id": load_id, "labels": len(data.packs)},
        f"{len(data.packs)} label{'s' if len(data.packs) != 1 else ''} for load {load_id} "
        f"written to {target}",
        target,
    )
