"""Corrections (SPEC §7): a void makes a mistaken record stop counting; nothing is erased.

Queries that decide anything (gate, sterilizer state, status, report gaps) filter with
`counts(Model)`. A void is itself an audited record, shown next to the original in reports.

Sessions, refusals and receipts cannot be voided: they record physical acts (a cartridge was
opened, a client was turned away, stock arrived). Correct them with an incident note or a
discard instead.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select

from sterilog.errors import UnknownRecord, UserError
from sterilog.models import (
    AirRemovalTest,
    Base,
    BiRead,
    Cycle,
    DeviceClean,
    Discard,
    Incident,
    Recall,
    RoomClean,
    SterilizerService,
    Void,
)
from sterilog.services import validate as v
from sterilog.services.base import Ctx

KINDS: dict[str, type[Base]] = {
    "cycle": Cycle,
    "bi-read": BiRead,
    "air-removal": AirRemovalTest,
    "room-clean": RoomClean,
    "device-clean": DeviceClean,
    "incident": Incident,
    "recall": Recall,
    "discard": Discard,
    "service": SterilizerService,
}
KIND_OF: dict[type[Base], str] = {model: kind for kind, model in KINDS.items()}


def counts(model: type[Base]) -> Any:
    """SQL condition: this row of `model` has not been voided."""
    kind = KIND_OF[model]
    return ~exists().where(Void.kind == kind, Void.record_id == model.id)  # type: ignore[attr-defined]


def is_voided(session: Any, model: type[Base], record_id: int) -> bool:
    kind = KIND_OF[model]
    row = session.execute(
        select(Void.id).where(Void.kind == kind, Void.record_id == record_id)
    ).first()
    return row is not None


def void(ctx: Ctx, kind: str, record_id: int, *, reason: str) -> Void:
    if kind not in KINDS:
        raise UserError(f"cannot void a {kind!r}; voidable kinds: {', '.join(KINDS)}")
    model = KINDS[kind]
    if ctx.session.get(model, record_id) is None:
        raise UnknownRecord(kind, record_id)
    if is_voided(ctx.session, model, record_id):
        raise UserError(f"{kind} {record_id} is already voided")
    row = Void(
        kind=kind,
        record_id=record_id,
        reason=v.text(reason, "--reason"),
        at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("void", [row])
    return row


def voided_map(session: Any, kind: str) -> dict[int, Void]:
    """Every void of one kind, by record id (for reports)."""
    return {
        v_.record_id: v_ for v_ in session.execute(select(Void).where(Void.kind == kind)).scalars()
    }
