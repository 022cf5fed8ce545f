"""Cartridges (SPEC §6.2): receive stock, list it, recall a lot, discard a unit.

A lot (GTIN + lot) is recorded once, with its expiry; every scan received is a receipt; every
physical cartridge is a unit. Nothing here is ever updated: a recall and a discard are their own
rows, and a unit is used when a session row points at it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import end_of_day, iso, local_date
from sterilog.compliance.facts import is_voided, lot_recall
from sterilog.compliance.voids import counts
from sterilog.errors import UserError
from sterilog.models import (
    Base,
    CartridgeLot,
    CartridgeReceipt,
    CartridgeUnit,
    Discard,
    Recall,
    Session,
)
from sterilog.scan import Scan, ScanError, parse_scan
from sterilog.services import validate as v
from sterilog.services.base import Ctx

STATUSES = ("in-stock", "used", "recalled", "expired", "discarded")


def _gtin(value: str) -> str:
    """A GTIN as stored: 14 digits (a GTIN-8/12/13 typed by hand is padded, as GS1 does)."""
    value = v.ident(value, "--gtin")
    if value.isascii() and value.isdigit() and len(value) in (8, 12, 13):
        return value.zfill(14)
    return value


def _lot_name(gtin: str, lot: str) -> str:
    return f"lot {lot} of GTIN {gtin}"


def _unit_name(gtin: str, lot: str, serial: str | None) -> str:
    tail = f" serial {serial}" if serial is not None else ""
    return f"cartridge GTIN {gtin} lot {lot}{tail}"


def find_lot(session: DbSession, gtin: str, lot: str) -> CartridgeLot | None:
    return session.execute(
        select(CartridgeLot).where(CartridgeLot.gtin == gtin, CartridgeLot.lot == lot)
    ).scalar_one_or_none()


# --- receive -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedUnit:
    unit_id: int
    gtin: str
    lot: str
    serial: str | None
    expiry: dt.date


@dataclass(frozen=True)
class Received:
    units: list[ReceivedUnit]
    receipt_ids: list[int]
    # one (scan, quantity) per receipt, for the text output
    receipts: list[tuple[Scan, int]]


def _parse(ctx: Ctx, raw: str, where: str) -> Scan:
    try:
        scan = parse_scan(raw, ctx.clinic.scanner_gs)
    except ScanError as error:
        raise UserError(f"{error}{where}; nothing was received") from None
    if "\x00" in raw:  # not storable on PostgreSQL, and never typed by a real scanner
        raise UserError(f"the scan contains a NUL character{where}; nothing was received")
    return scan


def receive(
    ctx: Ctx,
    scans: Sequence[str],
    *,
    quantity: int | None = None,
    supplier: str | None = None,
    invoice: str | None = None,
    at: dt.datetime | None = None,
) -> Received:
    """Receive every scan, or none: any refusal raises before a row is written."""
    if not scans:
        raise UserError("give at least one SCAN")
    at = ctx.event_time(at)
    qty = 1
    if quantity is not None:
        qty = int(
            v.number(
                quantity,
                "--quantity",
                low=v.QUANTITY[0],
                high=v.QUANTITY[1],
                inclusive_low=True,
            )
        )
    supplier = v.name(supplier, "--supplier", required=False)
    invoice = v.name(invoice, "--invoice", required=False)
    tz = ctx.clinic.tz

    parsed: list[Scan] = []
    for i, raw in enumerate(scans, 1):
        where = f" (scan {i} of {len(scans)})" if len(scans) > 1 else ""
        scan = _parse(ctx, raw, where)
        assert scan.lot is not None and scan.expiry is not None  # parse_scan requires both
        if ctx.now >= end_of_day(scan.expiry, tz):
            raise UserError(
                f"{_unit_name(scan.gtin, scan.lot, scan.serial)} expired on"
                f" {scan.expiry.isoformat()} (its last usable day); do not receive it{where};"
                " nothing was received"
            )
        if scan.serial is not None and quantity is not None and quantity > 1:
            raise UserError(
                f"--quantity {quantity} with a serialized scan (serial {scan.serial}){where}:"
                " a serialized scan is exactly one unit; scan each unit instead;"
                " nothing was received"
            )
        parsed.append(scan)

    total = sum(1 if s.serial is not None else qty for s in parsed)
    if total > v.QUANTITY[1]:
        raise UserError(
            f"{total} units in one command is more than {v.QUANTITY[1]}; split the delivery;"
            " nothing was received"
        )

    # One pass over the distinct lots: existing row, expiry agreement, recall, serials.
    lots: dict[tuple[str, str], CartridgeLot | None] = {}
    expiry_seen: dict[tuple[str, str], dt.date] = {}
    serials_seen: set[tuple[str, str, str]] = set()
    for i, scan in enumerate(parsed, 1):
        where = f" (scan {i} of {len(parsed)})" if len(parsed) > 1 else ""
        assert scan.lot is not None and scan.expiry is not None
        key = (scan.gtin, scan.lot)
        name = _lot_name(*key)
        if key not in lots:
            row = find_lot(ctx.session, *key)
            lots[key] = row
            if row is not None:
                expiry_seen[key] = row.expiry
                recall = lot_recall(ctx.session, row.id)
                if recall is not None:
                    raise UserError(
                        f"{name} is under recall (since"
                        f" {local_date(recall.at, tz).isoformat()}: {recall.reason});"
                        f" do not receive it{where}; nothing was received"
                    )
        known = expiry_seen.setdefault(key, scan.expiry)
        if known != scan.expiry:
            source = "is on file" if lots[key] is not None else "was scanned earlier"
            raise UserError(
                f"{name} {source} with expiry {known.isoformat()}, but this scan says"
                f" {scan.expiry.isoformat()}{where}; check the label; nothing was received"
            )
        if scan.serial is not None:
            unit_key = (scan.gtin, scan.lot, scan.serial)
            if unit_key in serials_seen:
                raise UserError(
                    f"{_unit_name(*unit_key)} is scanned twice in this command:"
                    f" already received{where}; nothing was received"
                )
            serials_seen.add(unit_key)
            existing = lots[key]
            if existing is not None:
                when = ctx.session.execute(
                    select(CartridgeReceipt.at)
                    .join(CartridgeUnit, CartridgeUnit.receipt_id == CartridgeReceipt.id)
                    .where(
                        CartridgeUnit.lot_id == existing.id,
                        CartridgeUnit.serial == scan.serial,
                    )
                ).scalar_one_or_none()
                if when is not None:
                    raise UserError(
                        f"{_unit_name(*unit_key)} was already received"
                        f" (on {local_date(when, tz).isoformat()}){where}; a unit is received"
                        " once; nothing was received"
                    )

    written: list[Base] = []
    new_lots: list[CartridgeLot] = []
    for scan in parsed:
        assert scan.lot is not None and scan.expiry is not None
        key = (scan.gtin, scan.lot)
        if lots[key] is None:
            row = CartridgeLot(
                gtin=scan.gtin,
                lot=scan.lot,
                expiry=scan.expiry,
                production_date=scan.production_date,
                recorded_at=ctx.now,
            )
            lots[key] = row
            new_lots.append(row)
    ctx.add(*new_lots)
    ctx.session.flush()
    written.extend(new_lots)

    receipts: list[CartridgeReceipt] = []
    counts: list[int] = []
    for scan in parsed:
        assert scan.lot is not None
        n = 1 if scan.serial is not None else qty
        lot_row = lots[(scan.gtin, scan.lot)]
        assert lot_row is not None
        receipts.append(
            CartridgeReceipt(
                lot_id=lot_row.id,
                quantity=n,
                supplier=supplier,
                invoice=invoice,
                scan=scan.raw,
                at=at,
                recorded_at=ctx.now,
                operator_id=ctx.actor_id,
            )
        )
        counts.append(n)
    ctx.add(*receipts)
    ctx.session.flush()
    written.extend(receipts)

    units: list[CartridgeUnit] = []
    for scan, receipt, n in zip(parsed, receipts, counts, strict=True):
        units.extend(
            CartridgeUnit(
                lot_id=receipt.lot_id,
                receipt_id=receipt.id,
                serial=scan.serial,
                recorded_at=ctx.now,
            )
            for _ in range(n)
        )
    ctx.add(*units)
    ctx.session.flush()
    written.extend(units)
    ctx.audit("cartridge.receive", written)

    by_lot = {row.id: row for row in lots.values() if row is not None}
    return Received(
        units=[
            ReceivedUnit(
                unit_id=u.id,
                gtin=by_lot[u.lot_id].gtin,
                lot=by_lot[u.lot_id].lot,
                serial=u.serial,
                expiry=by_lot[u.lot_id].expiry,
            )
            for u in units
        ],
        receipt_ids=[r.id for r in receipts],
        receipts=list(zip(parsed, counts, strict=True)),
    )


# --- list --------------------------------------------------------------------------------------


def list_units(
    ctx: Ctx, *, gtin: str | None = None, lot: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Every unit with its status, in one query; filters (status included) applied in SQL."""
    today = local_date(ctx.now, ctx.clinic.tz)
    recalled = (
        select(Recall.lot_id).where(counts(Recall)).group_by(Recall.lot_id).subquery("recalled")
    )
    # SPEC §6.2: a recall marks every unit of the lot, in stock or already used, as recalled
    # (the session that used it stays in `session_id`: that client must be notified).
    status_col = case(
        (recalled.c.lot_id.is_not(None), literal("recalled")),
        (Session.id.is_not(None), literal("used")),
        (Discard.id.is_not(None), literal("discarded")),
        # Usable through the end of the expiry day in the clinic's zone (SPEC §4).
        (CartridgeLot.expiry < today, literal("expired")),
        else_=literal("in-stock"),
    )
    query = (
        select(
            CartridgeUnit.id,
            CartridgeLot.gtin,
            CartridgeLot.lot,
            CartridgeUnit.serial,
            CartridgeLot.expiry,
            status_col.label("status"),
            CartridgeReceipt.at,
            Session.id.label("session_id"),
            CartridgeReceipt.id.label("receipt_id"),
        )
        .select_from(CartridgeUnit)
        .join(CartridgeLot, CartridgeLot.id == CartridgeUnit.lot_id)
        .join(CartridgeReceipt, CartridgeReceipt.id == CartridgeUnit.receipt_id)
        .outerjoin(Session, Session.unit_id == CartridgeUnit.id)
        .outerjoin(Discard, and_(Discard.unit_id == CartridgeUnit.id, counts(Discard)))
        .outerjoin(recalled, recalled.c.lot_id == CartridgeUnit.lot_id)
        .order_by(CartridgeUnit.id)
    )
    if gtin is not None:
        query = query.where(CartridgeLot.gtin == _gtin(gtin))
    if lot is not None:
        query = query.where(CartridgeLot.lot == v.ident(lot, "--lot"))
    if status is not None:
        query = query.where(status_col == v.choice(status, "--status", STATUSES))
    from sterilog.services import late_marks

    found = ctx.session.execute(query).all()
    # The late mark is the receipt's (when the units were received vs entered).
    marks = late_marks.mark(ctx.session, CartridgeReceipt, (r.receipt_id for r in found))
    return [
        {
            "unit_id": r.id,
            "gtin": r.gtin,
            "lot": r.lot,
            "serial": r.serial,
            "expiry": r.expiry.isoformat(),
            "status": r.status,
            "received_at": iso(r.at),
            "session_id": r.session_id,
            **marks[r.receipt_id],
        }
        for r in found
    ]


# --- recall ------------------------------------------------------------------------------------


def sessions_for_lot(session: DbSession, gtin: str, lot: str) -> list[dict[str, Any]]:
    """Every session that used a cartridge of this lot: the notification list (look-forward).
    Also those whose recorded lot is this lot followed by an AI (21) serial: a scanner that
    dropped GS made them (compliance.facts.is_smuggled)."""
    from sterilog.compliance.facts import smuggled_lots
    from sterilog.services.gate import session_rows

    lots = [lot, *smuggled_lots(session, gtin, lot)]
    return session_rows(session, (Session.gtin == gtin) & (Session.lot.in_(lots)))


@dataclass(frozen=True)
class RecallResult:
    recall_id: int
    gtin: str
    lot: str
    units_in_stock: int
    sessions: list[dict[str, Any]]
    exposure_id: int | None = None


def _unknown_lot(gtin: str, lot: str) -> UserError:
    return UserError(
        f"no cartridge {_lot_name(gtin, lot)} was ever received; check the GTIN and lot"
        f" (`sterilog cartridge list --gtin {gtin}` shows what is on file)"
    )


def recall(
    ctx: Ctx, *, gtin: str, lot: str, reason: str, at: dt.datetime | None = None
) -> RecallResult:
    gtin = _gtin(gtin)
    lot = v.ident(lot, "--lot")
    why = v.text(reason, "--reason")
    assert why is not None
    at = ctx.event_time(at)
    row = find_lot(ctx.session, gtin, lot)
    if row is None:
        raise _unknown_lot(gtin, lot)
    earlier = lot_recall(ctx.session, row.id)
    if earlier is not None:
        raise UserError(
            f"{_lot_name(gtin, lot)} is already recalled (recall {earlier.id},"
            f" {local_date(earlier.at, ctx.clinic.tz).isoformat()}); nothing was recorded"
        )
    in_stock = ctx.session.execute(
        select(func.count(CartridgeUnit.id))
        .outerjoin(Session, Session.unit_id == CartridgeUnit.id)
        .outerjoin(Discard, and_(Discard.unit_id == CartridgeUnit.id, counts(Discard)))
        .where(CartridgeUnit.lot_id == row.id, Session.id.is_(None), Discard.id.is_(None))
    ).scalar_one()
    new = Recall(lot_id=row.id, reason=why, at=at, recorded_at=ctx.now, operator_id=ctx.actor_id)
    ctx.add(new)
    ctx.session.flush()
    sessions = sessions_for_lot(ctx.session, gtin, lot)
    from sterilog.services import exposures

    opened = exposures.open_rows(
        ctx, "recall", new.id, f"recall {new.id} of {_lot_name(gtin, lot)}", sessions
    )
    ctx.audit("cartridge.recall", [new, *opened])
    return RecallResult(
        recall_id=new.id,
        gtin=gtin,
        lot=lot,
        units_in_stock=int(in_stock),
        sessions=sessions,
        exposure_id=exposures.opened_id(opened),
    )


# --- discard -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscardResult:
    discard_id: int
    unit_id: int
    gtin: str
    lot: str
    serial: str | None


def discard(ctx: Ctx, raw: str, *, reason: str, at: dt.datetime | None = None) -> DiscardResult:
    try:
        scan = parse_scan(raw, ctx.clinic.scanner_gs, require_lot_and_expiry=False)
    except ScanError as error:
        raise UserError(f"{error}; nothing was discarded") from None
    if scan.lot is None:
        raise UserError(
            "missing lot (10): the scan does not say which lot to discard from;"
            " scan the cartridge's own label"
        )
    why = v.text(reason, "--reason")
    assert why is not None
    at = ctx.event_time(at)
    name = _lot_name(scan.gtin, scan.lot)
    lot_row = find_lot(ctx.session, scan.gtin, scan.lot)
    if lot_row is None:
        raise _unknown_lot(scan.gtin, scan.lot)

    if scan.serial is not None:
        unit_name = _unit_name(scan.gtin, scan.lot, scan.serial)
        unit = ctx.session.execute(
            select(CartridgeUnit).where(
                CartridgeUnit.lot_id == lot_row.id, CartridgeUnit.serial == scan.serial
            )
        ).scalar_one_or_none()
        if unit is None:
            raise UserError(f"{unit_name} was never received; nothing to discard")
        used = ctx.session.execute(
            select(Session.id).where(Session.unit_id == unit.id)
        ).scalar_one_or_none()
        if used is not None:
            raise UserError(
                f"{unit_name} was already used (session {used});"
                " a used cartridge cannot be discarded from stock"
            )
        done = ctx.session.execute(
            select(Discard).where(Discard.unit_id == unit.id)
        ).scalar_one_or_none()
        if done is not None and is_voided(ctx.session, "discard", done.id):
            # One discard per unit (a unique constraint): a voided discard cannot be redone.
            raise UserError(
                f"{unit_name} had its discard {done.id} voided; a unit's discard cannot be "
                "recorded twice: keep it out of use and note it on an incident or ask a manager"
            )
        if done is not None:
            raise UserError(
                f"{unit_name} was already discarded"
                f" (on {local_date(done.at, ctx.clinic.tz).isoformat()}: {done.reason})"
            )
    else:
        candidate = ctx.session.execute(
            select(CartridgeUnit)
            .outerjoin(Session, Session.unit_id == CartridgeUnit.id)
            .outerjoin(Discard, Discard.unit_id == CartridgeUnit.id)
            .where(
                CartridgeUnit.lot_id == lot_row.id,
                CartridgeUnit.serial.is_(None),
                Session.id.is_(None),
                Discard.id.is_(None),
            )
            .order_by(CartridgeUnit.id)
            .limit(1)
        ).scalar_one_or_none()
        if candidate is None:
            raise UserError(_why_no_unserialized(ctx.session, lot_row.id, name))
        unit = candidate

    row = Discard(unit_id=unit.id, reason=why, at=at, recorded_at=ctx.now, operator_id=ctx.actor_id)
    ctx.add(row)
    ctx.audit("cartridge.discard", [row])
    return DiscardResult(
        discard_id=row.id, unit_id=unit.id, gtin=scan.gtin, lot=scan.lot, serial=unit.serial
    )


def _why_no_unserialized(session: DbSession, lot_id: int, name: str) -> str:
    received, used, discarded = session.execute(
        select(
            func.count(CartridgeUnit.id),
            func.count(Session.id),
            func.count(Discard.id),
        )
        .outerjoin(Session, Session.unit_id == CartridgeUnit.id)
        .outerjoin(Discard, Discard.unit_id == CartridgeUnit.id)
        .where(CartridgeUnit.lot_id == lot_id, CartridgeUnit.serial.is_(None))
    ).one()
    if received == 0:
        return (
            f"{name} was received serialized only; scan the unit's own label"
            " (with its serial (21)) to discard it"
        )
    return (
        f"no unused unserialized cartridge of {name} is left to discard"
        f" ({received} received, {used} used, {discarded} already discarded)"
    )
