"""Gaps: each is a `gap` row of the one rule table (sterilog/compliance/table.py), the gate's or
`cycle record`'s own rule applied to the facts as of the record's own time."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import local_day_bounds
from sterilog.compliance import cycle_rules as cyc
from sterilog.compliance import facts, history
from sterilog.compliance import rules as crules
from sterilog.compliance.voids import counts
from sterilog.models import (
    BiologicalIndicator,
    Cycle,
    CyclePack,
    Device,
    Room,
    Session,
)
from sterilog.reports.common import (
    Period,
    plural,
    within,
)
from sterilog.reports.monthly.model import (
    CycleRow,
    GapRow,
    SessionRow,
)
from sterilog.rulepack import RulePack


def continuity_gaps(db: DbSession, period: Period, tz: ZoneInfo) -> list[GapRow]:
    """Issue 15: device cycles missing between imported ones, or dated out of order, whose later
    cycle falls in the period (per sterilizer)."""
    from sterilog.services.device_import import continuity

    return [
        GapRow("sterilization", a.message(tz))
        for a in continuity(db)
        if period.start <= a.at < period.end
    ]


def cycle_gaps(db: DbSession, period: Period, tz: ZoneInfo, pack: RulePack) -> list[GapRow]:
    """`gap-bi-overdue` and `gap-air-removal` (compliance.rules.GAP_RULES): every cycle of the
    month (not voided) judged by `cycle record`'s own rules as of its own time.

    Batch reads: per sterilizer, the BIs from one interval before the month to its end and the
    month's air-removal tests, each once; then the rule functions per cycle in memory.
    """
    cycles = db.execute(
        select(
            Cycle.id,
            Cycle.at,
            Cycle.load_no,
            Cycle.sterilizer_id,
            exists().where(BiologicalIndicator.cycle_id == Cycle.id),
            exists().where(CyclePack.cycle_id == Cycle.id),
        )
        .where(within(Cycle.at, period), counts(Cycle))
        .order_by(Cycle.at, Cycle.id)
    ).all()
    if not cycles:
        return []
    info = {sid: (code, kind) for sid, code, kind in facts.sterilizers(db)}
    lo = cyc.bi_window_start(period.start, pack.bi_interval_days)
    day_lo = local_day_bounds(period.first_day, tz)[0]
    evidence: dict[int, tuple[cyc.BiEvidence, ...]] = {}
    tests: dict[int, tuple[cyc.AirTest, ...]] = {}
    bi_gaps: list[GapRow] = []
    air_days: dict[tuple[str, dt.date], list[int]] = {}
    for cid, at, load_no, st_id, has_bi, has_packs in cycles:
        st_id = int(st_id)
        code, kind = info[st_id]
        if st_id not in evidence:
            evidence[st_id] = history.bi_evidence(db, st_id, lo, period.end)
            tests[st_id] = history.air_tests(db, st_id, day_lo, period.end)
        f = history.cycle_facts(
            db,
            sterilizer_id=st_id,
            sterilizer=code,
            sterilizer_type=kind,
            at=at,
            tz=tz,
            pack=pack,
            is_test=not has_packs,
            carries_bi=bool(has_bi),
            bis=evidence[st_id],
            air=tests[st_id],
            with_lock=False,
        )
        if cyc.bi_overdue(f):
            bi_gaps.append(
                GapRow(
                    "spore testing",
                    f"sterilizer {code}, load {cid} (#{load_no}, "
                    f"{at.astimezone(tz).strftime('%Y-%m-%d %H:%M')}): no BI incubating or read "
                    f"negative with a valid control in the {pack.bi_interval_days} day(s) "
                    "before it",
                )
            )
        if cyc.air_removal_missing(f) or cyc.air_removal_failed(f):
            air_days.setdefault((code, at.astimezone(tz).date()), []).append(int(cid))
    air_gaps = [
        GapRow(
            "air-removal tests",
            f"sterilizer {code}, {day.isoformat()}: "
            f"{plural(len(loads), 'load')} ({', '.join(str(x) for x in loads)}) ran without a "
            "passing air-removal test that day before them",
        )
        for (code, day), loads in sorted(air_days.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    return bi_gaps + air_gaps


def clean_gaps(db: DbSession, period: Period, tz: ZoneInfo) -> list[GapRow]:
    """`gap-room-not-cleaned` and `gap-device-not-reprocessed`: every session of the month
    judged by the gate's own rules over the facts as of its start (compliance.history.clean_states:
    linear in the month's sessions and cleans, one boundary lookup per room and device)."""
    sessions = db.execute(
        select(
            Session.id,
            Session.started_at,
            Session.recorded_at,
            Session.room_id,
            Session.device_id,
        )
        .where(within(Session.started_at, period))
        .order_by(Session.started_at, Session.id)
    ).all()
    if not sessions:
        return []
    rooms = dict(db.execute(select(Room.id, Room.code)).all())
    devices = dict(db.execute(select(Device.id, Device.code)).all())
    room_states = history.clean_states(
        db,
        "room",
        [
            history.SessionStart(int(i), int(rm), crules.Moment(at, rec))
            for i, at, rec, rm, _ in sessions
        ],
    )
    device_states = history.clean_states(
        db,
        "device",
        [
            history.SessionStart(int(i), int(dv), crules.Moment(at, rec))
            for i, at, rec, _, dv in sessions
        ],
    )
    found: list[GapRow] = []
    for sid, at, _, room_id, device_id in sessions:
        bare = _bare_gate(at, tz)
        room = history.room_facts_at(rooms[room_id], room_states[int(sid)])
        device = history.device_facts_at(devices[device_id], device_states[int(sid)])
        for msg in crules.room_cleaned(dataclasses.replace(bare, room=room)):
            found.append(GapRow("cleaning", f"session {sid}: {msg}"))
        for msg in crules.device_reprocessed(dataclasses.replace(bare, device=device)):
            found.append(GapRow("cleaning", f"session {sid}: {msg}"))
    return found


def _bare_gate(at: dt.datetime, tz: ZoneInfo) -> crules.GateFacts:
    return crules.GateFacts(
        now=at,
        today=at.astimezone(tz).date(),
        cartridge=crules.CartridgeFacts(raw="", gtin="", lot="", serial=None),
        device=crules.DeviceFacts(code=""),
        room=crules.RoomFacts(code=""),
        practitioner=crules.PractitionerFacts(code="", role="practitioner"),
    )


def gaps(
    db: DbSession,
    period: Period,
    tz: ZoneInfo,
    rules: RulePack,
    cycles: Sequence[CycleRow],
    sessions: Sequence[SessionRow],
) -> list[GapRow]:
    """Every gap of the month, area by area (each stamps every page INCOMPLETE)."""
    found: list[GapRow] = []
    found += cycle_gaps(db, period, tz, rules)
    found += continuity_gaps(db, period, tz)
    found += [
        GapRow(
            "sterilization",
            f"load {row.load_id} (#{row.load_no} on {row.sterilizer}): "
            "no chemical-indicator result",
        )
        for row in cycles
        if (row.ci is None or (row.ci_pending and row.packs)) and not row.voided
    ]
    found += clean_gaps(db, period, tz)
    found += [
        GapRow("sessions", f"session {s.session_id} (room {s.room}) was never ended")
        for s in sessions
        if s.ended_at is None
    ]
    return found
