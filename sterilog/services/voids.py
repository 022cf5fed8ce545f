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
