"""The monthly report's plain data: one row type per table, and `MonthlyData`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sterilog.audit import ClockAnomaly
from sterilog.reports.appendix import Appendix
from sterilog.reports.common import (
    Integrity,
    Period,
)
from sterilog.reports.decision import Decision
from sterilog.reports.late import LateEntry


@dataclass(frozen=True)
class GapRow:
    area: str
    what: str


@dataclass(frozen=True)
class Verdict:
    area: str
    verdict: str  # "OK", "GAPS" or "ATTENTION"
    detail: str


@dataclass(frozen=True)
class CycleRow:
    load_id: int
    at: dt.datetime
    sterilizer: str
    load_no: int
    program: str
    program_temp_c: float
    program_hold_min: float
    temp_c: float
    hold_min: float
    ci: str | None
    ci_type: int | None
    bi: str | None
    packs: tuple[str, ...]
    operator: str
    passed: bool
    suspect: bool
    voided: bool
    # Issue 15: where the readings came from, and the documents kept with the load.
    source: str = "typed"  # "typed" | "imported"
    device_cycle_no: int | None = None
    ci_pending: bool = False  # imported, chemical indicator not read yet
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttachmentRow:
    attachment_id: int
    record: str  # "load 12", "sterilizer AC1", ...
    filename: str
    size: int
    sha256: str
    note: str | None
    recorded_at: dt.datetime


@dataclass(frozen=True)
class BiRow:
    bi_id: int
    load_id: int
    load_no: int
    sterilizer: str
    lot: str
    placed_at: dt.datetime
    read_id: int | None
    read_at: dt.datetime | None
    result: str | None
    control: str | None
    valid: bool | None
    operator: str
    voided: bool


@dataclass(frozen=True)
class AirRow:
    test_id: int
    at: dt.datetime
    sterilizer: str
    result: str
    operator: str
    voided: bool


@dataclass(frozen=True)
class CleanRow:
    kind_of_record: str  # "room-clean" or "device-clean" (the void kind)
    record_id: int
    at: dt.datetime
    target: str
    kind: str
    product: str
    contact_min: float
    operator: str
    note: str | None
    voided: bool


@dataclass(frozen=True)
class SessionRow:
    session_id: int
    at: dt.datetime
    ended_at: dt.datetime | None
    room: str
    practitioner: str
    device: str
    gtin: str
    lot: str
    serial: str | None
    expiry: dt.date
    packs: tuple[str, ...]
    client: str


@dataclass(frozen=True)
class RefusalRow:
    refusal_id: int
    at: dt.datetime
    room: str
    device: str
    practitioner: str
    client: str
    cartridge: str
    codes: tuple[str, ...]


@dataclass(frozen=True)
class StockRow:
    gtin: str
    lot: str
    expiry: dt.date
    received: int
    used: int
    discarded: int
    expired: int
    recalled: bool
    on_hand_at_end: int


@dataclass(frozen=True)
class ReceiptRow:
    at: dt.datetime
    gtin: str
    lot: str
    expiry: dt.date
    quantity: int
    supplier: str | None
    invoice: str | None
    operator: str
    first_id: int = 0  # the delivery's first receipt row (late-entry lookup)


@dataclass(frozen=True)
class DiscardRow:
    discard_id: int
    at: dt.datetime
    gtin: str
    lot: str
    serial: str | None
    reason: str
    operator: str
    voided: bool


@dataclass(frozen=True)
class AffectedSession:
    session_id: int
    at: dt.datetime
    client: str
    room: str
    practitioner: str


@dataclass(frozen=True)
class RecallRow:
    recall_id: int
    at: dt.datetime
    gtin: str
    lot: str
    reason: str
    operator: str
    voided: bool
    sessions: tuple[AffectedSession, ...]


@dataclass(frozen=True)
class IncidentRow:
    incident_id: int
    at: dt.datetime
    kind: str
    severity: str | None
    note: str
    operator: str
    voided: bool
    trace: dict[str, Any]  # session_detail of its session; {} for one without a session


@dataclass(frozen=True)
class VoidRow:
    kind: str
    record_id: int
    record_at: dt.datetime
    summary: str
    reason: str
    by: str
    at: dt.datetime


@dataclass(frozen=True)
class SignatureRow:
    name: str
    at: dt.datetime
    meaning: str
    head: str
    signature_id: int = 0
    since: str = ""  # bound to the month: unchanged since, or what changed (signoff.bindings)


@dataclass(frozen=True)
class MonthlyData:
    period: Period
    rules_name: str
    gaps: list[GapRow]
    verdicts: list[Verdict]
    sessions_per_day: list[tuple[dt.date, int, int]]  # day, sessions, refusals
    cycles_per_week: list[tuple[str, int, int]]  # ISO week label, passed, failed
    cycles: list[CycleRow]
    bis: list[BiRow]
    air_tests: list[AirRow]
    cleans: list[CleanRow]
    sessions: list[SessionRow]
    refusals: list[RefusalRow]
    stock: list[StockRow]
    receipts: list[ReceiptRow]
    discards: list[DiscardRow]
    recalls: list[RecallRow]
    incidents: list[IncidentRow]
    voids: list[VoidRow]
    integrity: Integrity
    signatures: list[SignatureRow]
    counts: dict[str, int] = field(default_factory=dict)
    # Time and identity (sterilog.reports.late, audit.clock_anomalies): shown, never gaps.
    late: dict[tuple[str, int], LateEntry] = field(default_factory=dict)
    late_closers: list[tuple[LateEntry, int]] = field(default_factory=list)
    clock_anomalies: list[ClockAnomaly] = field(default_factory=list)
    attachments: list[AttachmentRow] = field(default_factory=list)
    # Issue 16: weeks declared without a spore test (`bi skip`): listed, never gaps.
    declared_weeks: list[tuple[str, str, str]] = field(default_factory=list)
    # Page 1 decides (issue 13, sterilog.reports.decision): exposures, locks, why not green.
    decision: Decision = field(default_factory=Decision)
    # passed loads of the week later made suspect by a positive BI (their own chart series)
    suspect_per_week: dict[str, int] = field(default_factory=dict)
    appendix: Appendix = field(default_factory=Appendix)  # sterilog.reports.appendix

    @property
    def incomplete(self) -> bool:
        return bool(self.gaps)
