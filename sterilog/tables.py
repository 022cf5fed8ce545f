"""The tables the per-client writes insert into, as plain Core `Table`s (issue 17).

`session start` and `session end` run before every client: their write path inserts with Core
`insert()` on these `Table`s and never imports `sterilog.models`, whose declarative class
building and mapper configuration cost more than the writes themselves (SPEC §10). There is ONE
schema: `sterilog.models` maps these very `Table` objects (`__table__ = tables.sessions`, ...) in
the same `MetaData`, so alembic, `audit verify` and the ORM see exactly what is defined here.

Cheap to import: SQLAlchemy Core and `sterilog.sqltypes` only.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from sterilog.sqltypes import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The models' metadata (`sterilog.models.Base.metadata` is this object).
metadata = MetaData(naming_convention=NAMING)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _at() -> Column[object]:
    """Event time (when it happened)."""
    return Column("at", UTCDateTime, index=True, nullable=False)


def _recorded() -> Column[object]:
    """When the record was made (may be later than `at` for a paper backlog)."""
    return Column("recorded_at", UTCDateTime, nullable=False)


def _operator() -> Column[int]:
    return Column("operator_id", Integer, ForeignKey("staff.id"), nullable=True)


# One client treatment. Cartridge fields are a snapshot taken at the gate.
sessions = Table(
    "sessions",
    metadata,
    _id(),
    Column("room_id", Integer, ForeignKey("rooms.id"), nullable=False),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    # Unique: the database itself guarantees a unit is used at most once, whatever the race.
    Column("unit_id", Integer, ForeignKey("cartridge_units.id"), unique=True, nullable=False),
    Column("practitioner_id", Integer, ForeignKey("staff.id"), nullable=False),
    Column("client", String(200), index=True, nullable=False),
    Column("depth_mm", Float, nullable=True),
    Column("gtin", String(14), nullable=False),
    Column("lot", String(20), nullable=False),
    Column("serial", String(20), nullable=True),
    Column("expiry", Date, nullable=False),
    Column("started_at", UTCDateTime, index=True, nullable=False),
    _recorded(),
    _operator(),
    Index("ix_sessions_room_started", "room_id", "started_at"),
    Index("ix_sessions_device_started", "device_id", "started_at"),
    Index("ix_sessions_gtin_lot", "gtin", "lot"),
)

session_packs = Table(
    "session_packs",
    metadata,
    _id(),
    Column("session_id", Integer, ForeignKey("sessions.id"), index=True, nullable=False),
    Column("pack_id", Integer, ForeignKey("packs.id"), nullable=False),
    Column("cycle_id", Integer, ForeignKey("cycles.id"), index=True, nullable=False),
    _recorded(),
    Index("ix_session_packs_pack", "pack_id", "session_id"),
)

session_ends = Table(
    "session_ends",
    metadata,
    _id(),
    Column("session_id", Integer, ForeignKey("sessions.id"), unique=True, nullable=False),
    Column("note", Text, nullable=True),
    _at(),
    _recorded(),
    _operator(),
)

# A session start the gate refused, with what was presented and every reason.
refusals = Table(
    "refusals",
    metadata,
    _id(),
    Column("room", String(200), nullable=False),
    Column("device", String(200), nullable=False),
    Column("cartridge_scan", Text, nullable=False),
    Column("gtin", String(14), nullable=True),
    Column("lot", String(20), nullable=True),
    Column("serial", String(20), nullable=True),
    Column("packs", Text, nullable=False),  # JSON list of pack IDs
    Column("client", String(200), nullable=False),
    Column("practitioner", String(200), nullable=False),
    Column("depth_mm", Float, nullable=True),
    Column("reasons", Text, nullable=False),  # JSON list of {code, message}
    _at(),
    _recorded(),
    _operator(),
)

# Append-only (triggers reject UPDATE/DELETE on both backends). See sterilog/audit.py.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("clock", String(20), nullable=False),
    Column("operator", String(200), nullable=True),
    Column("action", String(100), nullable=False),
    Column("records", Text, nullable=False),  # canonical JSON list of {table, id, content}
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), unique=True, nullable=False),
)
