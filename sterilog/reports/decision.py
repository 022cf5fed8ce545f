"""Page 1 decides (issue 13): the exposures, the lock periods, the reasons the month cannot be
green, refusals by code and sign-off status, as data (`rows`) then lines (`summary_items`).

The overall verdict is green only when none of these stands (docs/reports.md, "Verdict rules"):
a gap; an exposure still open; an incident without a closed exposure; a sterilizer locked at
the end of the month; a clock anomaly; a signed month changed since its signature.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session as DbSession


@dataclass(frozen=True)
class ExposureRow:
    exposure_id: int
    cause: str
    source_id: int
    summary: str
    opened_at: dt.datetime
    clients: int
    notified: int
    unreachable: int
    closed_at: dt.datetime | None
    state: str = "open"  # open | closed | void (its source was voided: nobody needs telling)


@dataclass(frozen=True)
class LockRow:
    sterilizer: str
    bi_id: int
    from_at: dt.datetime
    locked_at_end: bool


@dataclass
class Decision:
    exposures: list[ExposureRow] = field(default_factory=list)
    locks: list[LockRow] = field(default_factory=list)
    refusal_codes: list[tuple[str, int]] = field(default_factory=list)
    episodes: list[dict[str, Any]] = field(default_factory=list)  # services.episode
    retention_years: int = 0
    keep_until: dt.date | None = None  # the rule pack's `records.retention_years` after the month
    reasons: list[str] = field(default_factory=list)  # why the month is not green

    @property
    def green(self) -> bool:
        return not self.reasons


def exposure_rows(db: DbSession, end: dt.datetime) -> list[ExposureRow]:
    """Exposures opened before the period's end (an exposure stays on every page 1 until it is
    closed, and on the page 1 of the month it closed)."""
    from sterilog.services.exposures import states

    out = []
    for st in states(db):
        e = st.exposure
        if e.at >= end:
            continue
        out.append(
            ExposureRow(
                e.id,
                e.cause,
                e.source_id,
                e.summary,
                e.at,
                len(st.clients),
                st.notified,
                st.unreachable,
                st.closure.at if st.closure else None,
                st.state,
            )
        )
    return out


def lock_rows(db: DbSession, data: Any, rules: Any) -> list[LockRow]:
    """A valid positive BI read in the month starts a lock; whether it still stands at the
    month's end is the cycle rule's own answer (`cycle_rules.lock_state`)."""
    from sqlalchemy import select

    from sterilog.compliance import cycle_rules, history
    from sterilog.models import Sterilizer

    ids = {str(c): int(i) for c, i in db.execute(select(Sterilizer.code, Sterilizer.id))}
    out = []
    for b in data.bis:
        if b.read_id is None or b.voided or not b.valid or b.result != "positive":
            continue
        if b.read_at is None or not (data.period.start <= b.read_at < data.period.end):
            continue
        state = cycle_rules.lock_state(
            history.lock_facts(
                db,
                ids[b.sterilizer],
                data.period.end,
                rules.requalify_bis,
                rules.requalify_bis_after_repair,
            )
        )
        out.append(LockRow(b.sterilizer, b.bi_id, b.read_at, state.locked))
    return out


def decide(db: DbSession, data: Any, rules: Any, d: Decision) -> Decision:
    """Fill `d` (the report's own, empty) from the month's rows."""
    d.exposures = [
        e
        for e in exposure_rows(db, data.period.end)
        if e.closed_at is None or e.closed_at >= data.period.start
    ]
    d.locks = lock_rows(db, data, rules)
    d.retention_years = rules.retention_years
    d.keep_until = _years_after(data.period.last_day, rules.retention_years)
    from sterilog.services.episode import positive_episode

    d.episodes = [e for lk in d.locks if (e := positive_episode(db, lk.bi_id)) is not None]
    codes: Counter[str] = Counter(c for r in data.refusals for c in r.codes)
    d.refusal_codes = sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))
    if data.gaps:
        d.reasons.append(f"{len(data.gaps)} gap(s) in the record")
    still_open = [e for e in d.exposures if e.closed_at is None]
    if still_open:
        d.reasons.append(f"{len(still_open)} exposure(s) open")
    closed_incidents = {e.source_id for e in d.exposures if e.cause == "incident" and e.closed_at}
    unresolved = [
        i for i in data.incidents if not i.voided and i.incident_id not in closed_incidents
    ]
    if unresolved:
        d.reasons.append(f"{len(unresolved)} incident(s) without a closed exposure")
    if any(lk.locked_at_end for lk in d.locks):
        d.reasons.append("a sterilizer locked at the end of the month")
    if data.clock_anomalies:
        n = len(data.clock_anomalies)
        d.reasons.append(f"{n} clock anomal{'y' if n == 1 else 'ies'} in the audit log")
    if any(s.since and not s.since.startswith("month unchanged") for s in data.signatures):
        d.reasons.append("the month changed after it was signed")
    return d


@dataclass(frozen=True)
class ExceptionRow:
    at: dt.datetime
    kind: str
    record: str
    what: str


def exceptions(data: Any) -> list[ExceptionRow]:
    """Everything exceptional of the month, in time order, before the full logs: failed loads,
    suspect loads (one row per sterilizer and positive BI, not one per load), refusals,
    incidents, voids. Gaps and late entries have their own lists just above."""
    out: list[ExceptionRow] = []
    live = [c for c in data.cycles if not c.voided]
    for c in live:
        if not c.passed:
            out.append(
                ExceptionRow(
                    c.at,
                    "failed load",
                    f"load {c.load_id} ({c.sterilizer})",
                    f"{c.program}: {c.temp_c:g} \u00b0C, {c.hold_min:g} min; CI {c.ci or '-'}",
                )
            )
    suspect = [c for c in live if c.passed and c.suspect]
    if suspect:
        by_st: dict[str, list[Any]] = {}
        for c in suspect:
            by_st.setdefault(c.sterilizer, []).append(c)
        for st, loads in by_st.items():
            out.append(
                ExceptionRow(
                    loads[0].at,
                    "suspect loads",
                    f"{len(loads)} load(s) on {st}",
                    "loads "
                    + ", ".join(str(c.load_id) for c in loads)
                    + ": run before a positive spore test was entered (see the episode above)",
                )
            )
    for r in data.refusals:
        out.append(
            ExceptionRow(
                r.at,
                "refusal",
                f"refusal {r.refusal_id}",
                f"{', '.join(r.codes)}: client {r.client}, room {r.room}, {r.practitioner}",
            )
        )
    for i in data.incidents:
        if not i.voided:
            out.append(
                ExceptionRow(i.at, "incident", f"incident {i.incident_id}", f"{i.kind}: {i.note}")
            )
    for v in data.voids:
        out.append(
            ExceptionRow(
                v.at,
                "void",
                f"{v.kind} {v.record_id}",
                f"{v.summary} \u2014 {v.reason} (by {v.by})",
            )
        )
    out.sort(key=lambda e: e.at)
    return out


def _years_after(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _day(moment: dt.datetime | None, tz: Any) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "-"


def exposure_text(e: ExposureRow, tz: Any) -> str:
    state = f"{e.state} {_day(e.closed_at, tz)}" if e.closed_at else "OPEN"
    extra = f", {e.unreachable} unreachable" if e.unreachable else ""
    return (
        f"{e.summary}, opened {_day(e.opened_at, tz)}: "
        f"{e.clients} client(s) affected, {e.notified} notified{extra}; {state}"
    )


def summary_items(data: Any, d: Decision, tz: Any) -> list[tuple[str, str, str]]:
    """(label, text, mark) rows for page 1; mark is ok | warn | alert | plain."""
    out: list[tuple[str, str, str]] = [
        (
            f"Exposure {e.exposure_id}",
            exposure_text(e, tz),
            "alert" if e.closed_at is None else "ok",
        )
        for e in d.exposures
    ] or [("Exposures", "None", "plain")]
    out += [
        (
            "Incidents",
            "; ".join(
                f"#{i.incident_id} {i.kind}"
                + (f" ({i.severity})" if i.severity else "")
                + f" {_day(i.at, tz)}: {i.note}"
                for i in data.incidents
                if not i.voided
            )
            or "None",
            "warn" if any(not i.voided for i in data.incidents) else "plain",
        ),
        (
            "Sterilizer locks",
            "; ".join(
                f"{lk.sterilizer} locked from {_day(lk.from_at, tz)} (positive BI {lk.bi_id}); "
                + ("STILL LOCKED at month end" if lk.locked_at_end else "released in the month")
                for lk in d.locks
            )
            or "None",
            "alert"
            if any(lk.locked_at_end for lk in d.locks)
            else ("warn" if d.locks else "plain"),
        ),
        (
            "Refusals by code",
            ", ".join(f"{code} {n}" for code, n in d.refusal_codes) or "None",
            "plain",
        ),
    ]
    signed = [s for s in data.signatures]
    if not signed:
        sig = ("Not signed", "warn")
    else:
        changed = [s for s in signed if s.since and not s.since.startswith("month unchanged")]
        sig = (
            "; ".join(f"{s.meaning} by {s.name} {_day(s.at, tz)}: {s.since}" for s in signed),
            "alert" if changed else "ok",
        )
    out.append(("Sign-off", sig[0], sig[1]))
    if d.keep_until is not None:
        out.append(
            (
                "Retention",
                f"Keep this report and the month's records until {d.keep_until.isoformat()} "
                f"({d.retention_years} years after the month, rule pack)",
                "plain",
            )
        )
    return out
