"""`sterilog exposure`: who may have been exposed, and who has been told (issue 13)."""

from __future__ import annotations

from typing import Any

import click

from sterilog.cli.app import App, pass_app
from sterilog.cli.params import RecordId
from sterilog.compliance.vocab import NOTIFY_HOW


def _progress(e: dict[str, Any]) -> str:
    state = "open" if e["open"] else f"{e['state']} {e['closed_at']}"
    extra = f", {e['unreachable']} unreachable" if e["unreachable"] else ""
    return (
        f"exposure {e['id']:<4} {e['cause']:<8} opened {e['opened_at']}  "
        f"{e['notified']} of {e['clients']} client(s) notified{extra}  [{state}]  {e['summary']}"
    )


@click.group(
    epilog="Examples:\n\n"
    "  sterilog exposure list --open\n\n"
    "  sterilog exposure show 1\n\n"
    "  sterilog --operator ann exposure notify 1 --client C-0042 --how phone\n\n"
    "  sterilog --operator boss exposure close 1 --note 'two clients unreachable after 3 letters'"
)
def exposure() -> None:
    """Exposures: the clients to notify after a positive BI, a recall or an incident.

    A positive BI read and a recall open one by themselves (the clients `trace` lists); a
    manager opens one from an incident with `exposure open --incident N`."""


@exposure.command("list", epilog="Examples: sterilog exposure list; sterilog exposure list --open")
@click.option("--open", "only_open", is_flag=True, help="Only exposures not yet closed.")
@pass_app
def exposure_list(app: App, only_open: bool) -> None:
    """Every exposure with its notification progress."""
    from sterilog.services import exposures as svc

    with app.reading() as ctx:
        rows = [s.as_dict() for s in svc.states(ctx.session, only_open=only_open)]
    lines = [_progress(e) for e in rows] or ["No exposures" + (" open." if only_open else ".")]
    app.emit({"exposures": rows}, lines)


@exposure.command("show", epilog="Example: sterilog exposure show 1")
@click.argument("exposure_id", type=RecordId("exposure"))
@pass_app
def exposure_show(app: App, exposure_id: int) -> None:
    """One exposure: its cause, every client with their sessions, and who was told how and when."""
    from sterilog.services import exposures as svc

    with app.reading() as ctx:
        data = svc.detail(ctx.session, exposure_id)
    lines = [_progress(data)]
    for c in data["clients_detail"]:
        told = (
            f"{c['how']} {c['at']} by {c['by'] or '-'}" + (f" ({c['note']})" if c["note"] else "")
            if c["how"]
            else ("NOT YET NOTIFIED" if data["open"] else "not notified")
        )
        sessions = ", ".join(str(i) for i in c["sessions"])
        lines.append(f"  {c['client']:<20} session(s) {sessions:<16} {told}")
    if data["no_longer_listed"]:
        lines.append("No longer listed by trace for this source (kept as recorded):")
        lines += [
            f"  {c['client']:<20} "
            + (f"{c['how']} {c['at']} by {c['by'] or '-'}" if c["how"] else "not notified")
            for c in data["no_longer_listed"]
        ]
    if data["closure"]:
        cl = data["closure"]
        lines.append(
            f"Closed {cl['at']} by {cl['by'] or '-'}: {cl['note']}"
            + ("; REOPENED: trace lists clients not yet accounted for" if data["open"] else "")
        )
    if data["void"]:
        vd = data["void"]
        lines.append(
            f"VOID: {vd['kind']} {vd['record_id']} was voided {vd['at']} by {vd['by'] or '-'} "
            f"({vd['reason']}); nobody needs telling"
        )
    app.emit(data, lines)


@exposure.command("open", epilog="Example: sterilog --operator boss exposure open --incident 3")
@click.option(
    "--incident", "incident_id", type=RecordId("incident"), required=True, help="Incident ID."
)
@pass_app
def exposure_open(app: App, incident_id: int) -> None:
    """Open an exposure from an incident (managers only): the clients who shared the session's
    cartridge lot, its packs' loads, or its device since the device's last clean."""
    from sterilog.services import exposures as svc
    from sterilog.services.people import MANAGER

    with app.writing(MANAGER, "open exposures") as ctx:
        exp = svc.open_from_incident(ctx, incident_id)
        data = svc.state(ctx.session, exp.id).as_dict()
    app.emit(data, [f"Opened {_progress(data)}"])


@exposure.command(
    "notify",
    epilog="Examples:\n\n"
    "  sterilog --operator ann exposure notify 1 --client C-0042 --how phone "
    "--note 'spoke to her'\n\n"
    "  sterilog --operator ann exposure notify 1 --client C-0043 --unreachable "
    "--note 'letter returned'",
)
@click.argument("exposure_id", type=RecordId("exposure"))
@click.option("--client", required=True, help="Client reference, as in the session.")
@click.option("--how", type=click.Choice(list(NOTIFY_HOW)), help="How the client was told.")
@click.option("--unreachable", is_flag=True, help="The client could not be reached.")
@click.option("--note", help="What was said or tried.")
@click.option("--at", "at_raw", help="When (ISO 8601) [default: now].")
@pass_app
def exposure_notify(
    app: App,
    exposure_id: int,
    client: str,
    how: str | None,
    unreachable: bool,
    note: str | None,
    at_raw: str | None,
) -> None:
    """Record that a client was told (or could not be reached). Telling the last client closes
    the exposure."""
    from sterilog.clock import parse_at
    from sterilog.services import exposures as svc
    from sterilog.services.people import DAILY

    with app.writing(DAILY, "notify clients") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        st = svc.notify(
            ctx, exposure_id, client, how=how, unreachable=unreachable, note=note, at=at
        )
        data = st.as_dict()
    lines = [_progress(data)]
    if not data["open"]:
        lines.append(f"Every client notified: exposure {exposure_id} is closed.")
    elif not svc_pending(data):
        lines.append(
            f"Every client accounted for; a manager closes it: "
            f"sterilog exposure close {exposure_id} --note ..."
        )
    app.emit(data, lines)


def svc_pending(data: dict[str, Any]) -> int:
    return int(data["clients"]) - int(data["notified"]) - int(data["unreachable"])


@exposure.command(
    "close",
    epilog="Example: sterilog --operator boss exposure close 1 --note 'C-0043 unreachable: "
    "letter returned, two calls'",
)
@click.argument("exposure_id", type=RecordId("exposure"))
@click.option("--note", required=True, help="Why it is closed (e.g. what was tried).")
@pass_app
def exposure_close(app: App, exposure_id: int, note: str) -> None:
    """Close an exposure (managers only): only when every client is notified or unreachable."""
    from sterilog.services import exposures as svc
    from sterilog.services.people import MANAGER

    with app.writing(MANAGER, "close exposures") as ctx:
        data = svc.close(ctx, exposure_id, note=note).as_dict()
    app.emit(data, [_progress(data)])
