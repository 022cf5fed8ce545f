"""The late mark of listed records (issue 11): one query per listing, the rule in
sterilog.lateness. Every list command adds these keys to its JSON rows:
`late` (true|false), `recorded_at` (the time of record) and `entered_by` (staff ID)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import iso
from sterilog.lateness import is_late
from sterilog.models import Base, Staff
from sterilog.services.base import load_clinic


def mark(
    db: DbSession, model: type[Base], ids: Iterable[int | None], at: str = "at"
) -> dict[int, dict[str, Any]]:
    """{record id: {"late", "recorded_at", "entered_by"}} for these rows of `model`, whose
    event time is the column `at` (a session's is `started_at`)."""
    wanted = sorted({int(i) for i in ids if i is not None})
    if not wanted:
        return {}
    minutes = load_clinic(db).rules.late_entry_minutes
    m: Any = model
    out: dict[int, dict[str, Any]] = {}
    for chunk in (wanted[i : i + 500] for i in range(0, len(wanted), 500)):
        q = (
            select(m.id, getattr(m, at), m.recorded_at, Staff.code)
            .outerjoin(Staff, Staff.id == m.operator_id)
            .where(m.id.in_(chunk))
        )
        for rid, when, recorded, by in db.execute(q).all():
            out[int(rid)] = {
                "late": is_late(when, recorded, minutes),
                "recorded_at": iso(recorded),
                "entered_by": by,
            }
    return out


def unmarked() -> dict[str, Any]:
    """The keys of a row with no record behind it (a pending BI has no read yet)."""
    return {"late": False, "recorded_at": None, "entered_by": None}
