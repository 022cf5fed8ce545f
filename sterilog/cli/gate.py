"""The treatment-room commands: check, session start|end|list, incident record."""

from __future__ import annotations

import datetime as dt
import sys
from contextlib import ExitStack
from typing import Any
from zoneinfo import ZoneInfo

import click

from sterilog.cli.app import App, pass_app
from sterilog.cli.params import NUMBER, RecordId
from sterilog.cli.verdict import headline, no_interrupt, reason_lines, use_color, zoned
from sterilog.compliance.vocab import INCIDENT_KINDS, SEVERITIES
from sterilog.errors import UserError


def _interactive() -> bool:
    return sys.stdin.isatty()


class _Asker:
    """Prompts for missing options at a terminal, never when stdin is not one. Once it has
    asked for anything, it also asks for packs and depth: a practitioner answering prompts
    must not skip the pack and depth rules because nobody asked."""

    def __init__(self) -> None:
        self.asked = False

    def __call__(self, value: Any, label: str, option: str) -> Any:
        if value not in (None, ""):
            return value
        if _interactive():
            self.asked = True
            return click.prompt(label, err=True)
        raise click.UsageError(f"Missing option '{option}'.")

    def packs(self, packs: tuple[str, ...]) -> tuple[str, ...]:
        if packs or not self.asked:
            return packs
        out: list[str] = []
        while True:
            raw = click.prompt(
                "Pack ID (empty line to finish)", default="", show_default=False, err=True
            ).strip()
            if not raw:
                return tuple(out)
            out.append(raw)

    def depth(self, depth: float | None) -> float | None:
        if depth is not None or not self.asked:
            return depth
        raw = click.prompt(
            "Needle depth in mm (empty line: not recorded)",
            default="",
            show_default=False,
            err=True,
        ).strip()
        return NUMBER.convert(raw, None, None) if raw else None


def _gate_output(
    app: App,
    decision: Any,
    session_id: int | None,
    refusal_id: int | None,
    started_at: dt.datetime | None = None,
    tz: ZoneInfo | None = None,
) -> None:
    from sterilog.clock import iso

    reasons = [{"code": r.code, "message": r.message} for r in decision.reasons]
    warnings = [{"code": w.code, "message": w.message} for w in decision.warnings]
    data: dict[str, Any] = {
        "decision": "go" if decision.go else "blocked",
        "reasons": reasons,
        "warnings": warnings,
        "session_id": session_id,
    }
    if refusal_id is not None:
        data["refusal_id"] = refusal_id
    c = decision.facts.cartridge
    data["cartridge"] = {
        "gtin": c.gtin,
        "lot": c.lot,
        "serial": c.serial,
        "expiry": c.expiry.isoformat() if c.expiry else None,
        "usable_until": iso(c.usable_until),
    }
    color = use_color(app.json)
    lines: list[str] = []
    if decision.go:
        head = "GO"
        if session_id is not None:
            head += f": session {session_id} started"
            if started_at is not None and tz is not None:
                head += f" at {zoned(started_at, tz)}"
        else:
            head += ": every check passed (dry run, nothing recorded)"
        lines.append(headline(head, True, color))
    else:
        n = len(reasons)
        tail = f" (refusal {refusal_id} recorded)" if refusal_id is not None else ""
        lines.append(headline(f"BLOCKED: {n} reason{'s' if n != 1 else ''}{tail}", False, color))
        lines += reason_lines(decision.reasons)
    for w in warnings:
        lines.append(f"  warning {w['code']:<20} {w['message']}")
    app.emit(data, lines)


def _gate_options(func: Any) -> Any:
    func = click.option("--depth-mm", type=NUMBER, help="Needle depth for this treatment (mm).")(
        func
    )
    func = click.option("--practitioner", help="Who treats [default: the operator].")(func)
    func = click.option("--pack", "packs", multiple=True, help="Instrument pack ID (repeatable).")(
        func
    )
    func = click.option("--cartridge", help="The cartridge's barcode, as the scanner types it.")(
        func
    )
    func = click.option("--device", help="Device (pen) serial.")(func)
    func = click.option("--room", help="Room ID.")(func)
    return func


@click.command(
    "check",
    epilog="Example: sterilog --operator ann check --room R1 --device SN-1 "
    "--cartridge '(01)09506000134352(17)271231(10)A1B2(21)0001' --pack P1 --depth-mm 1.0",
)
@_gate_options
@pass_app
def check(
    app: App,
    room: str | None,
    device: str | None,
    cartridge: str | None,
    packs: tuple[str, ...],
    practitioner: str | None,
    depth_mm: float | None,
) -> None:
    """Dry run of the gate: every rule, nothing written. Exit 3 when blocked."""
    from sterilog.services import gate

    ask = _Asker()
    room = ask(room, "Room", "--room")
    device = ask(device, "Device serial", "--device")
    cartridge = ask(cartridge, "Scan the cartridge", "--cartridge")
    packs = ask.packs(packs)
    depth_mm = ask.depth(depth_mm)
    who = practitioner or app.operator
    if not who:
        raise UserError("who treats? pass --practitioner ID or --operator ID")
    with app.reading() as ctx:
        decision = gate.decide(
            ctx,
            gate.GateRequest(
                room=room,
                device=device,
                cartridge=cartridge,
                packs=tuple(packs),
                practitioner=who,
                depth_mm=depth_mm,
            ),
        )
    _gate_output(app, decision, None, None)
    if not decision.go:
        sys.exit(3)


@click.group()
def session() -> None:
    """Client sessions: start (through the gate), end, list."""


@session.command(
    "start",
    epilog="Example: sterilog --operator ann session start --room R1 --device SN-1 "
    "--cartridge '(01)09506000134352(17)271231(10)A1B2(21)0001' --pack P1 --client C-0042",
)
@_gate_options
@click.option("--client", help="Client reference (as in your client records).")
@pass_app
def session_start(
    app: App,
    room: str | None,
    device: str | None,
    cartridge: str | None,
    packs: tuple[str, ...],
    practitioner: str | None,
    depth_mm: float | None,
    client: str | None,
) -> None:
    """Start a session if every rule passes; otherwise record a refusal and exit 3.

    With --practitioner OTHER, OTHER's PIN is needed when OTHER has one (asked at a terminal,
    else STERILOG_PRACTITIONER_PIN)."""
    from sterilog.services import gate

    ask = _Asker()
    room = ask(room, "Room", "--room")
    device = ask(device, "Device serial", "--device")
    cartridge = ask(cartridge, "Scan the cartridge", "--cartridge")
    client = ask(client, "Client reference", "--client")
    packs = ask.packs(packs)
    depth_mm = ask.depth(depth_mm)
    from sterilog.services.people import DAILY

    def attest() -> None:
        # The person who treats attests: a colleague named with --practitioner gives their own
        # PIN (STERILOG_PRACTITIONER_PIN or a hidden prompt), and a locked colleague cannot.
        if practitioner and practitioner.strip() != app.operator:
            app.attest(practitioner.strip())

    # From the decision until its result is printed, Ctrl-C waits: a session committed is
    # always shown, and the command exits as the record says (0 GO, 3 BLOCKED).
    guard = ExitStack()
    with guard, app.writing(DAILY, "start sessions", after_auth=attest) as ctx:
        guard.enter_context(no_interrupt())
        who = practitioner or (ctx.actor.code if ctx.actor else "")
        decision, started, refusal = gate.start(
            ctx,
            gate.GateRequest(
                room=room,
                device=device,
                cartridge=cartridge,
                packs=tuple(packs),
                practitioner=who,
                depth_mm=depth_mm,
                client=client,
            ),
        )
        session_id = started.id if started else None
        refusal_id = refusal.id if refusal else None
        started_at = started.started_at if started else None
        tz = ctx.clinic.tz
        held = guard.pop_all()  # the guard lasts past the commit, until the result is printed
    try:
        _gate_output(app, decision, session_id, refusal_id, started_at, tz)
    finally:
        held.close()
    if not decision.go:
        sys.exit(3)


@session.command(
    "end",
    epilog="Examples:\n\n  sterilog --operator ann session end 42 --note 'ok'\n\n"
    "  sterilog --operator ann session end 42 --at 2026-11-24T10:15   (ended earlier)",
)
@click.argument("session_id", type=RecordId("session"))
@click.option("--note", help="Anything worth noting.")
@click.option(
    "--at",
    "at_raw",
    metavar="TIME",
    help="When the client really left, if earlier than now (not before the session's start).",
)
@pass_app
def session_end(app: App, session_id: int, note: str | None, at_raw: str | None) -> None:
    """End a session: the room, the device and its packs then need reprocessing."""
    from sterilog.clock import iso, parse_at
    from sterilog.services import gate
    from sterilog.services.people import DAILY

    with app.writing(DAILY, "end sessions") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        row = gate.end(ctx, session_id, note, at)
        data = {"session_id": session_id, "ended_at": iso(row.at)}
        when = zoned(row.at, ctx.clinic.tz)
    app.emit(
        data,
        f"Ended session {session_id} at {when}. Clean the room and the device before the next "
        "client.",
    )


@session.command("list", epilog="Example: sterilog session list --date 2026-11-24 --room R1")
@click.option("--date", "day", help="Clinic-local day (YYYY-MM-DD) [default: today].")
@click.option("--room", help="Only this room.")
@click.option("--open", "only_open", is_flag=True, help="Only sessions not ended (any day).")
@pass_app
def session_list(app: App, day: str | None, room: str | None, only_open: bool) -> None:
    """List sessions of a day (or every open one)."""
    from sterilog.clock import fmt_local, local_date, local_day_bounds, parse_date
    from sterilog.models import Room, Session
    from sterilog.services import gate
    from sterilog.services.base import Ctx

    with app.reading() as ctx:
        assert isinstance(ctx, Ctx)
        conds = []
        if only_open:
            conds.append(gate.open_filter())
        if day or not only_open:
            d = parse_date(day, "--date") if day is not None else local_date(ctx.now, ctx.clinic.tz)
            lo, hi = local_day_bounds(d, ctx.clinic.tz)
            conds += [Session.started_at >= lo, Session.started_at < hi]
        if room:
            room_row = ctx.by_code(Room, room, "room")
            conds.append(Session.room_id == room_row.id)
        rows = gate.session_rows(ctx.session, gate.all_of(*conds))
        tz = ctx.clinic.tz
        from sterilog.clock import parse_instant
        from sterilog.lateness import text_mark

        lines = [
            f"{r['session_id']:>7}  {fmt_local(parse_instant(r['started_at']), tz)}  "
            f"{r['room']:<8} {r['practitioner']:<10} {r['device']:<10} "
            f"{r['client']:<14} {'open' if r['ended_at'] is None else 'ended'}"
            + (f"  {text_mark(r, tz)}" if r["late"] else "")
            for r in rows
        ]
    header = (
        f"{'SESSION':>7}  {'STARTED':<16}  {'ROOM':<8} {'PRACT.':<10} {'DEVICE':<10} "
        f"{'CLIENT':<14} STATE"
    )
    app.emit({"sessions": rows}, [header, *lines] if lines else ["(no sessions)"])


@click.group()
def incident() -> None:
    """Adverse events and exposures, of a client session or without one."""


@incident.command(
    "record",
    epilog="Examples:\n\n  sterilog --operator ann incident record --session 42 --kind infection "
    "--severity moderate --note 'redness and pustules day 3'\n\n"
    "  sterilog --operator ann incident record --kind exposure --staff bob --room R1 "
    "--note 'needlestick while cleaning the pen'",
)
@click.option(
    "--session",
    "session_id",
    type=RecordId("session"),
    help="The client session [none for an incident without a client, e.g. a staff exposure].",
)
@click.option("--room", help="Without --session: the room where it happened.")
@click.option("--device", help="Without --session: the device (pen serial) involved.")
@click.option("--staff", "staff_code", help="Without --session: the staff member affected.")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(list(INCIDENT_KINDS)),
)
@click.option("--severity", type=click.Choice(list(SEVERITIES)))
@click.option("--note", required=True, help="What happened.")
@click.option("--at", "at_raw", help="When it happened (ISO 8601) [default: now].")
@pass_app
def incident_record(
    app: App,
    session_id: int | None,
    room: str | None,
    device: str | None,
    staff_code: str | None,
    kind: str,
    severity: str | None,
    note: str,
    at_raw: str | None,
) -> None:
    """Record an incident on a session (`sterilog trace session` shows what was behind it), or
    without one (a staff needlestick during reprocessing) with --room/--device/--staff."""
    from sterilog.clock import parse_at
    from sterilog.services import incidents
    from sterilog.services.people import DAILY

    with app.writing(DAILY, "record incidents") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        row = incidents.record(
            ctx,
            session_id,
            kind=kind,
            severity=severity,
            note=note,
            at=at,
            room=room,
            device=device,
            staff=staff_code,
        )
        data = {"incident_id": row.id, "session_id": session_id, "kind": kind}
    if session_id is None:
        app.emit(data, f"Recorded incident {row.id} ({kind}), without a client session.")
        return
    app.emit(
        data,
        f"Recorded incident {data['incident_id']} ({kind}) on session {session_id}. "
        f"Trace it: sterilog trace session {session_id}",
    )
