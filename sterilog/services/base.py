"""What every service receives: the open transaction, the time, the actor and the clinic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from sterilog import audit
from sterilog.errors import UnknownRecord, UserError
from sterilog.models import AuditEntry, Base, Setting

if TYPE_CHECKING:
    from sterilog.rulepack import RulePack

M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class Actor:
    id: int
    code: str
    name: str
    role: str


@dataclass(frozen=True)
class Clinic:
    name: str
    tz_name: str
    tz: ZoneInfo
    rules_name: str
    rules_toml: str
    scanner_gs: str | None

    @property
    def rules(self) -> RulePack:
        return _pack(self.rules_toml, self.rules_name)


_PACK_CACHE: dict[tuple[str, str], RulePack] = {}


def _pack(text: str, name: str) -> RulePack:
    key = (text, name)
    if key not in _PACK_CACHE:
        from sterilog.rulepack import parse_pack

        _PACK_CACHE[key] = parse_pack(text, f"rule pack {name!r} stored in the database")
    return _PACK_CACHE[key]


def load_clinic(session: Session) -> Clinic:
    row = session.execute(select(Setting).order_by(Setting.id.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        raise UserError("this database has no clinic settings; run `sterilog init` first")
    return Clinic(
        name=row.clinic_name,
        tz_name=row.tz,
        tz=ZoneInfo(row.tz),
        rules_name=row.rules_name,
        rules_toml=row.rules_toml,
        scanner_gs=row.scanner_gs,
    )


@dataclass
class Ctx:
    """A service's view of the world. `actor` is None only for reads and for `init`."""

    session: Session
    now: dt.datetime
    clock: str
    clinic: Clinic
    actor: Actor | None = None

    @property
    def actor_id(self) -> int | None:
        return self.actor.id if self.actor else None

    def audit(self, action: str, objects: Sequence[Base]) -> AuditEntry:
        return audit.append(
            self.session,
            action=action,
            operator=self.actor.code if self.actor else None,
            now=self.now,
            clock=self.clock,
            objects=objects,
        )

    def add(self, *objects: Base) -> None:
        self.session.add_all(objects)

    def by_code(self, model: type[M], code: str, kind: str) -> M:
        obj = self.session.execute(
            select(model).where(model.code == code)  # type: ignore[attr-defined]
        ).scalar_one_or_none()
        if obj is None:
            raise UnknownRecord(kind, code)
        return obj
