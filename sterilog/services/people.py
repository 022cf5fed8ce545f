"""Staff, roles and PINs (SPEC §5)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from sterilog.compliance import vocab
from sterilog.errors import PermissionDenied, UnknownRecord, UserError
from sterilog.services.base import Actor, Ctx
from sterilog.sqltypes import UTCDateTime

if TYPE_CHECKING:
    from sterilog.models import PinEvent, Staff

# Every write looks its operator up (cli/app.py `App.writing`): the lookups it needs are plain
# SQL, and the models are imported only by the functions that insert or list (issue 17: the
# per-client write path imports no mapped class and compiles no ORM statement).

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
    from sterilog.models import Staff

    return session.execute(select(Staff).where(Staff.code == code)).scalar_one_or_none()


@dataclass(frozen=True)
class Operator:
    """A staff member as a command sees them: the name, the role and the active state IN FORCE
    now (the staff row with its dated corrections, `compliance.registers`), and the PIN given
    at `staff add` (the PIN in force: `current_pin_hash`)."""

    id: int
    code: str
    name: str
    role: str
    active: bool
    pin_hash: str | None


_STAFF_BY_CODE = text("SELECT id, code, name, role, pin_hash FROM staff WHERE code = :code")


def operator(session: Session, code: str) -> Operator | None:
    """`code` as in force now, in plain SQL (None: no such staff member)."""
    row = session.execute(_STAFF_BY_CODE, {"code": code}).first()
    if row is None:
        return None
    from sterilog.compliance.registers import overlay

    staff_id = int(row[0])
    now = overlay(session, "staff", staff_id, {"name": row[2], "role": row[3]})
    return Operator(staff_id, row[1], now.name, now.role, now.active, row[4])


_DEACTIVATED = text("SELECT id FROM staff_deactivations WHERE staff_id = :id LIMIT 1")
_DEACTIVATED_AT = text(
    "SELECT id FROM staff_deactivations WHERE staff_id = :id AND at <= :at LIMIT 1"
).bindparams(bindparam("at", type_=UTCDateTime))


def is_deactivated(session: Session, staff_id: int, at: dt.datetime | None = None) -> bool:
    """Deactivated at `at` (None: now), unless a manager reinstated them since (issue 14)."""
    if at is None:
        found = session.execute(_DEACTIVATED, {"id": staff_id}).first()
    else:
        found = session.execute(_DEACTIVATED_AT, {"id": staff_id, "at": at}).first()
    if found is None:
        return False
    from sterilog.compliance.registers import staff_active

    return not staff_active(session, staff_id, at)


def actor_of(staff: Staff | Operator) -> Actor:
    """The actor of a write. Give an `Operator` (the role in force); a `Staff` row carries the
    role recorded at `staff add`, before any correction."""
    return Actor(id=staff.id, code=staff.code, name=staff.name, role=staff.role)


def authorize(actor: Actor, roles: frozenset[str], what: str) -> None:
    if actor.role not in roles:
        allowed = " or ".join(sorted(roles))
        raise PermissionDenied(
            f"{actor.code} is a {actor.role} and may not {what}; this needs a {allowed}"
        )


# --- PINs in force, failures and lockout ---------------------------------------------------------


_PIN_SET = text(
    "SELECT pin_hash FROM pin_events WHERE staff_id = :id AND kind = 'set' "
    "ORDER BY id DESC LIMIT 1"
)
_PIN_KINDS = text(
    "SELECT kind FROM pin_events WHERE staff_id = :id ORDER BY id DESC LIMIT :limit"
)


def current_pin_hash(session: Session, staff: Staff | Operator) -> str | None:
    """The PIN in force: the newest `set` PIN event, else the one given at `staff add`."""
    row = session.execute(_PIN_SET, {"id": staff.id}).first()
    return row[0] if row is not None else staff.pin_hash


def consecutive_failures(session: Session, staff_id: int, limit: int = 1000) -> int:
    """Wrong PINs since the last right one, PIN change or unlock (newest events first)."""
    kinds = session.execute(_PIN_KINDS, {"id": staff_id, "limit": limit}).scalars()
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
    from sterilog.models import PinEvent

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
    from sterilog.models import Staff

    out = []
    for staff in session.execute(
        select(Staff).where(Staff.role == "manager").order_by(Staff.code)
    ).scalars():
        if not is_deactivated(session, staff.id) and current_pin_hash(session, staff) is None:
            out.append(staff.code)
    return out


def locked_staff(session: Session, attempts: int) -> list[str]:
    from sterilog.models import PinEvent, Staff

    out: list[str] = []
    ids = session.execute(select(PinEvent.staff_id).distinct()).scalars().all()
    if not ids:
        return out
    codes = dict(session.execute(select(Staff.id, Staff.code).where(Staff.id.in_(ids))).all())
    for staff_id in sorted(ids):
        if is_locked(session, staff_id, attempts):
            out.append(codes[staff_id])
    return sorted(out)
