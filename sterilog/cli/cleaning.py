"""Cleaning commands (SPEC §6.4): clean room, clean device."""

from __future__ import annotations

import click

from sterilog.cli.app import App, pass_app
from sterilog.cli.params import NUMBER
from sterilog.clock import fmt_local, iso, parse_at
from sterilog.services import cleaning as svc
from sterilog.services.people import DAILY


@click.group()
def clean() -> None:
    """Cleaning and disinfection of rooms and pen devices."""


@clean.command(
    "room",
    epilog="Example: sterilog --operator ann clean room R1 --kind between-clients "
    "--disinfectant 'Clinell Universal'",
)
@click.argument("room")
@click.option(
    "--kind",
    type=click.Choice(list(svc.ROOM_KINDS)),
    required=True,
    help="spill is a spot clean: it does not make the room ready for the next client.",
)
@click.option("--disinfectant", required=True, metavar="NAME", help="The product used.")
@click.option(
    "--contact-min", type=NUMBER, help="Wet contact time (min); default: the product's label time."
)
@click.option("--note", help="Free text.")
@click.option("--at", "at_raw", metavar="TIME", help="When it was done, if earlier than now.")
@pass_app
def clean_room(
    app: App,
    room: str,
    kind: str,
    disinfectant: str,
    contact_min: float | None,
    note: str | None,
    at_raw: str | None,
) -> None:
    """Record a room clean. Less than the label contact time is refused: not disinfected."""
    with app.writing(DAILY, "record cleaning") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        row, target, product = svc.clean_room(
            ctx,
            room,
            kind=kind,
            disinfectant=disinfectant,
            contact_min=contact_min,
            note=note,
            at=at,
        )
        tz = ctx.clinic.tz
        data = {
            "clean_id": row.id,
            "room": target.code,
            "kind": row.kind,
            "disinfectant": product.code,
            "contact_min": row.contact_min,
            "note": row.note,
            "at": iso(row.at),
        }
    app.emit(
        data,
        f"Room {target.code} cleaned ({row.kind}) with {product.code}, "
        f"{row.contact_min:g} min contact, at {fmt_local(row.at, tz)} (clean {row.id}).",
    )


@clean.command(
    "device",
    epilog="Example: sterilog --operator ann clean device SN-1 --disinfectant 'Clinell Universal' "
    "--barrier-lot BS-2210",
)
@click.argument("serial")
@click.option("--disinfectant", required=True, metavar="NAME", help="The product used.")
@click.option(
    "--contact-min", type=NUMBER, help="Wet contact time (min); default: the product's label time."
)
@click.option("--barrier-lot", metavar="L", help="Lot of the new single-use barrier sleeve.")
@click.option("--at", "at_raw", metavar="TIME", help="When it was done, if earlier than now.")
@pass_app
def clean_device(
    app: App,
    serial: str,
    disinfectant: str,
    contact_min: float | None,
    barrier_lot: str | None,
    at_raw: str | None,
) -> None:
    """Record a pen device clean (reprocessing after a client)."""
    with app.writing(DAILY, "record cleaning") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        row, target, product = svc.clean_device(
            ctx,
            serial,
            disinfectant=disinfectant,
            contact_min=contact_min,
            barrier_lot=barrier_lot,
            at=at,
        )
        tz = ctx.clinic.tz
        data = {
            "clean_id": row.id,
            "device": target.code,
            "kind": "device",
            "disinfectant": product.code,
            "contact_min": row.contact_min,
            "barrier_lot": row.barrier_lot,
            "at": iso(row.at),
        }
    app.emit(
        data,
        f"Device {target.code} cleaned with {product.code}, {row.contact_min:g} min contact, "
        f"at {fmt_local(row.at, tz)} (clean {row.id}).",
    )
