"""Spore tests as clinics run them (issue 16): the BI's expiry, mail-in labs, declared weeks.

How a mailed or invalid BI counts for the weekly rule is the compliance core's
(`compliance/cycle_rules.bi_counts_at`, facts in `compliance/history.bi_evidence`); this module
writes the records and answers the listings.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sterilog.clock import iso
from sterilog.compliance import history
from sterilog.compliance.vocab import BI_INVALID_REASONS, NEGATIVE, POSITIVE
from sterilog.errors import UnknownRecord, UserError
from sterilog.models import BiLabEvent, BiologicalIndicator, BiSkip, Cycle, Sterilizer
from sterilog.services import validate as v
from sterilog.services.base import Ctx

_EXPIRY = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_expiry(raw: str) -> dt.date:
    """YYYY-MM (the last day of that month, as on a BI's label) or YYYY-MM-DD."""
    m = _EXPIRY.match(raw.strip())
    try:
        if m is None:
            raise ValueError
        year, month = int(m[1]), int(m[2])
        day = int(m[3]) if m[3] else calendar.monthrange(year, month)[1]
        return dt.date(year, month, day)
    except ValueError:
        raise UserError(
            f"--bi-expires {raw!r} is not a date; give YYYY-MM or YYYY-MM-DD from the BI's label"
        ) from None


def parse_week(raw: str) -> tuple[str, dt.date, dt.date]:
    """YYYY-Www -> (canonical text, its Monday, the Monday after)."""
    m = _WEEK.match(raw.strip())
    try:
        if m is None:
            raise ValueError
        monday = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
    except ValueError:
        raise UserError(
            f"--week {raw!r} is not an ISO week; give YYYY-Www, e.g. 2026-W49"
        ) from None
    return f"{int(m[1]):04d}-W{int(m[2]):02d}", monday, monday + dt.timedelta(days=7)


@dataclass
class LabState:
    lab: str | None = None
    envelope: str | None = None
    mailed_at: dt.datetime | None = None
    received_at: dt.datetime | None = None
    invalid: str | None = None  # the reason
    report_no: str | None = None


def lab_states(session: Session, bi_ids: list[int] | None = None) -> dict[int, LabState]:
    stmt = select(BiLabEvent).order_by(BiLabEvent.at, BiLabEvent.id)
    if bi_ids is not None:
        stmt = stmt.where(BiLabEvent.bi_id.in_(bi_ids))
    out: dict[int, LabState] = {}
    for e in session.execute(stmt).scalars():
        st = out.setdefault(e.bi_id, LabState())
        if e.kind == "mailed":
            st.lab, st.envelope, st.mailed_at = e.lab, e.envelope, e.at
        elif e.kind == "received":
            st.received_at = e.at
        elif e.kind == "invalid":
            st.invalid = e.reason
        elif e.kind == "report":
            st.report_no = e.note
    return out


def state_of(b: history.BiResult, lab: LabState | None) -> str:
    """placed, mailed, received, negative, positive or invalid."""
    if lab is not None and lab.invalid is not None:
        return "invalid"
    if b.valid and b.result in (NEGATIVE, POSITIVE):
        return str(b.result)
    if lab is not None and lab.received_at is not None:
        return "received"
    if lab is not None and lab.mailed_at is not None:
        return "mailed"
    return "placed"


def is_invalid(session: Session, bi_id: int) -> bool:
    return (
        session.execute(
            select(BiLabEvent.id).where(BiLabEvent.bi_id == bi_id, BiLabEvent.kind == "invalid")
        ).first()
        is not None
    )


def _bi(ctx: Ctx, bi_id: int) -> tuple[BiologicalIndicator, Cycle]:
    bi = ctx.session.get(BiologicalIndicator, bi_id)
    if bi is None:
        raise UnknownRecord("BI", bi_id)
    cycle = ctx.session.get(Cycle, bi.cycle_id)
    assert cycle is not None
    return bi, cycle


def _open(ctx: Ctx, bi_id: int, what: str) -> tuple[BiologicalIndicator, Cycle, LabState]:
    bi, cycle = _bi(ctx, bi_id)
    state = lab_states(ctx.session, [bi_id]).get(bi_id, LabState())
    res = history.bi_result(ctx.session, bi_id)
    if state.invalid is not None:
        raise UserError(f"BI {bi_id} was declared invalid ({state.invalid}); it cannot be {what}")
    if res is not None and res.valid:
        raise UserError(f"BI {bi_id} already has a valid read ({res.result}); it cannot be {what}")
    return bi, cycle, state


def _event(ctx: Ctx, bi_id: int, kind: str, at: dt.datetime, **cols: Any) -> BiLabEvent:
    row = BiLabEvent(
        bi_id=bi_id, kind=kind, at=at, recorded_at=ctx.now, operator_id=ctx.actor_id, **cols
    )
    ctx.add(row)
    ctx.audit(f"bi.{kind}", [row])
    return row


def mail(
    ctx: Ctx, bi_id: int, *, lab: str, envelope: str | None = None, at: dt.datetime | None = None
) -> BiLabEvent:
    name = v.text(lab, "--lab", limit=200)
    env = v.text(envelope, "--envelope", required=False, limit=100)
    bi, cycle, state = _open(ctx, bi_id, "mailed")
    if state.mailed_at is not None:
        raise UserError(f"BI {bi_id} was already mailed to {state.lab} on {iso(state.mailed_at)}")
    when = ctx.event_time(at)
    if when < cycle.at:
        raise UserError(f"BI {bi_id} cannot be mailed before its load ran ({iso(cycle.at)})")
    return _event(ctx, bi.id, "mailed", when, lab=name, envelope=env)


def received(ctx: Ctx, bi_id: int, *, at: dt.datetime) -> BiLabEvent:
    bi, _, state = _open(ctx, bi_id, "received")
    if state.mailed_at is None:
        raise UserError(f"BI {bi_id} was not mailed; record `sterilog bi mail {bi_id}` first")
    if state.received_at is not None:
        raise UserError(f"BI {bi_id}'s receipt was already recorded ({iso(state.received_at)})")
    when = ctx.event_time(at)
    if when < state.mailed_at:
        raise UserError(f"the lab cannot receive BI {bi_id} before it was mailed")
    return _event(ctx, bi.id, "received", when)


def invalid(
    ctx: Ctx, bi_id: int, *, reason: str, note: str | None = None, at: dt.datetime | None = None
) -> BiLabEvent:
    why = v.choice(reason, "--reason", BI_INVALID_REASONS)
    text = v.text(note, "--note", required=False, limit=2000)
    if why == "other" and text is None:
        raise UserError("--reason other needs --note saying what was wrong")
    bi, _, _ = _open(ctx, bi_id, "declared invalid")
    return _event(ctx, bi.id, "invalid", ctx.event_time(at), reason=why, note=text)


def skip(ctx: Ctx, *, sterilizer: str, week: str, reason: str) -> BiSkip:
    """Declare a week in which the sterilizer ran no load (so no spore test was due)."""
    why = v.text(reason, "--reason", limit=2000)
    assert why is not None
    label, monday, next_monday = parse_week(week)
    st = ctx.by_code(Sterilizer, v.ident(sterilizer, "sterilizer ID"), "sterilizer")
    tz = ctx.clinic.tz
    if monday > ctx.now.astimezone(tz).date():
        raise UserError(f"{label} has not started yet; declare a week once it has passed")
    lo = dt.datetime.combine(monday, dt.time(), tz).astimezone(dt.UTC)
    hi = dt.datetime.combine(next_monday, dt.time(), tz).astimezone(dt.UTC)
    from sterilog.compliance.voids import counts

    ran = ctx.session.execute(
        select(Cycle.id)
        .where(Cycle.sterilizer_id == st.id, Cycle.at >= lo, Cycle.at < hi, counts(Cycle))
        .order_by(Cycle.at)
        .limit(1)
    ).scalar_one_or_none()
    if ran is not None:
        raise UserError(
            f"sterilizer {st.code} ran load {ran} in {label}; only a week without loads can be "
            "declared a week without a spore test"
        )
    if history.declared_week(ctx.session, st.id, lo, tz) is not None:
        raise UserError(f"{label} of sterilizer {st.code} is already declared")
    row = BiSkip(
        sterilizer_id=st.id,
        week=label,
        reason=why,
        at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit("bi.skip", [row])
    return row


def at_lab(session: Session, now: dt.datetime, receipt_days: int) -> list[dict[str, Any]]:
    """BIs mailed and not yet resolved (no valid read, not invalid): age and receipt deadline."""
    states = lab_states(session)
    pending = [i for i, s in states.items() if s.mailed_at is not None and s.invalid is None]
    out = []
    for bi_id in sorted(pending):
        res = history.bi_result(session, bi_id)
        if res is None or res.valid:
            continue
        cycle_at, code = session.execute(
            select(Cycle.at, Sterilizer.code)
            .join(Sterilizer, Sterilizer.id == Cycle.sterilizer_id)
            .where(Cycle.id == res.cycle_id)
        ).one()
        s = states[bi_id]
        deadline = cycle_at + dt.timedelta(days=receipt_days)
        out.append(
            {
                "bi_id": bi_id,
                "sterilizer": code,
                "lab": s.lab,
                "placed_at": cycle_at,
                "age_days": (now - cycle_at).days,
                "received": s.received_at is not None,
                "receipt_deadline": deadline,
                "receipt_overdue": s.received_at is None and now > deadline,
            }
        )
    return out
