"""Room and device cleaning (SPEC §6.4), with the disinfectant's label contact time enforced.

A surface wiped for less than the product's label contact (wet) time was cleaned, not
disinfected; such a clean is refused rather than recorded, so the gate never counts it.
"""

from __future__ import annotations

import datetime as dt

from sterilog.compliance import vocab
from sterilog.errors import UserError
from sterilog.models import Device, DeviceClean, Disinfectant, Room, RoomClean
from sterilog.services import validate as v
from sterilog.services.base import Ctx

ROOM_KINDS = vocab.ROOM_CLEAN_KINDS


def _product(ctx: Ctx, name: str, contact_min: float | None) -> tuple[Disinfectant, float]:
    product_name = v.name(name, "--disinfectant")
    assert product_name is not None
    product = ctx.by_code(Disinfectant, product_name, "disinfectant")
    from sterilog.compliance.registers import in_force

    label = float(in_force(ctx.session, "disinfectant", product).contact_min)  # in force now
    if contact_min is None:
        return product, label
    minutes = v.number(
        contact_min,
        "--contact-min",
        low=v.CONTACT_MIN[0],
        high=v.CONTACT_MIN[1],
        unit=" min",
        inclusive_low=True,
    )
    if minutes < label:
        raise UserError(
            f"the surface was not disinfected: label contact time is {label:g} "
            f"min for {product.code}, got {minutes:g} min; keep it wet for the full time and "
            "record the clean then"
        )
    return product, minutes


def clean_room(
    ctx: Ctx,
    room: str,
    *,
    kind: str,
    disinfectant: str,
    contact_min: float | None = None,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> tuple[RoomClean, Room, Disinfectant]:
    kind = v.choice(kind, "--kind", ROOM_KINDS)
    text = v.text(note, "--note", required=False)
    target = ctx.by_code(Room, v.ident(room, "room ID"), "room")
    product, minutes = _product(ctx, disinfectant, contact_min)
    row = RoomClean(
        room_id=target.id,
        kind=kind,
        disinfectant_id=product.id,
        contact_min=minutes,
        note=text,
        at=ctx.event_time(at),
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("clean.room", [row])
    return row, target, product


def clean_device(
    ctx: Ctx,
    serial: str,
    *,
    disinfectant: str,
    contact_min: float | None = None,
    barrier_lot: str | None = None,
    at: dt.datetime | None = None,
) -> tuple[DeviceClean, Device, Disinfectant]:
    lot = v.text(barrier_lot, "--barrier-lot", required=False, limit=100)
    if barrier_lot is not None and lot is None:
        raise UserError("--barrier-lot must not be empty")
    target = ctx.by_code(Device, v.ident(serial, "device serial"), "device")
    product, minutes = _product(ctx, disinfectant, contact_min)
    row = DeviceClean(
        device_id=target.id,
        disinfectant_id=product.id,
        contact_min=minutes,
        barrier_lot=lot,
        at=ctx.event_time(at),
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("clean.device", [row])
    return row, target, product
