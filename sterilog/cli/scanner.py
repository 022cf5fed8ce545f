"""`sterilog settings scanner-gs` and `sterilog scanner test|sheet` (issue 14): a scanner
bought after `init` can be configured, and checked, before it smuggles a lot."""

from __future__ import annotations

import click

from sterilog import output
from sterilog.cli.app import App, pass_app
from sterilog.errors import UserError
from sterilog.services.people import MANAGER

# The printed test code (GS1-128: FNC1, then GTIN, expiry, lot, a GS, serial). A scanner that
# delivers GS types lot SCANTEST and serial 0001; one that drops it types lot SCANTEST210001.
TEST_GTIN = "09506000134352"
TEST_LOT = "SCANTEST"
TEST_SERIAL = "0001"
TEST_DATA = f"01{TEST_GTIN}17271231" + f"10{TEST_LOT}" + "\x1d" + f"21{TEST_SERIAL}"
TEST_HRI = f"(01){TEST_GTIN}(17)271231(10){TEST_LOT}(21){TEST_SERIAL}"


@click.command(
    "scanner-gs",
    epilog="Examples:\n\n  sterilog --operator alice settings scanner-gs '~'\n\n"
    "  sterilog --operator alice settings scanner-gs none",
)
@click.argument("char", metavar="CHAR|none")
@pass_app
def scanner_gs(app: App, char: str) -> None:
    """Set the character the clinic's scanner types instead of the GS separator (ASCII 29),
    or `none` when it sends GS itself.

    Recorded as a new settings entry in the audit log; the previous value stays on record.
    Test the scanner first with `sterilog scanner test`."""
    from sterilog.services import setup as svc

    with app.writing(MANAGER, "change settings") as ctx:
        before, after = svc.change_scanner_gs(ctx, char)
    shown = "none" if after is None else repr(after)
    was = "none" if before is None else repr(before)
    app.emit(
        {"scanner_gs": after, "previous": before},
        f"Scanner GS substitute set to {shown} (was {was}). Check it: sterilog scanner test",
    )


@click.group()
def scanner() -> None:
    """Check what a barcode scanner delivers, with a printed test code."""


@scanner.command(
    "test",
    epilog="Examples:\n\n  sterilog scanner sheet -o scanner-test.pdf   (print it)\n\n"
    "  sterilog scanner test   (then scan the code on the sheet)",
)
@click.option("--scan", "scan", metavar="TEXT", help="The scan (asked for when not given).")
@pass_app
def scanner_test(app: App, scan: str | None) -> None:
    """Scan the test code (docs/scanner-test.pdf, or `sterilog scanner sheet`) and say whether
    the scanner delivers the GS separator, with the clinic's substitute if one is set.

    Exit 0 when it does; exit 1, with what to do, when it does not."""
    from sterilog.scan import ScanError, parse_scan

    with app.reading() as ctx:
        substitute = ctx.clinic.scanner_gs
    if scan is None:
        scan = click.prompt("Scan the test code now", prompt_suffix=": ", err=True)
    gs_seen = "\x1d" in scan
    sub_seen = substitute is not None and substitute in scan
    try:
        unit = parse_scan(scan, substitute)
        error = None
    except ScanError as exc:
        unit, error = None, str(exc)
    ok = unit is not None and unit.lot == TEST_LOT and unit.serial == TEST_SERIAL
    data = {
        "ok": ok,
        "gs_received": gs_seen,
        "substitute": substitute,
        "substitute_received": sub_seen,
        "lot": unit.lot if unit else None,
        "serial": unit.serial if unit else None,
    }
    if ok:
        how = f"as the substitute {substitute!r}" if sub_seen and not gs_seen else "as GS itself"
        app.emit(data, f"OK: the scanner delivers the GS separator ({how}).")
        return
    app.emit(data, None)
    if unit is None and error is not None and "GS separator" not in error:
        raise UserError(f"that is not the test code ({error}); scan the code on the test sheet")
    raise UserError(
        "the scanner does not deliver the GS separator"
        + (f" (nor the substitute {substitute!r})" if substitute else "")
        + ". Set the scanner to send GS (often 'FNC1 as GS' or 'ASCII 29' in its manual), or "
        "to send a character such as '~' in its place and record it with "
        "`sterilog settings scanner-gs '~'`; then run this test again"
    )


@scanner.command("sheet", epilog="Example: sterilog scanner sheet -o scanner-test.pdf")
@click.option(
    "-o",
    "--output",
    "output_",
    required=True,
    metavar="FILE.pdf",
    help="The PDF to write (- for standard output).",
)
@output.force_option
@pass_app
def scanner_sheet(app: App, output_: str, force: bool) -> None:
    """Write a one-page PDF with the scanner test code (GS1-128 with a GS separator)."""
    from sterilog.reports import scanner_sheet as sheet

    target = output.check(output_, force=force, stdout_ok=True, json_mode=app.json)
    pdf = sheet.render(TEST_DATA, TEST_HRI)
    output.write_bytes(target, pdf)
    output.say(app, {"path": str(target)}, f"Scanner test sheet written to {target}", target)
