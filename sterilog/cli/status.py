"""`sterilog status`."""

from __future__ import annotations

from typing import Any

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
        trust = _trust(ctx)
    order = {"blocked": 0, "overdue": 1, "due": 2, "check": 3}
    items.sort(key=lambda i: order[i.state])
    lines = [
        f"{clinic}: " + ("all clear." if not items else f"{len(items)} item(s) need attention")
    ]
    lines += [f"  {i.state.upper():<8} {i.kind:<12} {i.subject:<20} {i.message}" for i in items]
    lines += trust.pop("lines")
    app.emit({"items": [i.as_dict() for i in items], **trust}, lines)


def _trust(ctx: Any) -> dict[str, Any]:
    """Time and identity: training or live, clock anomalies, locked staff, PIN-less managers."""
    from sterilog import audit
    from sterilog.services import people

    anomalies = audit.clock_anomalies(ctx.session, ctx.now)
    locked = people.locked_staff(ctx.session, ctx.clinic.rules.pin_lockout_attempts)
    pinless = [] if ctx.clinic.training else people.pinless_managers(ctx.session)
    lines = []
    if ctx.clinic.training:
        lines.append("  TRAINING database: not a clinical record (STERILOG_NOW accepted).")
    lines += [f"  CLOCK    audit #{a.seq:<14} {a.message}" for a in anomalies]
    lines += [
        f"  LOCKED   staff {code:<14} too many wrong PINs: a manager runs "
        f"`sterilog staff unlock {code}`"
        for code in locked
    ]
    lines += [
        f"  PIN      manager {code:<12} has no PIN yet: `sterilog --operator {code} staff pin "
        f"{code}`"
        for code in pinless
    ]
    return {
        "training": ctx.clinic.training,
        "clock_anomalies": [{"seq": a.seq, "at": a.at, "message": a.message} for a in anomalies],
        "locked_staff": locked,
        "managers_without_pin": pinless,
        "lines": lines,
    }
