"""Staff, roles and PINs (SPEC §5)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from sterilog.compliance import vocab
from sterilog.errors import PermissionDenied, UserError
from sterilog.models import Staff, StaffDeactivation
from sterilog.services.base import Actor

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
    q = select(StaffDeactivation.id).where(StaffDeactivation.staff_id == staff_id)
    if at is not None:
        q = q.where(StaffDeactivation.at <= at)
    return session.execute(q.limit(1)).first() is not None


def actor_of(staff: Staff) -> Actor:
    return Actor(id=staff.id, code=staff.code, name=staff.name, role=staff.role)


def authorize(actor: Actor, roles: frozenset[str], what: str) -> None:
    if actor.role not in roles:
        allowed = " or ".join(sorted(roles))
        raise PermissionDenied(
            f"{actor.code} is a {actor.role} and may not {what}; this needs a {allowed}"
        )
