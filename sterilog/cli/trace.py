"""`sterilog trace session|client|lot|load|bi|device`."""

from __future__ import annotations

from typing import Any

import click

from sterilog.cli.app import App, pass_app
from sterilog.cli.params import RecordId
from sterilog.clock import fmt_local, local_day_bounds, parse_date, parse_instant
from sterilog.compliance.vocab import LOAD_CI_PENDING


def _sessions_lines(app: App, rows: list[dict[str, Any]], tz: Any, title: str) -> list[str]:
    lines = [f"{title}: {len(rows)} session{'s' if len(rows) != 1 else ''}"]
    if rows:
        lines.append(f"  {'SESSION':>7}  {'STARTED':<16}  {'ROOM':<8} {'PRACTITIONER':<14} CLIENT")
    for r in rows:
        started = fmt_local(parse_instant(r["started_at"]), tz)
        lines.append(
            f"  {r['session_id']:>7}  {started:<16}  {r['room']:<8} "
            f"{r['practitioner']:<14} {r['client']}"
        )
    return lines


def _session_lines(d: dict[str, Any], tz: Any) -> list[str]:
    c = d["cartridge"]
    lines = [
        f"Session {d['session_id']}  client {d['client']}  "
        f"started {fmt_local(parse_instant(d['started_at']), tz)} ({tz.key})"
        + (f", ended {fmt_local(parse_instant(d['ended_at']), tz)}" if d["ended_at"] else ", open"),
        f"  Room {d['room']}; practitioner {d['practitioner_detail']['name']} "
        f"({d['practitioner']}, licence {d['practitioner_detail']['license'] or '-'} "
        f"until {d['practitioner_detail']['license_expires'] or '-'})",
        f"  Cartridge GTIN {c['gtin']} lot {c['lot']} serial {c['serial'] or '-'} "
        f"expiry {c['expiry']}",
    ]
    from sterilog.services.trace import clean_warning, recall_text, used_after_text

    if recall_text(c):
        lines.append(f"    {recall_text(c)}")
    if c["receipt"]:
        r = c["receipt"]
        lines.append(
            f"    received {fmt_local(parse_instant(r['received_at']), tz)} from "
            f"{r['supplier'] or '-'} invoice {r['invoice'] or '-'} by {r['operator']}"
        )
    dev = d["device"]
    lc = dev["last_clean"]
    lines.append(
        f"  Device {dev['serial']} ({dev['model']}); last clean before: "
        + (
            f"{fmt_local(parse_instant(lc['at']), tz)} {lc['disinfectant']} "
            f"{lc['contact_min']:g} min by {lc['operator']}"
            if lc
            else "NONE"
        )
    )
    if clean_warning(dev):
        lines.append(f"    {clean_warning(dev)}")
    if used_after_text(dev):
        lines.append(f"    {used_after_text(dev)}")
    rc = d["room_detail"]["last_clean"]
    lines.append(
        "  Room's last clean before: "
        + (
            f"{fmt_local(parse_instant(rc['at']), tz)} {rc['kind']} {rc['disinfectant']} "
            f"{rc['contact_min']:g} min by {rc['operator']}"
            if rc
            else "NONE"
        )
    )
    if clean_warning(d["room_detail"]):
        lines.append(f"    {clean_warning(d['room_detail'])}")
    for p in d["packs"]:
        ld = p["load"]
        bi_b, bi_a = ld["bi_before"], ld["bi_after"]
        lines.append(
            f"  Pack {p['pack']} ({p['contents']}) <- load {ld['load_id']} #{ld['load_no']} on "
            f"{ld['sterilizer']} {ld['program']} {ld['temp_c']:g} °C/{ld['hold_min']:g} min "
            f"CI {ld['ci']} -> {ld['status']}{' SUSPECT' if ld['suspect'] else ''}"
        )
        lines.append(
            "    BI before: "
            + (f"{bi_b['bi_id']} {bi_b['result'] or 'pending'}" if bi_b else "-")
            + "; BI after: "
            + (f"{bi_a['bi_id']} {bi_a['result'] or 'pending'}" if bi_a else "-")
            + "; air-removal test that day: "
            + (
                f"{ld['air_removal_before']['result']} at "
                f"{fmt_local(parse_instant(ld['air_removal_before']['at']), tz)}"
                if ld["air_removal_before"]
                else "none"
            )
        )
    for i in d["incidents"]:
        lines.append(
            f"  Incident {i['incident_id']}: {i['kind']} {i['severity'] or ''} "
            f"{fmt_local(parse_instant(i['at']), tz)}: {i['note']}"
        )
    return lines


@click.group()
def trace() -> None:
    """Trace back from a session or client; look forward from a lot, load, BI or device."""


@trace.command("session", epilog="Example: sterilog trace session 42")
@click.argument("session_id", type=RecordId("session"))
@pass_app
def trace_session(app: App, session_id: int) -> None:
    """Everything behind one session."""
    from sterilog.services import trace as svc

    with app.reading() as ctx:
        d = svc.session_detail(ctx.session, session_id)
        tz = ctx.clinic.tz
    summary = {k: d[k] for k in ("session_id", "client", "started_at", "room", "practitioner")}
    app.emit({"sessions": [summary], "detail": [d]}, _session_lines(d, tz))


@trace.command("client", epilog="Example: sterilog trace client C-0042")
@click.argument("client")
@pass_app
def trace_client(app: App, client: str) -> None:
    """Everything behind every session of one client."""
    from sterilog.services import trace as svc

    with app.reading() as ctx:
        rows = svc.by_client(ctx.session, client)
        details = [svc.session_detail(ctx.session, r["session_id"]) for r in rows]
        tz = ctx.clinic.tz
    lines: list[str] = []
    for d in details:
        lines += [*_session_lines(d, tz), ""]
    app.emit({"sessions": rows, "detail": details}, lines)


@trace.command("lot", epilog="Example: sterilog trace lot --gtin 09506000134352 --lot A1B2")
@click.option("--gtin", required=True)
@click.option("--lot", required=True)
@pass_app
def trace_lot(app: App, gtin: str, lot: str) -> None:
    """Every session and client that used a cartridge lot."""
    from sterilog.services import trace as svc

    with app.reading() as ctx:
        rows = svc.by_lot(ctx.session, gtin, lot)
        recalled = svc.lot_recalled(ctx.session, gtin, lot)
        tz = ctx.clinic.tz
    title = f"Lot {lot} of GTIN {gtin}" + (
        f" (RECALLED: recall {recalled['recall_id']}, {recalled['reason']})" if recalled else ""
    )
    app.emit(
        {"gtin": gtin, "lot": lot, "recalled": recalled, "sessions": rows},
        _sessions_lines(app, rows, tz, title),
    )


@trace.command("load", epilog="Example: sterilog trace load 17")
@click.argument("load_id", type=RecordId("load"))
@pass_app
def trace_load(app: App, load_id: int) -> None:
    """Every session that used a pack from one sterilizer load."""
    from sterilog.services import trace as svc

    with app.reading() as ctx:
        load, rows = svc.by_load(ctx.session, load_id)
        tz = ctx.clinic.tz
    title = (
        f"Load {load_id} (#{load['load_no']} on {load['sterilizer']}, {load['status']}"
        f"{', SUSPECT' if load['suspect'] else ''})"
    )
    lines = _sessions_lines(app, rows, tz, title)
    lines[1:1] = _source_lines(load) + [
        f"  Document: attachment {a['attachment_id']} {a['filename']} sha256 {a['sha256']}"
        for a in load.get("attachments", [])
        if not load.get("device") or a["attachment_id"] != load["device"]["attachment_id"]
    ]
    app.emit({"load": load, "sessions": rows}, lines)


def _source_lines(load: dict[str, Any]) -> list[str]:
    """Imported (device cycle number, file and hash, read vs computed) or typed."""
    d = load.get("device")
    if not d:
        return ["  Source: typed (readings entered by hand with `cycle record`)"]

    def rng(low: Any, high: Any, unit: str) -> str:
        return "-" if low is None else f"{low:.1f}-{high:.1f} {unit}"

    hold = int(d["hold_s"])
    out = [
        f"  Source: imported from the sterilizer's record: device cycle {d['device_cycle_no']} "
        f"(serial {d['device_serial']}), file {d['file']} lines {d['lines']}, "
        f"attachment {d['attachment_id']}",
        f"  File SHA-256: {d['sha256']}",
        f"  Computed from the trace: hold {hold // 60}:{hold % 60:02d} at or above "
        f"{load['program_temp_c']:g} °C, {rng(d['temp_min_c'], d['temp_max_c'], '°C')}, "
        f"{rng(d['pressure_min_kpa'], d['pressure_max_kpa'], 'kPa')}"
        + (f" (printed in {d['pressure_unit']})" if d["pressure_unit"] else ""),
        "  Device verdict: " + ("OK" if d["device_ok"] else f"FAILED ({d['device_reason']})"),
    ]
    out += [f"  Failed: {f}" for f in d["failures"]]
    if load["status"] == LOAD_CI_PENDING:
        out.append("  Chemical indicator: not read yet (`sterilog cycle ci`)")
    return out


@trace.command("bi", epilog="Example: sterilog trace bi 5")
@click.argument("bi_id", type=RecordId("BI"))
@pass_app
def trace_bi(app: App, bi_id: int) -> None:
    """After a positive BI: every session that used a pack from a suspect load."""
    from sterilog.services import trace as svc

    with app.reading() as ctx:
        bi, loads, rows = svc.by_bi(ctx.session, bi_id)
        from sterilog.services.episode import positive_episode

        episode = positive_episode(ctx.session, bi_id)
        tz = ctx.clinic.tz
    title = (
        f"BI {bi_id} ({bi['result'] or 'pending'}); loads {', '.join(str(x) for x in loads) or '-'}"
    )
    app.emit(
        {"bi": bi, "loads": loads, "sessions": rows, "episode": episode},
        _sessions_lines(app, rows, tz, title),
    )


@trace.command("device", epilog="Example: sterilog trace device SN-1 --from 2026-11-01")
@click.argument("serial")
@click.option("--from", "start", help="First clinic-local day (YYYY-MM-DD).")
@click.option("--to", "stop", help="Last clinic-local day (YYYY-MM-DD), inclusive.")
@pass_app
def trace_device(app: App, serial: str, start: str | None, stop: str | None) -> None:
    """Every session on one device (optionally within dates)."""
    from sterilog.errors import UserError
    from sterilog.services import trace as svc

    with app.reading() as ctx:
        tz = ctx.clinic.tz
        lo = local_day_bounds(parse_date(start, "--from"), tz)[0] if start is not None else None
        hi = local_day_bounds(parse_date(stop, "--to"), tz)[1] if stop is not None else None
        if lo and hi and lo >= hi:
            raise UserError("--from is after --to")
        rows = svc.by_device(ctx.session, serial, lo, hi)
    app.emit(
        {"device": serial, "sessions": rows}, _sessions_lines(app, rows, tz, f"Device {serial}")
    )
