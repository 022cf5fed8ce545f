"""Cartridges (SPEC §6.2): receive, list, recall, discard."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from sterilog.cli.app import App, pass_app
from sterilog.cli.params import INTEGER
from sterilog.cli.registers import _table
from sterilog.clock import fmt_local, parse_at
from sterilog.lateness import text_mark
from sterilog.services import cartridge as svc
from sterilog.services.people import DAILY, MANAGER

_AT_HELP = "When it happened (ISO 8601; no offset = clinic time), if earlier than now."


@click.group()
def cartridge() -> None:
    """Needle cartridges: deliveries, stock, recalls, discards."""


@cartridge.command(
    "receive",
    epilog="Example: sterilog --operator ann cartridge receive "
    "'(01)09506000134352(17)271231(10)A1B2(21)0001' --supplier Dermatech --invoice INV-88",
)
@click.argument("scans", metavar="SCAN [SCAN ...]", nargs=-1, required=True)
@click.option(
    "--quantity",
    type=INTEGER,
    help="Units per unserialized scan (default 1). A serialized scan is always one unit.",
)
@click.option("--supplier", help="Who delivered.")
@click.option("--invoice", help="Delivery note or invoice number.")
@click.option("--at", "at_raw", help=_AT_HELP)
@pass_app
def receive(
    app: App,
    scans: tuple[str, ...],
    quantity: int | None,
    supplier: str | None,
    invoice: str | None,
    at_raw: str | None,
) -> None:
    """Receive cartridges into stock: all scans, or none if any is refused."""
    with app.writing(DAILY, "receive cartridges") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        result = svc.receive(
            ctx, list(scans), quantity=quantity, supplier=supplier, invoice=invoice, at=at
        )
    data: dict[str, Any] = {
        "units": [
            {
                "unit_id": u.unit_id,
                "gtin": u.gtin,
                "lot": u.lot,
                "serial": u.serial,
                "expiry": u.expiry.isoformat(),
            }
            for u in result.units
        ],
        "receipt_ids": result.receipt_ids,
        "received": len(result.units),
    }
    lines = [f"Received {len(result.units)} cartridge unit(s):"]
    for scan, count in result.receipts:
        assert scan.expiry is not None
        what = f"serial {scan.serial}" if scan.serial is not None else f"{count} unserialized"
        lines.append(
            f"  GTIN {scan.gtin}  lot {scan.lot}  {what}  expires {scan.expiry.isoformat()}"
        )
    app.emit(data, lines)


@cartridge.command(
    "list", epilog="Example: sterilog cartridge list --gtin 09506000134352 --status in-stock"
)
@click.option("--gtin", help="Only this GTIN.")
@click.option("--lot", help="Only this lot.")
@click.option("--status", type=click.Choice(svc.STATUSES), help="Only units in this state.")
@pass_app
def list_(app: App, gtin: str | None, lot: str | None, status: str | None) -> None:
    """List cartridge units and their state (recalled > used > discarded > expired > in stock)."""
    with app.reading() as ctx:
        rows = svc.list_units(ctx, gtin=gtin, lot=lot, status=status)
        tz = ctx.clinic.tz

    shown = [
        {
            **r,
            "received": fmt_local(dt.datetime.fromisoformat(r["received_at"]), tz),
            "session": r["session_id"],
            "entered": text_mark(r, tz),
        }
        for r in rows
    ]
    app.emit(
        {"units": rows},
        _table(
            shown,
            ["unit_id", "gtin", "lot", "serial", "expiry", "status", "received", "session"]
            + (["entered"] if any(r["late"] for r in rows) else []),
        ),
    )


@cartridge.command(
    "recall",
    epilog="Example: sterilog --operator boss cartridge recall --gtin 09506000134352 "
    "--lot A1B2 --reason 'manufacturer notice FSN-2026-11'",
)
@click.option("--gtin", required=True, help="GTIN of the recalled product.")
@click.option("--lot", required=True, help="Recalled lot.")
@click.option("--reason", required=True, help="Why (e.g. the field safety notice).")
@click.option("--at", "at_raw", help=_AT_HELP)
@pass_app
def recall(app: App, gtin: str, lot: str, reason: str, at_raw: str | None) -> None:
    """Recall a lot (managers only): every unit is blocked at the gate from now on."""
    with app.writing(MANAGER, "recall cartridge lots") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        result = svc.recall(ctx, gtin=gtin, lot=lot, reason=reason, at=at)
        tz = ctx.clinic.tz
    data = {
        "recall_id": result.recall_id,
        "gtin": result.gtin,
        "lot": result.lot,
        "units_in_stock": result.units_in_stock,
        "sessions": result.sessions,
        "exposure_id": result.exposure_id,
    }
    lines = [
        f"Recalled lot {result.lot} of GTIN {result.gtin} (recall {result.recall_id}).",
        f"{result.units_in_stock} unit(s) in stock are now blocked.",
    ]
    if result.sessions:
        lines.append(f"{len(result.sessions)} session(s) already used this lot:")
        lines += [
            "  " + line
            for line in _table(
                [
                    {
                        **s,
                        "started": fmt_local(dt.datetime.fromisoformat(s["started_at"]), tz),
                    }
                    for s in result.sessions
                ],
                ["session_id", "started", "client", "room", "practitioner"],
            )
        ]
    else:
        lines.append("No session has used this lot.")
    if result.exposure_id:
        lines.append(
            f"Exposure {result.exposure_id} opened: notify each client "
            f"(`sterilog exposure show {result.exposure_id}`)."
        )
    app.emit(data, lines)


@cartridge.command(
    "discard",
    epilog="Example: sterilog --operator ann cartridge discard "
    "'(01)09506000134352(17)271231(10)A1B2(21)0001' --reason 'packaging torn'",
)
@click.argument("scan")
@click.option("--reason", required=True, help="Why (damaged packaging, dropped, ...).")
@click.option("--at", "at_raw", help=_AT_HELP)
@pass_app
def discard(app: App, scan: str, reason: str, at_raw: str | None) -> None:
    """Discard one unit: the scanned serial, or one unused unit of an unserialized lot."""
    with app.writing(DAILY, "discard cartridges") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        result = svc.discard(ctx, scan, reason=reason, at=at)
    data = {
        "discard_id": result.discard_id,
        "unit_id": result.unit_id,
        "gtin": result.gtin,
        "lot": result.lot,
        "serial": result.serial,
    }
    what = f"serial {result.serial}" if result.serial else f"unit {result.unit_id} (unserialized)"
    app.emit(
        data,
        f"Discarded cartridge GTIN {result.gtin} lot {result.lot} {what} "
        f"(discard {result.discard_id}).",
    )
