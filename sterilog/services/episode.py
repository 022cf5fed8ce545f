"""The positive-BI episode as one story (issue 13): the positive read, the lock and its end, the
retest BIs, the service notes, the suspect loads and what became of their packs, the exposure
and its notification progress, and who cleared the sterilizer.

Every verdict comes from the compliance core: whether a BI is positive (`history.bi_result`),
which loads it made suspect (`facts.suspect_loads_of_bi`), whether the sterilizer is locked after
a read (`cycle_rules.lock_state` over `history.lock_facts`), the affected sessions (`trace`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import iso
from sterilog.compliance import cycle_rules, facts, history
from sterilog.compliance.voids import counts
from sterilog.models import (
    BiologicalIndicator,
    Cycle,
    CyclePack,
    Staff,
    Sterilizer,
    SterilizerService,
)
from sterilog.models import BiRead as Read
from sterilog.services.base import load_clinic

_TICK = dt.timedelta(microseconds=1)


def _code(db: DbSession, staff_id: int | None) -> str | None:
    if staff_id is None:
        return None
    return db.execute(select(Staff.code).where(Staff.id == staff_id)).scalar_one_or_none()


def _locked_after(db: DbSession, st_id: int, at: dt.datetime, pack: Any) -> cycle_rules.Lock:
    return cycle_rules.lock_state(
        history.lock_facts(
            db, st_id, at + _TICK, pack.requalify_bis, pack.requalify_bis_after_repair
        )
    )


def _retests(
    db: DbSession, st_id: int, start: dt.datetime, bi_id: int, pack: Any
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The BIs run on the sterilizer after the positive read, in order, until the lock ends;
    and the read that ended it (None: still locked)."""
    rows = db.execute(
        select(BiologicalIndicator.id, Cycle.id, Cycle.at)
        .join(Cycle, Cycle.id == BiologicalIndicator.cycle_id)
        .where(Cycle.sterilizer_id == st_id, Cycle.at >= start, counts(Cycle))
        .order_by(Cycle.at, Cycle.id)
    ).all()
    out: list[dict[str, Any]] = []
    for b_id, load_id, load_at in rows:
        if b_id == bi_id:
            continue
        res = history.bi_result(db, int(b_id))
        assert res is not None
        out.append(
            {
                "bi_id": int(b_id),
                "load_id": int(load_id),
                "load_at": iso(load_at),
                "result": res.result,
                "valid": res.valid,
                "read_at": iso(res.read_at),
            }
        )
        if (
            res.valid
            and res.read_at is not None
            and res.result == "negative"
            and not _locked_after(db, st_id, res.read_at, pack).locked
        ):
            who = db.execute(select(Read.operator_id).where(Read.id == res.read_id)).scalar()
            return out, {"at": iso(res.read_at), "bi_id": int(b_id), "by": _code(db, who)}
    return out, None


def positive_episode(db: DbSession, bi_id: int) -> dict[str, Any] | None:
    """The episode a valid positive read of this BI started (None: the BI is not positive)."""
    bi = history.bi_result(db, bi_id)
    if bi is None or not bi.positive or bi.read_at is None:
        return None
    pack = load_clinic(db).rules
    cycle = db.get(Cycle, bi.cycle_id)
    assert cycle is not None
    st = db.get(Sterilizer, cycle.sterilizer_id)
    assert st is not None
    start = bi.read_at
    retests, cleared = _retests(db, st.id, start, bi_id, pack)
    until = dt.datetime.fromisoformat(cleared["at"].replace("Z", "+00:00")) if cleared else None
    svc_q = select(SterilizerService).where(
        SterilizerService.sterilizer_id == st.id,
        SterilizerService.at >= start,
        counts(SterilizerService),
    )
    if until is not None:
        svc_q = svc_q.where(SterilizerService.at <= until)
    services = [
        {
            "at": iso(s.at),
            "note": s.note,
            "repair": s.repair,
            "by": _code(db, s.operator_id),
        }
        for s in db.execute(svc_q.order_by(SterilizerService.at)).scalars()
    ]
    suspects = facts.suspect_loads_of_bi(db, bi_id)
    return {
        "bi_id": bi_id,
        "sterilizer": st.code,
        "load_id": cycle.id,
        "read_at": iso(start),
        "read_by": _code(
            db, db.execute(select(Read.operator_id).where(Read.id == bi.read_id)).scalar()
        ),
        "lock_from": iso(start),
        "lock_until": cleared["at"] if cleared else None,
        "cleared_by": cleared["by"] if cleared else None,
        "retests": retests,
        "services": services,
        "suspect_loads": [_load_fate(db, load, start) for load in suspects],
        "exposure": _exposure(db, bi_id),
    }


def _load_fate(db: DbSession, load_id: int, read_at: dt.datetime) -> dict[str, Any]:
    """A suspect load: its packs, and how many sessions used them before the read (after it
    the gate blocks them: `pack-load-suspect`)."""
    from sterilog.services.trace import loads_sessions

    packs = int(
        db.execute(
            select(func.count(CyclePack.id)).where(CyclePack.cycle_id == load_id)
        ).scalar_one()
    )
    used = loads_sessions(db, [load_id])
    at = db.execute(select(Cycle.at).where(Cycle.id == load_id)).scalar_one()
    return {
        "load_id": load_id,
        "at": iso(at),
        "packs": packs,
        "sessions_before_read": sum(1 for s in used if s["started_at"] <= iso(read_at)),
        "sessions_after_read": sum(1 for s in used if s["started_at"] > iso(read_at)),
    }


def _exposure(db: DbSession, bi_id: int) -> dict[str, Any] | None:
    from sterilog.models import Exposure
    from sterilog.services.exposures import states

    ids = db.execute(
        select(Exposure.id).where(Exposure.cause == "bi", Exposure.source_id == bi_id)
    ).scalars()
    found = states(db, [int(i) for i in ids])
    # after a void and a new positive read of the same BI, the latest one is the one that stands
    return found[-1].as_dict() if found else None
