"""`sterilog notify` and `sterilog settings notify` (issue 16)."""

from __future__ import annotations

import json
import os

import click

from sterilog.cli.app import App, pass_app
from sterilog.services.people import MANAGER


@click.command(
    "notify",
    epilog="Examples: sterilog notify --dry-run\n\n"
    "crontab: */30 7-19 * * * STERILOG_DB=... sterilog notify  (docs/operations.md)",
)
@click.option("--dry-run", is_flag=True, help="Print what would be sent; send and record nothing.")
@pass_app
def notify(app: App, dry_run: bool) -> None:
    """Send one digest of what is due or overdue now (the `status` items) and alerts for what
    happened since the last run (a positive BI, a recall), by e-mail and/or webhook
    (`settings notify`). Nothing due: nothing sent, exit 0. An item is sent at most once a day;
    every send is audited. Reads first, sends with no lock held, then records: never slows the
    gate. The SMTP password comes only from STERILOG_SMTP_PASSWORD."""
    from sterilog import db
    from sterilog.services import notify as svc
    from sterilog.services.base import Ctx, load_clinic

    with app.reading() as ctx:
        messages = svc.pending(ctx)
        settings = svc.current(ctx.session)
        clinic = ctx.clinic.name
        if settings is not None:
            ctx.session.expunge(settings)
    data = {
        "dry_run": dry_run,
        "sent": [] if dry_run else [m.item for m in messages],
        "would_send": [m.__dict__ for m in messages] if dry_run else [],
        "channels": [],
    }
    if not messages:
        app.emit({**data, "sent": []}, "Nothing due: nothing sent.")
        return
    if dry_run:
        app.emit(data, ["Would send (dry run, nothing sent):", svc._body(clinic, messages)])
        return
    if settings is None:
        from sterilog.errors import UserError

        raise UserError("no channel configured: run `sterilog settings notify` first")
    channels = svc.send(clinic, messages, settings, os.environ.get("STERILOG_SMTP_PASSWORD"))
    engine = app.engine()
    with db.write_session(engine) as session:
        clock = app.record_clock(session)
        wctx = Ctx(session=session, now=clock.now, clock=clock.source, clinic=load_clinic(session))
        svc.record(wctx, messages, channels)
    data["channels"] = channels
    app.emit(data, f"Sent {len(messages)} item(s) by {' and '.join(channels)}.")


@click.command(
    "notify",
    epilog="Example: sterilog --operator margaret settings notify --smtp mail.example.org:587 "
    "--starttls --user studio --from sterilog@example.org --to margaret@example.org",
)
@click.option("--smtp", metavar="HOST:PORT", help="SMTP server.")
@click.option("--starttls", is_flag=True, help="Upgrade the SMTP connection with STARTTLS.")
@click.option("--user", metavar="U", help="SMTP user (password: STERILOG_SMTP_PASSWORD).")
@click.option("--from", "from_addr", metavar="ADDR", help="Sender address.")
@click.option("--to", "to", multiple=True, metavar="ADDR", help="A recipient (repeat).")
@click.option("--webhook", metavar="URL", help="POST a JSON digest to this URL.")
@pass_app
def settings_notify(
    app: App,
    smtp: str | None,
    starttls: bool,
    user: str | None,
    from_addr: str | None,
    to: tuple[str, ...],
    webhook: str | None,
) -> None:
    """Where `sterilog notify` sends (manager). A new row each time; the newest is in force.
    The SMTP password is never stored."""
    from sterilog.services import notify as svc

    with app.writing(MANAGER, "configure notifications") as ctx:
        row = svc.configure(
            ctx,
            smtp=smtp,
            starttls=starttls,
            user=user,
            from_addr=from_addr,
            to=to,
            webhook=webhook,
        )
        data = {
            "id": row.id,
            "smtp": smtp,
            "starttls": starttls,
            "user": row.smtp_user,
            "from": from_addr,
            "to": json.loads(row.to_addrs),
            "webhook": webhook,
        }
    app.emit(data, f"Notification settings #{data['id']} recorded.")
