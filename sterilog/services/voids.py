"""Corrections (SPEC §7): a void makes a mistaken record stop counting; nothing is erased.

Every query that decides anything is in the compliance core (`sterilog/compliance/`), which
filters voided rows by construction. A void is itself an audited record, shown next to the
original in reports.

Sessions, refusals and receipts cannot be voided: they record physical acts (a cartridge was
opened, a client was turned away, stock arrived). Correct them with an incident note or a
discard instead.
"""

from __future__ import annotations

from typing import Any

from sterilog.compliance.voids import KINDS, new_void, void_of
from sterilog.errors import UnknownRecord, UserError
from sterilog.services import validate as v
from sterilog.services.base import Ctx


def void(ctx: Ctx, kind: str, record_id: int, *, reason: str) -> Any:
    if kind not in KINDS:
        raise UserError(f"cannot void a {kind!r}; voidable kinds: {', '.join(KINDS)}")
    model = KINDS[kind]
    if ctx.session.get(model, record_id) is None:
        raise UnknownRecord(kind, record_id)
    if void_of(ctx.session, kind, record_id) is not None:
        raise UserError(f"{kind} {record_id} is already voided")
    row = new_void(kind, record_id, v.text(reason, "--reason"), ctx.now, ctx.actor_id)
    ctx.add(row)
    ctx.audit("void", [row])
    return row


def _ranges(ids: list[int]) -> str:
    """1, 2, 3, 4, 7 -> "1-4, 7"."""
    out: list[str] = []
    for n in sorted(ids):
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = out[-1].split("-")[0] + f"-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


def what_it_was(session: Any, kind: str, record_id: int) -> str:
    """The record in words, as `void` confirms it ("positive read of BI 1", ...)."""
    from sterilog.models import (
        BiologicalIndicator,
        CartridgeLot,
        CartridgeUnit,
        Device,
        Room,
        Sterilizer,
    )

    row: Any = session.get(KINDS[kind], record_id)
    if row is None:
        raise UnknownRecord(kind, record_id)

    def code(model: Any, ident: int) -> str:
        other = session.get(model, ident)
        return str(other.code) if other is not None else str(ident)

    if kind == "bi-read":
        bi = session.get(BiologicalIndicator, row.bi_id)
        load = f" (load {bi.cycle_id})" if bi is not None else ""
        validity = "" if row.valid else " (invalid: the control did not grow)"
        return f"{row.result} read of BI {row.bi_id}{load}{validity}"
    if kind == "cycle":
        outcome = "passed" if row.passed else "failed"
        return f"load {row.id} ({code(Sterilizer, row.sterilizer_id)} #{row.load_no}, {outcome})"
    if kind == "air-removal":
        return f"air-removal test {row.id} of {code(Sterilizer, row.sterilizer_id)} ({row.result})"
    if kind == "room-clean":
        return f"{row.kind} clean {row.id} of room {code(Room, row.room_id)}"
    if kind == "device-clean":
        return f"clean {row.id} of device {code(Device, row.device_id)}"
    if kind == "incident":
        where = f"on session {row.session_id}" if row.session_id is not None else "(no session)"
        return f"{row.kind} incident {row.id} {where}"
    if kind == "recall":
        lot = session.get(CartridgeLot, row.lot_id)
        what = f"lot {lot.lot} of GTIN {lot.gtin}" if lot is not None else f"lot {row.lot_id}"
        return f"recall {row.id} of {what}"
    if kind == "discard":
        unit = session.get(CartridgeUnit, row.unit_id)
        serial = f" serial {unit.serial}" if unit is not None and unit.serial else ""
        return f"discard {row.id} of cartridge unit {row.unit_id}{serial}"
    if kind == "bi-skip":
        st = code(Sterilizer, row.sterilizer_id)
        return f"declaration {row.id} that {st} ran no load in week {row.week} ({row.reason})"
    if kind == "service":
        return f"service {row.id} of {code(Sterilizer, row.sterilizer_id)} ({row.note})"
    return f"{kind} {row.id}"


def void_in_words(ctx: Ctx, kind: str, record_id: int, *, reason: str) -> tuple[Any, str]:
    """Void a record, and say in words what was voided and what that changes."""
    from sterilog.compliance.facts import suspect_load_ids

    words = what_it_was(ctx.session, kind, record_id)
    suspect_before = suspect_load_ids(ctx.session) if kind in ("bi-read", "cycle") else set()
    row = void(ctx, kind, record_id, reason=reason)
    ctx.session.flush()
    if kind in ("bi-read", "cycle"):
        cleared = sorted(suspect_before - suspect_load_ids(ctx.session))
        if cleared:
            one = len(cleared) == 1
            words += (
                f"; load{'' if one else 's'} {_ranges(cleared)} "
                f"{'is' if one else 'are'} no longer suspect"
            )
    elif kind == "recall":
        words += "; the lot is no longer recalled"
    elif kind == "discard":
        words += "; the unit is back in stock"
    return row, words
