"""Attachments: `attach KIND ID FILE`, `attachment list`, `attachment get`."""

from __future__ import annotations

from pathlib import Path

import click

from sterilog import output
from sterilog.cli.app import App, pass_app
from sterilog.clock import fmt_local
from sterilog.errors import UserError
from sterilog.services import attachments as svc
from sterilog.services.people import DAILY

_KINDS = click.Choice(list(svc.KINDS))


@click.command(
    "attach",
    epilog="\b\nExamples:\n"
    "  sterilog --operator ann attach bi 7 lab-report.pdf --note 'negative'\n"
    "  sterilog --operator boss attach sterilizer AC1 validation-2026.pdf\n"
    "  sterilog --operator boss attach lot 09506000134352/A1B2 recall-notice.pdf\n\n"
    "KIND is one of load, bi, sterilizer, recall, incident, exposure, lot, staff. A lot is "
    "GTIN/LOT; sterilizers and staff by their ID; the others by number. Files up to 20 MB.",
)
@click.argument("kind", type=_KINDS, metavar="KIND")
@click.argument("record_id", metavar="ID")
@click.argument("file", type=click.Path(dir_okay=False), metavar="FILE")
@click.option("--note", metavar="TEXT", help="What the document is.")
@pass_app
def attach(app: App, kind: str, record_id: str, file: str, note: str | None) -> None:
    """Keep an original document (PDF, photo, text) with a record.

    The bytes are stored in the database and their SHA-256 in the audit log: `audit verify`
    fails (exit 4) if they change. Nothing is replaced: attach a new version as a new file.
    """
    path = Path(file)
    try:
        svc.check_file_size(path.name, path.stat().st_size)
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror or exc}") from None
    with app.writing(DAILY, "attach documents") as ctx:
        row, shown = svc.attach(ctx, kind, record_id, filename=path.name, data=data, note=note)
        data_out = {
            "attachment_id": row.id,
            "kind": kind,
            "id": shown,
            "filename": row.filename,
            "media_type": row.media_type,
            "size": row.size,
            "sha256": row.sha256,
        }
    app.emit(
        data_out,
        f"Attachment {row.id}: {row.filename} ({row.size} bytes, {row.media_type}) kept with "
        f"{kind} {shown}; SHA-256 {row.sha256}.",
    )


@click.group()
def attachment() -> None:
    """List and retrieve attached documents."""


@attachment.command(
    "list",
    epilog="Examples: sterilog attachment list   |   sterilog attachment list load 42",
)
@click.argument("kind", type=_KINDS, required=False, metavar="[KIND")
@click.argument("record_id", required=False, metavar="ID]")
@pass_app
def attachment_list(app: App, kind: str | None, record_id: str | None) -> None:
    """List attachments (all, or one record's). A load lists its device file too."""
    if (kind is None) != (record_id is None):
        raise UserError("give both KIND and ID, or neither")
    with app.reading() as ctx:
        rid = None
        if kind is not None and record_id is not None:
            rid, _ = svc.resolve(ctx.session, kind, record_id)
        rows = svc.list_attachments(ctx.session, kind, rid)
        tz = ctx.clinic.tz
    out = [r.as_dict() for r in rows]
    lines = ["(none)"] if not rows else []
    for r in rows:
        lines.append(
            f"{r.id:>5}  {r.kind} {r.record_id}  {r.filename}  {r.size} B  {r.media_type}  "
            f"{fmt_local(r.recorded_at, tz)}  sha256 {r.sha256}"
            + (f"  ({r.note})" if r.note else "")
        )
    app.emit({"attachments": out}, lines)


@attachment.command("get", epilog="Example: sterilog attachment get 3 -o /tmp/spore-lab-report.pdf")
@click.argument("att_id", metavar="ATT_ID")
@click.option(
    "-o",
    "--output",
    "output_",
    required=True,
    metavar="PATH",
    help="Where to write the file (- for standard output).",
)
@output.force_option
@pass_app
def attachment_get(app: App, att_id: str, output_: str, force: bool) -> None:
    """Write an attachment's original bytes to PATH (refused if PATH exists, unless --force, or
    if the stored bytes no longer match their recorded SHA-256: exit 4)."""
    ident = svc.parse_attachment_id(att_id)
    if output_ == output.STDOUT and app.json:
        raise UserError(
            "-o - writes the file to standard output; it cannot be combined with --json"
        )
    target = output.check(output_, force=force, stdout_ok=True)
    with app.reading() as ctx:
        info, data = svc.get_attachment(ctx.session, ident)
    output.write_bytes(target, data)
    output.say(
        app,
        {**info.as_dict(), "output": str(target)},
        f"Wrote attachment {ident} ({info.filename}, {info.size} bytes) to {target}; "
        f"SHA-256 {info.sha256} checked.",
        target,
    )
