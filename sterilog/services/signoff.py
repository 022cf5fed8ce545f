"""Monthly sign-off (SPEC §6.7): a manager's e-signature of a month, kept in the audit chain.

A signature records who signed (staff id and the name as it stood then), what the signature
means (`reviewed` or `approved`), when, and the chain head `SEQ:HASH` at that moment: the
signature vouches for the log as it was, and `audit verify --anchor HEAD` later proves the log
still contains everything the manager saw. A month may be signed once it has begun, also before it
ends; signing again adds another signature and never replaces one.

A signature is also bound to the month's content: `digest` is a SHA-256 over every record the
month's report lists (and whether it is voided), and `marks` the highest id of each listed table
at signing. The monthly report then says per signature whether the month is unchanged since, or
`changed since signature #K` with the records added or voided after it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sterilog import audit
from sterilog.clock import fmt_local, iso, local_day_bounds, parse_month
from sterilog.compliance.voids import TABLE as VOIDS_TABLE
from sterilog.compliance.voids import latest_void_id, voided_map
from sterilog.errors import UserError
from sterilog.models import (
    AirRemovalTest,
    Base,
    BiRead,
    CartridgeReceipt,
    Cycle,
    DeviceClean,
    Discard,
    Incident,
    Recall,
    Refusal,
    RoomClean,
    SessionEnd,
    Signature,
    Staff,
    SterilizerService,
)
from sterilog.models import Session as SessionRow
from sterilog.services.base import Ctx

MEANINGS = ("reviewed", "approved")


def month_key(raw: str) -> str:
    """`YYYY-MM`, validated (a real month) and normalised."""
    year, month = parse_month(raw)
    return f"{year:04d}-{month:02d}"


def sign(ctx: Ctx, month: str, meaning: str) -> Signature:
    if ctx.actor is None:
        raise UserError("signing needs an operator: pass --operator ID")
    if meaning not in MEANINGS:
        raise UserError(f"--meaning must be one of {', '.join(MEANINGS)}, got {meaning!r}")
    key = month_key(month)
    start, _ = month_bounds(key, ctx.clinic.tz)
    if start > ctx.now:
        raise UserError(f"{key} has not started yet; a month can be signed once it has begun")
    seq, digest = audit.head(ctx.session)
    row = Signature(
        month=key,
        digest=digest_of(listed(ctx.session, key, ctx.clinic.tz)),
        marks=audit.canonical(_marks(ctx.session)),
        meaning=meaning,
        staff_id=ctx.actor.id,
        name=ctx.actor.name,
        head=f"{seq}:{digest}",
        at=ctx.now,
        recorded_at=ctx.now,
    )
    ctx.add(row)
    ctx.audit("sign", [row])
    return row


def signatures(session: Session, month: str) -> list[dict[str, Any]]:
    """Every signature of a month, oldest first (for the monthly report's signature block)."""
    rows = session.execute(
        select(Signature, Staff.code)
        .join(Staff, Staff.id == Signature.staff_id)
        .where(Signature.month == month_key(month))
        .order_by(Signature.at, Signature.id)
    ).all()
    return [
        {
            "signature_id": sig.id,
            "month": sig.month,
            "meaning": sig.meaning,
            "staff": code,
            "name": sig.name,
            "at": iso(sig.at),
            "head": sig.head,
        }
        for sig, code in rows
    ]


# --- what a signature vouches for -----------------------------------------------------------------

# Every record the monthly report lists, by its event time in the month, and its void kind.
LISTED: tuple[tuple[type[Base], str, str | None], ...] = (
    (Cycle, "at", "cycle"),
    (BiRead, "at", "bi-read"),
    (AirRemovalTest, "at", "air-removal"),
    (SterilizerService, "at", "service"),
    (RoomClean, "at", "room-clean"),
    (DeviceClean, "at", "device-clean"),
    (SessionRow, "started_at", None),
    (SessionEnd, "at", None),
    (Refusal, "at", None),
    (CartridgeReceipt, "at", None),
    (Discard, "at", "discard"),
    (Recall, "at", "recall"),
    (Incident, "at", "incident"),
)


@dataclass(frozen=True)
class Listed:
    table: str
    record_id: int
    at: dt.datetime
    voided_by: int | None  # the void's id


def month_bounds(month: str, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    year, number = parse_month(month)
    first = dt.date(year, number, 1)
    last = dt.date(year, number, calendar.monthrange(year, number)[1])
    return local_day_bounds(first, tz)[0], local_day_bounds(last, tz)[1]


def listed(session: Session, month: str, tz: ZoneInfo) -> list[Listed]:
    """Every record the month's report lists (event time in the month), with its void."""
    start, end = month_bounds(month, tz)
    out: list[Listed] = []
    for model, column, kind in LISTED:
        when = getattr(model, column)
        table = model.__tablename__
        ident = model.id  # type: ignore[attr-defined]
        voids = voided_map(session, kind) if kind is not None else {}
        for rid, at in session.execute(select(ident, when).where(when >= start, when < end)).all():
            void = voids.get(int(rid))
            out.append(Listed(table, int(rid), at, int(void.id) if void is not None else None))
    out.sort(key=lambda r: (r.table, r.record_id))
    return out


def digest_of(items: list[Listed]) -> str:
    lines = [f"{i.table}#{i.record_id}{' voided' if i.voided_by else ''}" for i in items]
    return "sha256:" + hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def _marks(session: Session) -> dict[str, int]:
    out: dict[str, int] = {}
    for model, _, _ in LISTED:
        top = session.execute(select(func.max(model.id))).scalar()  # type: ignore[attr-defined]
        out[model.__tablename__] = int(top or 0)
    out[VOIDS_TABLE] = latest_void_id(session)
    return out


@dataclass(frozen=True)
class Binding:
    """Whether the month is still what a signature vouched for."""

    signature_id: int
    unchanged: bool | None  # None: signed before signatures carried a digest
    added: list[Listed]
    voided: list[Listed]

    def text(self, tz: ZoneInfo) -> str:
        if self.unchanged is None:
            return "signed before sterilog bound signatures to the month's content"
        if self.unchanged:
            return "month unchanged since this signature"
        parts = [f"changed since signature #{self.signature_id}"]
        if self.added:
            parts.append(
                "added after it: "
                + ", ".join(f"{i.table} #{i.record_id} ({fmt_local(i.at, tz)})" for i in self.added)
            )
        if self.voided:
            parts.append(
                "voided after it: "
                + ", ".join(
                    f"{i.table} #{i.record_id} ({fmt_local(i.at, tz)})" for i in self.voided
                )
            )
        return "; ".join(parts)


def bindings(session: Session, month: str, tz: ZoneInfo) -> dict[int, Binding]:
    """Per signature of the month: unchanged since, or what was added or voided after it."""
    sigs = list(
        session.execute(
            select(Signature).where(Signature.month == month_key(month)).order_by(Signature.id)
        ).scalars()
    )
    if not sigs:
        return {}
    items = listed(session, month, tz)
    now_digest = digest_of(items)
    out: dict[int, Binding] = {}
    for sig in sigs:
        if sig.digest is None or sig.marks is None:
            out[sig.id] = Binding(sig.id, None, [], [])
            continue
        marks = json.loads(sig.marks)
        added = [i for i in items if i.record_id > int(marks.get(i.table, 0))]
        voided = [
            i
            for i in items
            if i.voided_by is not None
            and i.voided_by > int(marks.get(VOIDS_TABLE, 0))
            and i not in added
        ]
        out[sig.id] = Binding(sig.id, sig.digest == now_digest, added, voided)
    return out
