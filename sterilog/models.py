"""Tables only. Every compliance fact is an inserted row; nothing is updated or deleted.

States that change over time (a device retired, a unit used, a BI read, a session ended) are
their own rows pointing at the original, so the original row never changes and `audit verify`
can compare every row with the content its audit entry recorded.

Every table has an integer surrogate key `id` allocated inside the write lock, so ids grow with
the audit sequence (audit verify relies on this to stream-compare in one pass). Registers carry
their user-facing ID in `code` (for devices the serial, for disinfectants the name).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sterilog import tables
from sterilog.compliance.vocab import (
    BI_INVALID_REASONS,
    BI_LAB_EVENTS,
    EXPOSURE_CAUSES,
    NOTIFY_HOW,
    ROLES,
    UNREACHABLE,
    sql_in,
)
from sterilog.sqltypes import UTCDateTime
from sterilog.tables import NAMING as NAMING


class Base(DeclarativeBase):
    # One schema: the per-client write path's Core tables (sterilog/tables.py) live in this
    # MetaData and are mapped below as they are (`__table__`), not declared a second time.
    metadata = tables.metadata


def _id() -> Mapped[int]:
    return mapped_column(Integer, primary_key=True, autoincrement=True)


def _code() -> Mapped[str]:
    return mapped_column(String(200), unique=True)


def _at() -> Mapped[dt.datetime]:
    """Event time (when it happened)."""
    return mapped_column(UTCDateTime, index=True)


def _recorded() -> Mapped[dt.datetime]:
    """When the record was made (may be later than `at` for a paper backlog)."""
    return mapped_column(UTCDateTime)


def _operator() -> Mapped[int | None]:
    return mapped_column(ForeignKey("staff.id"), nullable=True)


# --- clinic and people -------------------------------------------------------------------------


class Setting(Base):
    """Clinic settings; the newest row is in force (a change is a new row)."""

    __tablename__ = "settings"
    id: Mapped[int] = _id()
    clinic_name: Mapped[str] = mapped_column(String(200))
    tz: Mapped[str] = mapped_column(String(64))
    rules_name: Mapped[str] = mapped_column(String(200))
    rules_toml: Mapped[str] = mapped_column(Text)
    scanner_gs: Mapped[str | None] = mapped_column(String(8))
    recorded_at: Mapped[dt.datetime] = _recorded()
    # A training database (`init --training`, `demo`) accepts STERILOG_NOW; a live one never.
    training: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[int] = _id()
    code: Mapped[str] = _code()
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    license_no: Mapped[str | None] = mapped_column(String(100))
    license_expires: Mapped[dt.date | None] = mapped_column(Date)
    max_depth_mm: Mapped[float | None] = mapped_column(Float)
    pin_hash: Mapped[str | None] = mapped_column(String(300))
    recorded_at: Mapped[dt.datetime] = _recorded()
    __table_args__ = (CheckConstraint(f"role IN ({sql_in(ROLES)})", name="role"),)


class PinEvent(Base):
    """A PIN fact about a staff member: `set` (with the new hash), `failed` (a wrong or missing
    PIN), `ok` (a right PIN after failures) or `unlock` (a manager lifted a lockout). The newest
    `set` row holds the PIN in force (else staff.pin_hash); consecutive `failed` rows since the
    last other row count towards the lockout."""

    __tablename__ = "pin_events"
    id: Mapped[int] = _id()
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    pin_hash: Mapped[str | None] = mapped_column(String(300))
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (CheckConstraint("kind IN ('set', 'failed', 'ok', 'unlock')", name="kind"),)


class StaffDeactivation(Base):
    __tablename__ = "staff_deactivations"
    id: Mapped[int] = _id()
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


# --- places and equipment ----------------------------------------------------------------------


class Room(Base):
    __tablename__ = "rooms"
    id: Mapped[int] = _id()
    code: Mapped[str] = _code()
    name: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = _recorded()


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[int] = _id()
    code: Mapped[str] = _code()  # the pen's serial
    model: Mapped[str] = mapped_column(String(200))
    max_depth_mm: Mapped[float | None] = mapped_column(Float)
    recorded_at: Mapped[dt.datetime] = _recorded()


class DeviceRetirement(Base):
    __tablename__ = "device_retirements"
    id: Mapped[int] = _id()
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


class Sterilizer(Base):
    __tablename__ = "sterilizers"
    id: Mapped[int] = _id()
    code: Mapped[str] = _code()
    model: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(1))
    serial: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = _recorded()
    __table_args__ = (CheckConstraint("type IN ('B', 'N', 'S')", name="type"),)


class Program(Base):
    __tablename__ = "programs"
    id: Mapped[int] = _id()
    sterilizer_id: Mapped[int] = mapped_column(ForeignKey("sterilizers.id"))
    name: Mapped[str] = mapped_column(String(200))
    temp_c: Mapped[float] = mapped_column(Float)
    hold_min: Mapped[float] = mapped_column(Float)
    recorded_at: Mapped[dt.datetime] = _recorded()
    __table_args__ = (UniqueConstraint("sterilizer_id", "name"),)


class SterilizerService(Base):
    __tablename__ = "sterilizer_services"
    id: Mapped[int] = _id()
    sterilizer_id: Mapped[int] = mapped_column(ForeignKey("sterilizers.id"), index=True)
    note: Mapped[str] = mapped_column(Text)
    repair: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


class Pack(Base):
    __tablename__ = "packs"
    id: Mapped[int] = _id()
    code: Mapped[str] = _code()
    contents: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = _recorded()


class Disinfectant(Base):
    __tablename__ = "disinfectants"
    id: Mapped[int] = _id()
    code: Mapped[str] = _code()  # the product name
    contact_min: Mapped[float] = mapped_column(Float)
    reg_no: Mapped[str | None] = mapped_column(String(100))
    level: Mapped[str | None] = mapped_column(String(20))
    recorded_at: Mapped[dt.datetime] = _recorded()


# --- cartridges --------------------------------------------------------------------------------


class CartridgeLot(Base):
    __tablename__ = "cartridge_lots"
    id: Mapped[int] = _id()
    gtin: Mapped[str] = mapped_column(String(14))
    lot: Mapped[str] = mapped_column(String(20))
    expiry: Mapped[dt.date] = mapped_column(Date)
    production_date: Mapped[dt.date | None] = mapped_column(Date)
    recorded_at: Mapped[dt.datetime] = _recorded()
    __table_args__ = (UniqueConstraint("gtin", "lot"),)


class CartridgeReceipt(Base):
    __tablename__ = "cartridge_receipts"
    id: Mapped[int] = _id()
    lot_id: Mapped[int] = mapped_column(ForeignKey("cartridge_lots.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    supplier: Mapped[str | None] = mapped_column(String(200))
    invoice: Mapped[str | None] = mapped_column(String(200))
    scan: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


class CartridgeUnit(Base):
    """One physical cartridge. Serialized units have a serial; unserialized ones do not."""

    __tablename__ = "cartridge_units"
    id: Mapped[int] = _id()
    lot_id: Mapped[int] = mapped_column(ForeignKey("cartridge_lots.id"), index=True)
    receipt_id: Mapped[int] = mapped_column(ForeignKey("cartridge_receipts.id"))
    serial: Mapped[str | None] = mapped_column(String(20))
    recorded_at: Mapped[dt.datetime] = _recorded()
    __table_args__ = (UniqueConstraint("lot_id", "serial"),)


class Recall(Base):
    __tablename__ = "recalls"
    id: Mapped[int] = _id()
    lot_id: Mapped[int] = mapped_column(ForeignKey("cartridge_lots.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


class Discard(Base):
    __tablename__ = "discards"
    id: Mapped[int] = _id()
    unit_id: Mapped[int] = mapped_column(ForeignKey("cartridge_units.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


# --- sterilization -----------------------------------------------------------------------------


class Cycle(Base):
    """One sterilizer run (a load). `id` is the load ID that trace/label take."""

    __tablename__ = "cycles"
    id: Mapped[int] = _id()
    sterilizer_id: Mapped[int] = mapped_column(ForeignKey("sterilizers.id"))
    program_id: Mapped[int] = mapped_column(ForeignKey("programs.id"))
    load_no: Mapped[int] = mapped_column(Integer)
    temp_c: Mapped[float] = mapped_column(Float)
    hold_min: Mapped[float] = mapped_column(Float)
    ci: Mapped[str | None] = mapped_column(String(4))
    ci_type: Mapped[int | None] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (
        UniqueConstraint("sterilizer_id", "load_no"),
        Index("ix_cycles_sterilizer_at", "sterilizer_id", "at"),
    )


class CyclePack(Base):
    __tablename__ = "cycle_packs"
    id: Mapped[int] = _id()
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), index=True)
    pack_id: Mapped[int] = mapped_column(ForeignKey("packs.id"))
    recorded_at: Mapped[dt.datetime] = _recorded()
    __table_args__ = (
        UniqueConstraint("cycle_id", "pack_id"),
        Index("ix_cycle_packs_pack", "pack_id", "cycle_id"),
    )


class BiologicalIndicator(Base):
    __tablename__ = "bis"
    id: Mapped[int] = _id()
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), unique=True)
    lot: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime] = _recorded()


class BiRead(Base):
    __tablename__ = "bi_reads"
    id: Mapped[int] = _id()
    bi_id: Mapped[int] = mapped_column(ForeignKey("bis.id"), index=True)
    result: Mapped[str] = mapped_column(String(8))
    control: Mapped[str] = mapped_column(String(8))
    valid: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


class BiDetail(Base):
    """The BI as a physical thing (issue 16): its lot's expiry and the control's lot."""

    __tablename__ = "bi_details"
    id: Mapped[int] = _id()
    bi_id: Mapped[int] = mapped_column(ForeignKey("bis.id"), unique=True)
    expires: Mapped[dt.date | None] = mapped_column(Date)
    control_lot: Mapped[str | None] = mapped_column(String(100))
    recorded_at: Mapped[dt.datetime] = _recorded()


class BiLabEvent(Base):
    """A mail-in BI's life at the lab: mailed, received, invalid, or the lab's report number."""

    __tablename__ = "bi_lab_events"
    id: Mapped[int] = _id()
    bi_id: Mapped[int] = mapped_column(ForeignKey("bis.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    lab: Mapped[str | None] = mapped_column(String(200))
    envelope: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    read_id: Mapped[int | None] = mapped_column(ForeignKey("bi_reads.id"))
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (
        CheckConstraint(f"kind IN ({sql_in(BI_LAB_EVENTS)})", name="kind"),
        CheckConstraint(f"reason IN ({sql_in(BI_INVALID_REASONS)})", name="reason"),
    )


class BiSkip(Base):
    """A declared non-test week of a sterilizer (`bi skip`): no load ran, and why."""

    __tablename__ = "bi_skips"
    id: Mapped[int] = _id()
    sterilizer_id: Mapped[int] = mapped_column(ForeignKey("sterilizers.id"))
    week: Mapped[str] = mapped_column(String(8))  # ISO week, YYYY-Www, clinic-local
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (Index("ix_bi_skips_sterilizer_week", "sterilizer_id", "week"),)


class AirRemovalTest(Base):
    __tablename__ = "air_removal_tests"
    id: Mapped[int] = _id()
    sterilizer_id: Mapped[int] = mapped_column(ForeignKey("sterilizers.id"))
    result: Mapped[str] = mapped_column(String(4))
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (Index("ix_air_removal_tests_sterilizer_at", "sterilizer_id", "at"),)


class CycleCi(Base):
    """The chemical indicator read for an imported load after the import (`cycle ci`).

    A device cannot read the indicator: an imported load without `--ci` has no CI result (its
    packs are not sterile, gate code `pack-ci-missing`) until this row exists. One per load.
    """

    __tablename__ = "cycle_cis"
    id: Mapped[int] = _id()
    cycle_id: Mapped[int] = mapped_column(ForeignKey("cycles.id"), unique=True)
    ci: Mapped[str] = mapped_column(String(4))
    ci_type: Mapped[int | None] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)  # the CI (and its type) passed the rules
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


class SterilizerSerial(Base):
    """`sterilizer update --serial`: the newest row is in force over `sterilizers.serial`."""

    __tablename__ = "sterilizer_serials"
    id: Mapped[int] = _id()
    sterilizer_id: Mapped[int] = mapped_column(ForeignKey("sterilizers.id"), index=True)
    serial: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


class Attachment(Base):
    """An original document (PDF, photo, device file) kept in the database.

    The audit entry records `data` as its SHA-256 (audit.DIGEST_COLUMNS), so the log stays small
    and `audit verify` still detects a changed byte. `record_id` is the id of the row of `kind`.
    """

    __tablename__ = "attachments"
    id: Mapped[int] = _id()
    kind: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (Index("ix_attachments_kind_record", "kind", "record_id"),)


class ImportedCycle(Base):
    """One cycle read from the device's own record (`cycle import`): the evidence behind a
    load (`cycle_id`) or an air-removal test (`air_test_id`). Read values and computed ones
    are kept apart; `source_id` is the attachment holding the file's raw bytes."""

    __tablename__ = "imported_cycles"
    id: Mapped[int] = _id()
    sterilizer_id: Mapped[int] = mapped_column(ForeignKey("sterilizers.id"))
    serial: Mapped[str] = mapped_column(String(200))
    device_cycle_no: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(30))
    kind: Mapped[str] = mapped_column(String(12))
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"), unique=True)
    air_test_id: Mapped[int | None] = mapped_column(ForeignKey("air_removal_tests.id"), unique=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("attachments.id"), index=True)
    lines: Mapped[str] = mapped_column(String(30))  # the record's line range in the file
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # device clock
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    program_text: Mapped[str] = mapped_column(String(200))  # read
    set_temp_c: Mapped[float | None] = mapped_column(Float)  # read
    set_hold_min: Mapped[float | None] = mapped_column(Float)  # read
    device_ok: Mapped[bool] = mapped_column(Boolean)  # read
    device_reason: Mapped[str | None] = mapped_column(Text)  # read
    device_hold_s: Mapped[float | None] = mapped_column(Float)  # read (DAC "Dauer")
    hold_s: Mapped[float] = mapped_column(Float)  # computed from the trace
    temp_min_c: Mapped[float | None] = mapped_column(Float)  # computed
    temp_max_c: Mapped[float | None] = mapped_column(Float)
    pressure_min_kpa: Mapped[float | None] = mapped_column(Float)
    pressure_max_kpa: Mapped[float | None] = mapped_column(Float)
    pressure_unit: Mapped[str | None] = mapped_column(String(10))  # as printed
    samples: Mapped[int] = mapped_column(Integer)  # sterilization-phase samples
    passed: Mapped[bool] = mapped_column(Boolean)  # device verdict and computed verdict
    failures: Mapped[str] = mapped_column(Text)  # JSON list of reasons
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (
        UniqueConstraint("serial", "device_cycle_no"),
        Index("ix_imported_cycles_sterilizer_no", "sterilizer_id", "device_cycle_no"),
        CheckConstraint("kind IN ('load', 'air-removal')", name="kind"),
    )


# --- cleaning ----------------------------------------------------------------------------------


class RoomClean(Base):
    __tablename__ = "room_cleans"
    id: Mapped[int] = _id()
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    kind: Mapped[str] = mapped_column(String(20))
    disinfectant_id: Mapped[int] = mapped_column(ForeignKey("disinfectants.id"))
    contact_min: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (Index("ix_room_cleans_room_at", "room_id", "at"),)


class DeviceClean(Base):
    __tablename__ = "device_cleans"
    id: Mapped[int] = _id()
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    disinfectant_id: Mapped[int] = mapped_column(ForeignKey("disinfectants.id"))
    contact_min: Mapped[float] = mapped_column(Float)
    barrier_lot: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (Index("ix_device_cleans_device_at", "device_id", "at"),)


# --- sessions ----------------------------------------------------------------------------------


class Session(Base):
    """One client treatment. Cartridge fields are a snapshot taken at the gate."""

    __tablename__ = "sessions"
    __table__ = tables.sessions
    id: Mapped[int]
    room_id: Mapped[int]
    device_id: Mapped[int]
    unit_id: Mapped[int]
    practitioner_id: Mapped[int]
    client: Mapped[str]
    depth_mm: Mapped[float | None]
    gtin: Mapped[str]
    lot: Mapped[str]
    serial: Mapped[str | None]
    expiry: Mapped[dt.date]
    started_at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime]
    operator_id: Mapped[int | None]


class SessionPack(Base):
    __tablename__ = "session_packs"
    __table__ = tables.session_packs
    id: Mapped[int]
    session_id: Mapped[int]
    pack_id: Mapped[int]
    cycle_id: Mapped[int]
    recorded_at: Mapped[dt.datetime]


class SessionEnd(Base):
    __tablename__ = "session_ends"
    __table__ = tables.session_ends
    id: Mapped[int]
    session_id: Mapped[int]
    note: Mapped[str | None]
    at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime]
    operator_id: Mapped[int | None]


class Refusal(Base):
    """A session start the gate refused, with what was presented and every reason."""

    __tablename__ = "refusals"
    __table__ = tables.refusals
    id: Mapped[int]
    room: Mapped[str]
    device: Mapped[str]
    cartridge_scan: Mapped[str]
    gtin: Mapped[str | None]
    lot: Mapped[str | None]
    serial: Mapped[str | None]
    packs: Mapped[str]  # JSON list of pack IDs
    client: Mapped[str]
    practitioner: Mapped[str]
    depth_mm: Mapped[float | None]
    reasons: Mapped[str]  # JSON list of {code, message}
    at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime]
    operator_id: Mapped[int | None]


class Incident(Base):
    """An adverse event or exposure: of a client session, or (session None) with no client,
    such as a staff needlestick during reprocessing, then with room/device/staff as known."""

    __tablename__ = "incidents"
    id: Mapped[int] = _id()
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("sessions.id"), index=True, nullable=True
    )
    kind: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str | None] = mapped_column(String(10))
    note: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"), nullable=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"), nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)


class RegisterChange(Base):
    """A manager's correction of a register entry, dated: the entry itself is never
    overwritten. `kind` names the register (staff, device, disinfectant) and `record_id` its
    row; each non-null column is the new value from `at` on (null: unchanged). `reinstate`
    undoes a staff deactivation or a device retirement from `at` on. What is in force at a
    time is the entry with every change dated at or before it applied in order
    (sterilog.compliance)."""

    __tablename__ = "register_changes"
    id: Mapped[int] = _id()
    kind: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(20))
    license_no: Mapped[str | None] = mapped_column(String(100))
    license_expires: Mapped[dt.date | None] = mapped_column(Date)
    max_depth_mm: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(200))
    contact_min: Mapped[float | None] = mapped_column(Float)
    reg_no: Mapped[str | None] = mapped_column(String(100))
    level: Mapped[str | None] = mapped_column(String(20))
    reinstate: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (
        CheckConstraint("kind IN ('staff', 'device', 'disinfectant')", name="kind"),
        Index("ix_register_changes_kind_record", "kind", "record_id"),
    )


class Exposure(Base):
    """Clients who may have been exposed (issue 13): opened by a positive BI read, a recall, or
    a manager from an incident. The list at opening is kept (`ExposureClient`); whom it must
    tell is trace's list now (`services.exposures.affected_now`)."""

    __tablename__ = "exposures"
    id: Mapped[int] = _id()
    cause: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[int] = mapped_column(Integer)  # bi / recall / incident id
    summary: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (
        CheckConstraint(f"cause IN ({sql_in(EXPOSURE_CAUSES)})", name="cause"),
        Index("ix_exposures_cause_source", "cause", "source_id"),
    )


class ExposureClient(Base):
    """One affected session of an exposure (a client may have several)."""

    __tablename__ = "exposure_clients"
    id: Mapped[int] = _id()
    exposure_id: Mapped[int] = mapped_column(ForeignKey("exposures.id"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"))
    client: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[dt.datetime] = _recorded()


class ExposureNotice(Base):
    """A client told (or recorded as unreachable): how, when, by whom."""

    __tablename__ = "exposure_notices"
    id: Mapped[int] = _id()
    exposure_id: Mapped[int] = mapped_column(ForeignKey("exposures.id"), index=True)
    client: Mapped[str] = mapped_column(String(200))
    how: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (
        CheckConstraint(f"how IN ({sql_in((*NOTIFY_HOW, UNREACHABLE))})", name="how"),
    )


class ExposureClosure(Base):
    __tablename__ = "exposure_closures"
    id: Mapped[int] = _id()
    exposure_id: Mapped[int] = mapped_column(ForeignKey("exposures.id"), unique=True)
    note: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


# --- corrections and sign-off ------------------------------------------------------------------


class Void(Base):
    """A correction: the record `kind`/`record_id` stops counting. The original stays."""

    __tablename__ = "voids"
    id: Mapped[int] = _id()
    kind: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()
    __table_args__ = (UniqueConstraint("kind", "record_id"),)


class NotifySetting(Base):
    """Where `sterilog notify` sends (a change is a new row; the newest is in force). The SMTP
    password is never stored: it comes from STERILOG_SMTP_PASSWORD."""

    __tablename__ = "notify_settings"
    id: Mapped[int] = _id()
    smtp_host: Mapped[str | None] = mapped_column(String(200))
    smtp_port: Mapped[int | None] = mapped_column(Integer)
    starttls: Mapped[bool] = mapped_column(Boolean)
    smtp_user: Mapped[str | None] = mapped_column(String(200))
    from_addr: Mapped[str | None] = mapped_column(String(200))
    to_addrs: Mapped[str] = mapped_column(Text)  # JSON list
    webhook: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = _recorded()
    operator_id: Mapped[int | None] = _operator()


class NotificationSent(Base):
    """One item sent by `sterilog notify` on one clinic day (never sent twice that day)."""

    __tablename__ = "notifications_sent"
    id: Mapped[int] = _id()
    day: Mapped[dt.date] = mapped_column(Date)
    item: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # digest | alert
    channels: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[dt.datetime] = _recorded()
    __table_args__ = (Index("ix_notifications_sent_day_item", "day", "item"),)


class Signature(Base):
    __tablename__ = "signatures"
    id: Mapped[int] = _id()
    month: Mapped[str] = mapped_column(String(7), index=True)
    meaning: Mapped[str] = mapped_column(String(20))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    name: Mapped[str] = mapped_column(String(200))
    head: Mapped[str] = mapped_column(String(80))  # chain head SEQ:HASH at signing
    # sha256 of everything the month's report listed at signing (None: signed before 0002).
    digest: Mapped[str | None] = mapped_column(String(80))
    # {table: highest id} of the listed tables at signing: what was added or voided after.
    marks: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = _at()
    recorded_at: Mapped[dt.datetime] = _recorded()


# --- the audit log -----------------------------------------------------------------------------


class AuditEntry(Base):
    """Append-only (triggers reject UPDATE/DELETE on both backends). See sterilog/audit.py."""

    __tablename__ = "audit_log"
    __table__ = tables.audit_log
    seq: Mapped[int]
    at: Mapped[dt.datetime]
    clock: Mapped[str]
    operator: Mapped[str | None]
    action: Mapped[str]
    records: Mapped[str]  # canonical JSON list of {table, id, content}
    prev_hash: Mapped[str]
    hash: Mapped[str]


# Record tables covered by `audit verify`, in dependency order. A new record type only has to
# be listed here (and written through audit.append) to be covered.
AUDITED: tuple[type[Base], ...] = (
    Setting,
    Staff,
    PinEvent,
    StaffDeactivation,
    Room,
    Device,
    DeviceRetirement,
    Sterilizer,
    Program,
    SterilizerService,
    Pack,
    Disinfectant,
    CartridgeLot,
    CartridgeReceipt,
    CartridgeUnit,
    Recall,
    Discard,
    Cycle,
    CyclePack,
    BiologicalIndicator,
    BiRead,
    AirRemovalTest,
    RoomClean,
    DeviceClean,
    Session,
    SessionPack,
    SessionEnd,
    Refusal,
    Incident,
    RegisterChange,
    Void,
    Signature,
    CycleCi,
    SterilizerSerial,
    Attachment,
    ImportedCycle,
    BiDetail,
    BiLabEvent,
    BiSkip,
    NotifySetting,
    NotificationSent,
    Exposure,
    ExposureClient,
    ExposureNotice,
    ExposureClosure,
)
