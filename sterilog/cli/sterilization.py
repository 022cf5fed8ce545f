"""Sterilization commands (SPEC §6.3): cycle, air-removal, bi."""

from __future__ import annotations

from typing import Any

import click

from sterilog.cli.app import App, pass_app
from sterilog.cli.params import INTEGER, NUMBER, Integer, RecordId
from sterilog.clock import fmt_local, iso, local_day_bounds, parse_at, parse_date
from sterilog.compliance.vocab import (
    BI_INVALID_REASONS,
    BI_RESULTS,
    CONTROL_RESULTS,
    LOAD_CI_PENDING,
    LOAD_FAILED,
    PASS_FAIL,
)
from sterilog.errors import UserError
from sterilog.lateness import text_mark
from sterilog.services import bi_lab
from sterilog.services import sterilization as svc
from sterilog.services.people import DAILY, MANAGER


def _table(rows: list[dict[str, Any]], cols: list[str]) -> list[str]:
    if not rows:
        return ["(none)"]

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, list):
            return ", ".join(str(x) for x in value) or "-"
        return str(value)

    cells = [{c: cell(r.get(c)) for c in cols} for r in rows]
    widths = {c: max(len(c), *(len(r[c]) for r in cells)) for c in cols}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in cols).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in cols).rstrip() for r in cells]
    return lines


# --- cycle -------------------------------------------------------------------------------------


@click.group()
def cycle() -> None:
    """Sterilizer cycles (loads): readings, chemical indicator, packs, BI."""


@cycle.command(
    "record",
    epilog="Example: sterilog --operator ann cycle record --sterilizer AC1 --program 134-3.5 "
    "--temp-c 134.2 --hold-min 3.5 --ci pass --ci-type 5 --pack P1 --pack P2 --bi-lot SP-2211",
)
@click.option("--sterilizer", required=True, metavar="ID", help="The sterilizer that ran.")
@click.option("--program", required=True, metavar="NAME", help="Its program (profile).")
@click.option("--temp-c", type=NUMBER, required=True, help="Temperature reached (°C).")
@click.option("--hold-min", type=NUMBER, required=True, help="Holding time at it (minutes).")
@click.option("--ci", type=click.Choice(list(PASS_FAIL)), required=True, help="Chemical indicator.")
@click.option("--ci-type", type=Integer(1, 6), help="ISO 11140-1 indicator type (1-6).")
@click.option("--pack", "packs", multiple=True, metavar="P", help="A pack in the load (repeat).")
@click.option("--load-no", type=INTEGER, help="Load number (default: the sterilizer's next).")
@click.option("--bi-lot", metavar="LOT", help="A biological indicator of this lot is in the load.")
@click.option(
    "--bi-expires",
    metavar="YYYY-MM[-DD]",
    help="The BI's expiry from its label (YYYY-MM: end of that month); an expired BI is refused.",
)
@click.option("--bi-control-lot", metavar="LOT", help="The control's lot (must be the BI's lot).")
@click.option("--at", "at_raw", metavar="TIME", help="When the cycle ran, if earlier than now.")
@pass_app
def cycle_record(
    app: App,
    sterilizer: str,
    program: str,
    temp_c: float,
    hold_min: float,
    ci: str,
    ci_type: int | None,
    packs: tuple[str, ...],
    load_no: int | None,
    bi_lot: str | None,
    bi_expires: str | None,
    bi_control_lot: str | None,
    at_raw: str | None,
) -> None:
    """Record a cycle. Computes passed/failed; blocked (exit 3) when the sterilizer is locked,
    lacks today's air-removal test, or its weekly BI is overdue and this load carries none."""
    with app.writing(DAILY, "record cycles") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        rec = svc.record_cycle(
            ctx,
            sterilizer=sterilizer,
            program=program,
            temp_c=temp_c,
            hold_min=hold_min,
            ci=ci,
            ci_type=ci_type,
            packs=packs,
            load_no=load_no,
            bi_lot=bi_lot,
            bi_expires=bi_expires,
            bi_control_lot=bi_control_lot,
            at=at,
        )
        tz = ctx.clinic.tz
        c = rec.cycle
        data = {
            "load_id": c.id,
            "load_no": c.load_no,
            "status": "passed" if c.passed else "failed",
            "bi_id": rec.bi.id if rec.bi else None,
            "sterilizer": rec.sterilizer,
            "program": rec.program,
            "packs": rec.packs,
            "at": iso(c.at),
            "failures": rec.failures,
            "test_cycle": not rec.packs,
        }
    what = "test cycle" if not rec.packs else f"{len(rec.packs)} pack(s): {', '.join(rec.packs)}"
    lines = [
        f"Load {data['load_id']} ({rec.sterilizer} #{data['load_no']}, {rec.program}, "
        f"{fmt_local(rec.cycle.at, tz)}) {data['status']}; {what}."
    ]
    if rec.failures:
        lines.append("FAILED: " + "; ".join(rec.failures) + ". Its packs are not sterile.")
    if data["bi_id"] is not None:
        lines.append(f"BI {data['bi_id']} placed; read it with `sterilog bi read {data['bi_id']}`.")
    if rec.lock.locked and rec.lock.since is not None and rec.cycle.at <= rec.lock.since:
        lines.append(
            "This cycle ran at or before the lock started, so its BI cannot requalify "
            f"{rec.sterilizer}: requalification cycles must run after it."
        )
    if rec.lock.locked:
        lines.append(
            f"{rec.sterilizer} stays locked until {rec.lock.remaining} negative valid BI(s) read."
        )
    app.emit(data, lines)


@cycle.command(
    "list", epilog="Example: sterilog cycle list --sterilizer AC1 --from 2026-11-01 --to 2026-11-30"
)
@click.option("--sterilizer", metavar="ID", help="Only this sterilizer.")
@click.option("--from", "from_raw", metavar="DATE", help="First clinic day (YYYY-MM-DD).")
@click.option("--to", "to_raw", metavar="DATE", help="Last clinic day, inclusive (YYYY-MM-DD).")
@pass_app
def cycle_list(app: App, sterilizer: str | None, from_raw: str | None, to_raw: str | None) -> None:
    """List cycles, oldest first (days in the clinic's zone; suspect = after a positive BI)."""
    first = parse_date(from_raw, "--from") if from_raw is not None else None
    last = parse_date(to_raw, "--to") if to_raw is not None else None
    if first and last and last < first:
        raise UserError("--to is before --from")
    with app.reading() as ctx:
        tz = ctx.clinic.tz
        rows = svc.list_cycles(
            ctx.session,
            sterilizer=sterilizer,
            start=local_day_bounds(first, tz)[0] if first else None,
            end=local_day_bounds(last, tz)[1] if last else None,
        )
    shown = [
        {
            **r,
            "at": fmt_local(_from_iso(r["at"]), tz),
            "flag": " ".join(
                f
                for f in (
                    "SUSPECT" if r["suspect"] else "",
                    "VOIDED" if r["voided"] else "",
                    text_mark(r, tz),
                )
                if f
            ),
        }
        for r in rows
    ]
    app.emit(
        {"cycles": rows},
        _table(
            shown,
            [
                "load_id",
                "sterilizer",
                "load_no",
                "at",
                "program",
                "status",
                "packs",
                "bi_id",
                "flag",
            ],
        ),
    )


def _from_iso(text: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(text)


# --- air-removal -------------------------------------------------------------------------------


@click.group("air-removal")
def air_removal() -> None:
    """Daily air-removal (Bowie-Dick / Helix) tests of vacuum sterilizers."""


@air_removal.command(
    "record",
    epilog="Example: sterilog --operator ann air-removal record --sterilizer AC1 --result pass",
)
@click.option("--sterilizer", required=True, metavar="ID")
@click.option("--result", type=click.Choice(list(PASS_FAIL)), required=True)
@click.option("--at", "at_raw", metavar="TIME", help="When the test ran, if earlier than now.")
@pass_app
def air_removal_record(app: App, sterilizer: str, result: str, at_raw: str | None) -> None:
    """Record an air-removal test, run in the empty chamber before the day's first load."""
    with app.writing(DAILY, "record air-removal tests") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        row, st = svc.record_air_removal(ctx, sterilizer=sterilizer, result=result, at=at)
        tz = ctx.clinic.tz
        data = {"test_id": row.id, "sterilizer": st.code, "result": row.result, "at": iso(row.at)}
    line = f"Air-removal test {data['test_id']} on {st.code} at {fmt_local(row.at, tz)}: {result}."
    if result == "fail":
        line += " No loads until a test passes."
    app.emit(data, line)


# --- bi ----------------------------------------------------------------------------------------


@click.group()
def bi() -> None:
    """Biological indicators (spore tests): read them, list them."""


@bi.command(
    "read",
    epilog="Example: sterilog --operator ann bi read 7 --result negative --control positive",
)
@click.argument("bi_id")
@click.option("--result", type=click.Choice(list(BI_RESULTS)), required=True)
@click.option(
    "--control",
    type=click.Choice(list(CONTROL_RESULTS)),
    required=True,
    help="The same-lot control; it must grow (positive) for the read to be valid.",
)
@click.option("--at", "at_raw", metavar="TIME", help="When it was read, if earlier than now.")
@click.option("--report-no", metavar="NO", help="The monitoring lab's report number.")
@click.option("--control-lot", metavar="LOT", help="The control's lot (must be the BI's lot).")
@pass_app
def bi_read(
    app: App,
    bi_id: str,
    result: str,
    control: str,
    at_raw: str | None,
    report_no: str | None,
    control_lot: str | None,
) -> None:
    """Record a BI read, in the office or the lab's result. A positive valid read locks the
    sterilizer and makes loads suspect."""
    number = svc.parse_bi_id(bi_id)
    with app.writing(DAILY, "read BIs") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        res = svc.read_bi(
            ctx,
            number,
            result=result,
            control=control,
            at=at,
            report_no=report_no,
            control_lot=control_lot,
        )
        data = {
            "bi_id": number,
            "read_id": res.read.id,
            "load_id": res.cycle.id,
            "sterilizer": res.sterilizer,
            "valid": res.read.valid,
            "result": result,
            "control": control,
            "at": iso(res.read.at),
            "suspect_loads": res.suspect_loads,
            "sessions_affected": res.sessions_affected,
            "locked": res.locked,
            "requalify_remaining": res.remaining,
            "exposure_id": res.exposure_id,
        }
    if not res.read.valid:
        lines = [
            f"BI {number} read INVALID (read {res.read.id}): the control did not grow. "
            "Recorded; it changes nothing. Read it again with a valid control, or run a new BI."
        ]
    elif result == "positive":
        loads = ", ".join(str(i) for i in res.suspect_loads)
        lines = [
            f"BI {number} read POSITIVE (valid; read {res.read.id}): sterilizer "
            f"{res.sterilizer} is LOCKED.",
            f"Suspect loads: {loads}. Their packs are blocked at the gate; reprocess them.",
            f"Sessions that already used their packs: {res.sessions_affected} "
            f"(`sterilog trace bi {number}` lists them).",
            *(
                [
                    f"Exposure {res.exposure_id} opened: notify each client "
                    f"(`sterilog exposure show {res.exposure_id}`)."
                ]
                if res.exposure_id
                else []
            ),
            f"Retest: {res.remaining} test cycle(s) (no packs) with --bi-lot must read negative.",
        ]
    else:
        lines = [f"BI {number} read negative (valid; read {res.read.id})."]
        if res.was_locked and not res.locked:
            lines.append(f"Sterilizer {res.sterilizer} is released: requalification complete.")
        elif res.locked:
            lines.append(
                f"Sterilizer {res.sterilizer} stays locked: {res.remaining} more negative "
                "valid BI(s) needed."
            )
    lines.append(
        f"A mistaken read is corrected with: sterilog void bi-read {res.read.id} --reason ..."
    )
    app.emit(data, lines)


@bi.command("list", epilog="Example: sterilog bi list --pending")
@click.option("--pending", is_flag=True, help="Only BIs without a valid read yet.")
@pass_app
def bi_list(app: App, pending: bool) -> None:
    """List BIs with their reads."""
    with app.reading() as ctx:
        rows = svc.list_bis(ctx.session, pending=pending)
        tz = ctx.clinic.tz
    shown = [
        {
            **r,
            "placed_at": fmt_local(_from_iso(r["placed_at"]), tz),
            "read": "pending"
            if r["pending"] and r["read_at"] is None
            else ("pending (last read invalid)" if r["pending"] else r["result"]),
            "entered": text_mark(r, tz),
        }
        for r in rows
    ]
    app.emit(
        {"bis": rows},
        _table(
            shown,
            ["bi_id", "sterilizer", "load_id", "lot", "placed_at", "state", "read", "read_id"]
            + (["entered"] if any(r["late"] for r in rows) else []),
        ),
    )


@bi.command(
    "mail",
    epilog="Example: sterilog --operator ann bi mail 7 --lab 'Mesa Labs' --envelope E-20931",
)
@click.argument("bi_id")
@click.option("--lab", required=True, metavar="NAME", help="The monitoring lab.")
@click.option("--envelope", metavar="NO", help="The lab's envelope or mailer number.")
@click.option("--at", "at_raw", metavar="TIME", help="When it was mailed, if earlier than now.")
@pass_app
def bi_mail(app: App, bi_id: str, lab: str, envelope: str | None, at_raw: str | None) -> None:
    """Record that a BI was mailed to a monitoring lab. It counts as incubating for the weekly
    rule until the rule pack's lab_result_days after it was placed."""
    number = svc.parse_bi_id(bi_id)
    with app.writing(DAILY, "mail BIs") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        row = bi_lab.mail(ctx, number, lab=lab, envelope=envelope, at=at)
        data = {"bi_id": number, "event_id": row.id, "lab": row.lab, "at": iso(row.at)}
    app.emit(data, f"BI {number} mailed to {data['lab']}.")


@bi.command(
    "received",
    epilog="Example: sterilog --operator ann bi received 7 --at 2026-12-04",
)
@click.argument("bi_id")
@click.option("--at", "at_raw", metavar="TIME", required=True, help="The lab's receipt date.")
@pass_app
def bi_received(app: App, bi_id: str, at_raw: str) -> None:
    """Record the date the lab received a mailed BI (from its portal or report)."""
    number = svc.parse_bi_id(bi_id)
    with app.writing(DAILY, "record BI receipts") as ctx:
        row = bi_lab.received(ctx, number, at=parse_at(at_raw, ctx.clinic.tz))
        data = {"bi_id": number, "event_id": row.id, "at": iso(row.at)}
    app.emit(data, f"BI {number} received by the lab.")


@bi.command(
    "invalid",
    epilog="Example: sterilog --operator ann bi invalid 7 --reason late-receipt",
)
@click.argument("bi_id")
@click.option("--reason", type=click.Choice(list(BI_INVALID_REASONS)), required=True)
@click.option("--note", metavar="TEXT", help="What was wrong (required with --reason other).")
@pass_app
def bi_invalid(app: App, bi_id: str, reason: str, note: str | None) -> None:
    """Record that a BI gives no result (the lab rejected it, or it was damaged). It never
    counts for the weekly rule: the week it was to cover is uncovered."""
    number = svc.parse_bi_id(bi_id)
    with app.writing(DAILY, "record invalid BIs") as ctx:
        row = bi_lab.invalid(ctx, number, reason=reason, note=note)
        data = {"bi_id": number, "event_id": row.id, "reason": reason, "at": iso(row.at)}
    app.emit(data, f"BI {number} is invalid ({reason}); it covers nothing. Run a new BI.")


@bi.command(
    "skip",
    epilog="Example: sterilog --operator margaret bi skip --sterilizer AC1 --week 2026-W52 "
    "--reason 'studio closed for the holidays'",
)
@click.option("--sterilizer", required=True, metavar="ID")
@click.option("--week", required=True, metavar="YYYY-Www", help="ISO week, clinic-local.")
@click.option("--reason", required=True, metavar="TEXT", help="Why no test (unit down, closed).")
@pass_app
def bi_skip(app: App, sterilizer: str, week: str, reason: str) -> None:
    """Declare a week in which the sterilizer ran no load, so no spore test was run (manager).
    The monthly report lists it as declared; a load later recorded in that week is blocked
    (exit 3, bi-week-declared) until the declaration is voided (`void bi-skip ID`)."""
    with app.writing(MANAGER, "declare non-test weeks") as ctx:
        row = bi_lab.skip(ctx, sterilizer=sterilizer, week=week, reason=reason)
        data = {"skip_id": row.id, "sterilizer": sterilizer, "week": row.week}
    app.emit(data, f"{data['week']} declared without a spore test for {sterilizer} (#{row.id}).")


# --- cycle import (the device's own records) and the CI of an imported load --------------------


def _hold(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def _range(low: float | None, high: float | None, unit: str, digits: int = 1) -> str:
    if low is None or high is None:
        return "-"
    return f"{low:.{digits}f}-{high:.{digits}f} {unit}"


@cycle.command(
    "import",
    epilog="\b\nExamples:\n"
    "  sterilog --operator ann cycle import --sterilizer AC1 /media/usb/000100.txt \\\n"
    "      --pack P1 --pack P2 --ci pass --ci-type 5\n"
    "  sterilog --operator ann cycle import --sterilizer DAC /media/usb/*.TXT\n\n"
    "docs/import.md lists the formats, what is read and what is computed.",
)
@click.option("--sterilizer", required=True, metavar="ID", help="The sterilizer that ran.")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="FILE..."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "tuttnauer-txt", "dac-printer"]),
    default="auto",
    show_default=True,
    help="The record format (auto: recognised from the content).",
)
@click.option("--pack", "packs", multiple=True, metavar="P", help="A pack in the load (one FILE).")
@click.option(
    "--ci", type=click.Choice(PASS_FAIL), help="Chemical indicator read (one FILE)."
)
@click.option("--ci-type", type=Integer(1, 6), help="ISO 11140-1 indicator type (1-6).")
@click.option("--bi-lot", metavar="L", help="A biological indicator of this lot is in the load.")
@pass_app
def cycle_import(
    app: App,
    sterilizer: str,
    files: tuple[str, ...],
    fmt: str,
    packs: tuple[str, ...],
    ci: str | None,
    ci_type: int | None,
    bi_lot: str | None,
) -> None:
    """Import cycles from the autoclave's own records (USB stick or printer capture).

    Each cycle in each FILE becomes a load (an air-removal test for a Bowie-Dick/Helix cycle)
    with the hold computed from the trace, the device's verdict, and the file kept as an
    attachment (SHA-256 in the audit log). The device serial must match the sterilizer's; the
    program must match one of its programs. A cycle already imported (same serial and device
    cycle number) is skipped. Without --ci a load waits for `sterilog cycle ci` and its packs
    are not sterile until then. Nothing is written if any file or cycle is refused.
    """
    from pathlib import Path

    from sterilog.services import attachments as att
    from sterilog.services import device_import as imp

    sources = []
    for name in files:
        path = Path(name)
        try:
            att.check_file_size(path.name, path.stat().st_size)
            raw = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {name}: {exc.strerror or exc}") from None
        sources.append(imp.SourceFile(path.name, raw))
    with app.writing(DAILY, "import cycles") as ctx:
        res = imp.import_cycles(
            ctx,
            sterilizer=sterilizer,
            files=sources,
            fmt=fmt,
            packs=packs,
            ci=ci,
            ci_type=ci_type,
            bi_lot=bi_lot,
        )
        tz = ctx.clinic.tz
    cycles = [
        {
            "load_id": r.load_id,
            "load_no": r.load_no,
            "air_test_id": r.air_test_id,
            "kind": r.kind,
            "device_cycle_no": r.device_cycle_no,
            "program": r.program,
            "at": iso(r.started_at),
            "hold_s": r.hold_s,
            "temp_min_c": r.temp_min_c,
            "temp_max_c": r.temp_max_c,
            "pressure_min_kpa": r.pressure_min_kpa,
            "pressure_max_kpa": r.pressure_max_kpa,
            "device_ok": r.device_ok,
            "device_reason": r.device_reason,
            "device_hold_s": r.device_hold_s,
            "status": r.status,
            "failures": r.failures,
            "file": r.file,
            "sha256": r.sha256,
        }
        for r in res.cycles
    ]
    data = {
        "sterilizer": res.sterilizer,
        "serial": res.serial,
        "cycles": cycles,
        "skipped": res.skipped,
    }
    lines = [
        f"{res.sterilizer} (serial {res.serial}): {len(cycles)} cycle(s) imported, "
        f"{len(res.skipped)} already imported and skipped."
    ]
    for r in res.cycles:
        what = (
            f"load {r.load_id} (#{r.load_no})"
            if r.kind == "load"
            else f"air-removal test {r.air_test_id}"
        )
        lines.append(
            f"  device cycle {r.device_cycle_no} {fmt_local(r.started_at, tz)} -> {what}: "
            f"hold {_hold(r.hold_s)} (computed"
            + (f"; device printed {_hold(r.device_hold_s)}" if r.device_hold_s is not None else "")
            + "), "
            f"{_range(r.temp_min_c, r.temp_max_c, '°C')}, "
            f"{_range(r.pressure_min_kpa, r.pressure_max_kpa, 'kPa', 0)}; {r.status.upper()}"
        )
        for f in r.failures:
            lines.append(f"    - {f}")
    if res.skipped:
        lines.append("Skipped (already imported): " + ", ".join(str(n) for n in res.skipped))
    pending = [r.load_id for r in res.cycles if r.status == LOAD_CI_PENDING]
    if pending:
        lines.append(
            "Read each load's chemical indicator: `sterilog cycle ci LOAD_ID --ci pass|fail` "
            f"(loads {', '.join(str(i) for i in pending)}); their packs are not sterile until then."
        )
    app.emit(data, lines)


@cycle.command(
    "ci",
    epilog="Example: sterilog --operator ann cycle ci 42 --ci pass --ci-type 5",
)
@click.argument("load_id", type=RecordId("load"))
@click.option(
    "--ci", type=click.Choice(PASS_FAIL), required=True, help="Chemical indicator."
)
@click.option("--ci-type", type=Integer(1, 6), help="ISO 11140-1 indicator type (1-6).")
@pass_app
def cycle_ci(app: App, load_id: int, ci: str, ci_type: int | None) -> None:
    """Record the chemical indicator of an imported load (a person's reading; final)."""
    from sterilog.compliance.rules import load_status
    from sterilog.services import device_import as imp

    with app.writing(DAILY, "record cycles") as ctx:
        row, c = imp.record_ci(ctx, load_id, ci=ci, ci_type=ci_type)
        status = load_status(c.passed, c.ci, row.passed)
        data = {"load_id": load_id, "ci": row.ci, "ci_type": row.ci_type, "status": status}
    msg = f"Load {load_id}: chemical indicator {row.ci}; the load is {status}."
    if status == LOAD_FAILED:
        msg += " Its packs are not sterile."
    app.emit(data, msg)
