"""Monthly sign-off (SPEC §6.7): a manager's e-signature of a month, kept in the audit chain.

A signature records who signed (staff id and the name as it stood then), what the signature
means (`reviewed` or `approved`), when, and the chain head `SEQ:HASH` at that moment: the
signature vouches for the log as it was, and `audit verify --anchor HEAD` later proves the log
still contains everything the manager saw. A month may be signed at any time, also before it
ends; signing again adds another signature and never replaces one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sterilog import audit
from sterilog.clock import iso, parse_month
from sterilog.errors import UserError
from sterilog.models import Signature, Staff
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
    seq, digest = audit.head(ctx.session)
    row = Signature(
        month=month_key(month),
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
