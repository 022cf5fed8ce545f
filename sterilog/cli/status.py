"""`sterilog status`."""

from __future__ import annotations

import click

from sterilog.cli.app import App, pass_app


@click.command("status", epilog="Example: sterilog status")
@pass_app
def status(app: App) -> None:
    """What is due, overdue or blocked now: BIs, air-removal tests, cleaning, open sessions,
    stock and licences; and what to check: gaps or clock anomalies in the sterilizers' own
    cycle counters (imported records), imported loads whose chemical indicator is unread."""
    from sterilog.services import status as svc

    with app.reading() as ctx:
        items = svc.status(ctx)
        clinic = ctx.clinic.name
    order = {"blocked": 0, "overdue": 1, "due": 2, "check": 3}
    items.sort(key=lambda i: order[i.state])
    lines = [
        f"{clinic}: " + ("all clear." if not items else f"{len(items)} item(s) need attention")
    ]
    lines += [f"  {i.state.upper():<8} {i.kind:<12} {i.subject:<20} {i.message}" for i in items]
    app.emit({"items": [i.as_dict() for i in items]}, lines)
