"""What every service receives: the open transaction, the time, the actor and the clinic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from sterilog.errors import UnknownRecord, UserError

if TYPE_CHECKING:
    from sqlalchemy import Table

    from sterilog.audit import Entry
    from sterilog.models import Base
    from sterilog.rulepack import RulePack

# The models are imported only by code that writes or uses the ORM: `check` never needs them.
M = TypeVar("M", bound="Base")


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
    training: bool = False

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


DAMAGED = (
    "this database is damaged: its clinic settings row is missing although it holds records; "
    "restore it from a backup (docs/operations.md) and run `sterilog audit verify`"
)

_SETTINGS = text(
    "SELECT clinic_name, tz, rules_name, rules_toml, scanner_gs, training FROM settings "
    "ORDER BY id DESC LIMIT 1"
)


def load_clinic(session: Session) -> Clinic:
    row = session.execute(_SETTINGS).first()
    if row is None:
        from sterilog.errors import DatabaseError

        if session.execute(text("SELECT 1 FROM audit_log LIMIT 1")).first() is not None:
            raise DatabaseError(DAMAGED)
        raise UserError("this database has no clinic settings; run `sterilog init` first")
    return Clinic(
        name=row[0],
        tz_name=row[1],
        tz=ZoneInfo(row[1]),
        rules_name=row[2],
        rules_toml=row[3],
        scanner_gs=row[4],
        training=bool(row[5]),
    )


@dataclass
class Ctx:
    """A service's view of the world. `actor` is None only for reads and for `init`."""

    session: Session
    now: dt.datetime
    clock: str
    clinic: Clinic
    actor: Actor | None = None
    # Event times this write recorded that make it a late entry (see sterilog.lateness).
    late: list[dt.datetime] = field(default_factory=list)

    def event_time(self, at: dt.datetime | None) -> dt.datetime:
        """`--at` or now. An event in the future has not happened (SPEC §4)."""
        if at is None:
            return self.now
        if at > self.now:
            raise UserError("--at is in the future; give the time the event really happened")
        from sterilog.lateness import is_late

        if is_late(at, self.now, self.clinic.rules.late_entry_minutes):
            self.late.append(at)
        return at

    @property
    def actor_id(self) -> int | None:
        return self.actor.id if self.actor else None

    def audit(self, action: str, objects: Sequence[Base]) -> Entry:
        from sterilog import audit

        return audit.append(
            self.session,
            action=action,
            operator=self.actor.code if self.actor else None,
            now=self.now,
            clock=self.clock,
            objects=objects,
        )

    def audit_rows(self, action: str, rows: Sequence[tuple[Table, int]]) -> Entry:
        """`audit` for rows inserted with Core (`sterilog.tables`): (table, id) in order."""
        from sterilog import audit

        return audit.append_rows(
            self.session,
            action=action,
            operator=self.actor.code if self.actor else None,
            now=self.now,
            clock=self.clock,
            rows=rows,
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
