"""Voids for ORM readers (services, reports, export): the one module besides `facts` that
names the `voids` table. Writing a void is a use case: `services/voids.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import and_, exists, func, or_, select

from sterilog.compliance.vocab import VOIDABLE
from sterilog.models import Base, Void

MODELS: dict[str, type[Base]] = {
    mapper.class_.__tablename__: mapper.class_ for mapper in Base.registry.mappers
}
KINDS: dict[str, type[Base]] = {kind: MODELS[table] for kind, table in VOIDABLE.items()}
KIND_OF: dict[type[Base], str] = {model: kind for kind, model in KINDS.items()}
TABLE: str = Void.__tablename__


def counts(model: type[Base]) -> Any:
    """SQL condition: this row of `model` has not been voided."""
    kind = KIND_OF[model]
    return ~exists().where(Void.kind == kind, Void.record_id == model.id)  # type: ignore[attr-defined]


def voided(model: type[Base]) -> Any:
    """SQL expression: this row of `model` has been voided."""
    return ~counts(model)


def void_of(session: Any, kind: str, record_id: int) -> Void | None:
    row: Void | None = session.execute(
        select(Void).where(Void.kind == kind, Void.record_id == record_id).limit(1)
    ).scalar_one_or_none()
    return row


def void_ids(session: Any, kind: str, ids: Sequence[int]) -> dict[int, int]:
    """record id -> void id, for the voided ones among `ids`."""
    if not ids:
        return {}
    return {
        int(rid): int(vid)
        for rid, vid in session.execute(
            select(Void.record_id, Void.id).where(Void.kind == kind, Void.record_id.in_(list(ids)))
        ).all()
    }


def latest_void_id(session: Any) -> int:
    """The highest void id so far (0: none): a mark of what a signature has seen."""
    return int(session.execute(select(func.max(Void.id))).scalar() or 0)


def voided_map(session: Any, kind: str) -> dict[int, Void]:
    """Every void of one kind, by record id (for reports)."""
    return {
        v_.record_id: v_ for v_ in session.execute(select(Void).where(Void.kind == kind)).scalars()
    }


def voids_touching(
    session: Any, start: dt.datetime, end: dt.datetime
) -> Iterator[tuple[str, Void, Any]]:
    """(kind, void, record) for voids made in [start, end) or of records whose event is in it."""
    for kind, model in KINDS.items():
        at = model.at  # type: ignore[attr-defined]
        for void, record in session.execute(
            select(Void, model)
            .join(model, model.id == Void.record_id)  # type: ignore[attr-defined]
            .where(
                Void.kind == kind,
                or_(and_(Void.at >= start, Void.at < end), and_(at >= start, at < end)),
            )
        ).all():
            yield kind, void, record


def voids_stmt() -> Any:
    """Every void, for a full export (`select(Void)`; the caller adds its period and order)."""
    return Void


def new_void(
    kind: str, record_id: int, reason: str | None, at: dt.datetime, operator_id: int | None
) -> Void:
    """The row that voids one record (the caller adds and audits it)."""
    return Void(
        kind=kind,
        record_id=record_id,
        reason=reason,
        at=at,
        recorded_at=at,
        operator_id=operator_id,
    )
