"""Staff, roles and PINs (SPEC §5)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from sterilog.compliance import vocab
from sterilog.errors import PermissionDenied, UnknownRecord, UserError
from sterilog.models import PinEvent, Staff, StaffDeactivation
from sterilog.services.base import Actor, Ctx

ROLES = vocab.ROLES
MANAGER = vocab.MANAGER_ROLES
DAILY = vocab.DAILY_ROLES


# scrypt cost: ~50 ms on a clinic PC; slow enough that a stolen database does not give up a
# 4-6 digit PIN instantly, fast enough for every write at a terminal.
_N, _R, _P = 2**14, 8, 1


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    check_pin_format(pin)
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            pin.encode(), salt=bytes.fromhex(salt_hex), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def check_pin_format(pin: str) -> None:
    if not (4 <= len(pin) <= 64) or any(ord(c) < 32 for c in pin):
        raise UserError("a PIN must be 4 to 64 characters, without control characters")


def find_staff(session: Session, code: str) -> Staff | None:
    return session.execute(select(Staff).where(Staff.code == code)).scalar_one_or_none()


def is_deactivated(session: Session, staff_id: int, at: dt.datetime | None = None) -> bool:
    """Deactivated at `at` (None: now), unless a manager reinstated them since (issue 14)."""
    q = select(StaffDeactivation.id).where(StaffDeactivation.staff_id == staff_id)
    if at is not None:
        q = q.where(StaffDeactivation.at <= at)
    if session.execute(q.limit(1)).first() is None:
        return False
    from sterilog.compliance.registers import staff_active

    return not staff_active(session, staff_id, at)


def actor_of(staff: Staff) -> Actor:
    return Actor(id=staff.id, code=staff.code, name=staff.name, role=staff.role)


def authorize(actor: Actor, roles: frozenset[str], what: str) -> None:
    if actor.role not in roles:
        allowed = " or ".join(sorted(roles))
        raise PermissionDenied(
            f"{actor.code} is a {actor.role} and may not {what}; this needs a {allowed}"
        )


# --- PINs in force, failures and lockout ---------------------------------------------------------


def current_pin_hash(session: Session, staff: Staff) -> str | None:
    """The PIN in force: the newest `set` PIN event, else the one given at `staff add`."""
    row = session.execute(
        select(PinEvent.pin_hash)
        .where(PinEvent.staff_id == staff.id, PinEvent.kind == "set")
        .order_by(PinEvent.id.desc())
        .limit(1)
    ).first()
    return row[0] if row is not None else staff.pin_hash


def consecutive_failures(session: Session, staff_id: int, limit: int = 1000) -> int:
    """Wrong PINs since the last right one, PIN change or unlock (newest events first)."""
    kinds = session.execute(
        select(PinEvent.kind)
        .where(PinEvent.staff_id == staff_id)
        .order_by(PinEvent.id.desc())
        .limit(limit)
    ).scalars()
    count = 0
    for kind in kinds:
        if kind != "failed":
            break
        count += 1
    return count


def lock_message(code: str) -> str:
    return (
        f"{code} is locked after too many wrong PINs; a manager must run "
        f"`sterilog staff unlock {code}` first"
    )


def is_locked(session: Session, staff_id: int, attempts: int) -> bool:
    return consecutive_failures(session, staff_id, attempts) >= attempts


def pin_event(
    ctx: Ctx, staff: Staff, kind: str, *, pin: str | None = None, action: str
) -> PinEvent:
    """Record a PIN fact (audited; a new PIN is stored only as its scrypt hash)."""
    row = PinEvent(
        staff_id=staff.id,
        kind=kind,
        pin_hash=hash_pin(pin) if pin is not None else None,
        at=ctx.now,
        recorded_at=ctx.now,
        operator_id=ctx.actor_id,
    )
    ctx.add(row)
    ctx.audit(action, [row])
    return row


def set_pin(ctx: Ctx, code: str, new_pin: str, old_pin: str | None) -> PinEvent:
    """`staff pin`: your own PIN (the old one first, when you have one), or a manager's reset
    of someone else's (which also lifts a lockout: the new PIN is handed over in person)."""
    if ctx.actor is None:
        raise UserError("setting a PIN needs an operator: pass --operator ID")
    check_pin_format(new_pin)
    staff = find_staff(ctx.session, code)
    if staff is None:
        raise UnknownRecord("staff", code)
    if is_deactivated(ctx.session, staff.id):
        raise UserError(f"staff {code!r} has been deactivated")
    own = staff.id == ctx.actor.id
    if not own and ctx.actor.role != "manager":
        raise PermissionDenied(
            f"{ctx.actor.code} is a {ctx.actor.role} and may not set another's PIN (only "
            "their own); a manager may reset another's"
        )
    return pin_event(ctx, staff, "set", pin=new_pin, action="staff.pin")


def unlock(ctx: Ctx, code: str) -> PinEvent:
    staff = find_staff(ctx.session, code)
    if staff is None:
        raise UnknownRecord("staff", code)
    if current_pin_hash(ctx.session, staff) is None:
        raise UserError(f"{code} has no PIN, so nothing to unlock")
    return pin_event(ctx, staff, "unlock", action="staff.unlock")


def pinless_managers(session: Session) -> list[str]:
    """Active managers without a PIN (allowed on upgraded databases until they set one)."""
    out = []
    for staff in session.execute(
        select(Staff).where(Staff.role == "manager").order_by(Staff.code)
    ).scalars():
        if not is_deactivated(session, staff.id) and current_pin_hash(session, staff) is None:
            out.append(staff.code)
    return out


def locked_staff(session: Session, attempts: int) -> list[str]:
    out: list[str] = []
    ids = session.execute(select(PinEvent.staff_id).distinct()).scalars().all()
    if not ids:
        return out
    codes = dict(session.execute(select(Staff.id, Staff.code).where(Staff.id.in_(ids))).all())
    for staff_id in sorted(ids):
        if is_locked(session, staff_id, attempts):
            out.append(codes[staff_id])
    return sorted(out)
