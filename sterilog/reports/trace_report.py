"""Trace reports (SPEC §6.6, §8): notification-ready documents.

Look-forward (`lot`, `load`, `bi`): the affected clients come first (who has to be contacted),
then the evidence (the lot, the load, the BI and its suspect loads). Trace-back (`session`,
`client`): everything behind each session. The data is what `sterilog.services.trace` returns
for `sterilog trace`, so the PDF and the command always agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from sterilog.clock import parse_instant
from sterilog.models import (
    CartridgeLot,
    CartridgeReceipt,
    CartridgeUnit,
    Cycle,
    CyclePack,
    Pack,
    Recall,
)
from sterilog.reports.common import staff_lookup

DASH = "\u2014"


@dataclass
class TraceData:
    kind: str  # session, client, lot, load, bi
    subject: str  # what the trace is of, for the header
    sessions: list[dict[str, Any]]  # the affected sessions (look-forward) or traced ones
    details: list[dict[str, Any]] = field(default_factory=list)  # session_detail per session
    load: dict[str, Any] | None = None
    load_packs: list[tuple[str, str]] = field(default_factory=list)
    bi: dict[str, Any] | None = None
    suspect_loads: list[dict[str, Any]] = field(default_factory=list)
    lot: dict[str, Any] | None = None
    episode: dict[str, Any] | None = None  # a positive BI's episode (services.episode)
    anchor: str | None = None  # the audit chain head when gathered ("SEQ:HASH")


# --- gathering --------------------------------------------------------------------------------


def _anchored(db: DbSession, data: TraceData) -> TraceData:
    from sterilog import audit

    data.anchor = "{}:{}".format(*audit.head(db))
    return data


def session_rows(db: DbSession, session_id: int) -> TraceData:
    from sterilog.services import trace

    d = trace.session_detail(db, session_id)
    summary = {k: d[k] for k in ("session_id", "client", "started_at", "room", "practitioner")}
    summary["practitioner_name"] = d["practitioner_detail"]["name"]
    return _anchored(db, TraceData("session", f"session {session_id}", [summary], [d]))


def client_rows(db: DbSession, client: str) -> TraceData:
    from sterilog.services import trace

    rows = trace.by_client(db, client)
    details = [trace.session_detail(db, r["session_id"]) for r in rows]
    return _anchored(db, TraceData("client", f"client {client}", rows, details))


def _deliveries(receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per delivery: the units of one scan session (same time, supplier, invoice and
    receiver) are one delivery however many receipt rows they were recorded as."""
    out: list[dict[str, Any]] = []
    for r in receipts:
        key = (r["at"], r["supplier"], r["invoice"], r["operator"])
        if (
            out
            and (out[-1]["at"], out[-1]["supplier"], out[-1]["invoice"], out[-1]["operator"]) == key
        ):
            out[-1]["quantity"] += r["quantity"]
        else:
            out.append(dict(r))
    return out


def lot_rows(db: DbSession, gtin: str, lot: str) -> TraceData:
    from sterilog.compliance.voids import counts
    from sterilog.services import trace

    rows = trace.by_lot(db, gtin, lot)
    lot_row = db.execute(
        select(CartridgeLot).where(CartridgeLot.gtin == gtin, CartridgeLot.lot == lot)
    ).scalar_one()
    who = staff_lookup(db)
    from sterilog.lateness import is_late
    from sterilog.services.base import load_clinic

    minutes = load_clinic(db).rules.late_entry_minutes
    receipts = [
        {
            "at": r.at,
            "quantity": r.quantity,
            "supplier": r.supplier,
            "invoice": r.invoice,
            "operator": who(r.operator_id, r.at),
            "recorded_at": r.recorded_at,
            "late": is_late(r.at, r.recorded_at, minutes),
        }
        for r in db.execute(
            select(CartridgeReceipt)
            .where(CartridgeReceipt.lot_id == lot_row.id)
            .order_by(CartridgeReceipt.at, CartridgeReceipt.id)
        ).scalars()
    ]
    recalls = [
        {"at": r.at, "reason": r.reason, "operator": who(r.operator_id, r.at)}
        for r in db.execute(
            select(Recall)
            .where(Recall.lot_id == lot_row.id, counts(Recall))
            .order_by(Recall.at, Recall.id)
        ).scalars()
    ]
    receipts = _deliveries(receipts)
    units = len(
        db.execute(select(CartridgeUnit.id).where(CartridgeUnit.lot_id == lot_row.id)).all()
    )
    from sterilog.models import Discard

    discarded = len(
        db.execute(
            select(Discard.id)
            .join(CartridgeUnit, CartridgeUnit.id == Discard.unit_id)
            .where(CartridgeUnit.lot_id == lot_row.id, counts(Discard))
        ).all()
    )
    info = {
        "gtin": gtin,
        "lot": lot,
        "expiry": lot_row.expiry.isoformat(),
        "production_date": (
            lot_row.production_date.isoformat() if lot_row.production_date else None
        ),
        "units": units,
        "used": len(rows),
        "discarded": discarded,
        "left": units - len(rows) - discarded,
        "receipts": receipts,
        "recalls": recalls,
    }
    return _anchored(db, TraceData("lot", f"lot {lot} of GTIN {gtin}", rows, lot=info))


def _packs(db: DbSession, load_id: int) -> list[tuple[str, str]]:
    return [
        (str(code), str(contents))
        for code, contents in db.execute(
            select(Pack.code, Pack.contents)
            .join(CyclePack, CyclePack.pack_id == Pack.id)
            .where(CyclePack.cycle_id == load_id)
            .order_by(CyclePack.id)
        ).all()
    ]


def load_rows(db: DbSession, load_id: int) -> TraceData:
    from sterilog.services import trace

    load, rows = trace.by_load(db, load_id)
    data = TraceData("load", f"load {load_id}", rows, load=load, load_packs=_packs(db, load_id))
    return _anchored(db, data)


def bi_rows(db: DbSession, bi_id: int) -> TraceData:
    from sterilog.services import trace

    info, loads, rows = trace.by_bi(db, bi_id)
    suspect = []
    for load_id in loads:
        cycle = db.get(Cycle, load_id)
        if cycle is not None:
            detail = trace.load_detail(db, cycle)
            detail["packs"] = [code for code, _ in _packs(db, load_id)]
            suspect.append(detail)
    from sterilog.services.episode import positive_episode

    return _anchored(
        db,
        TraceData(
            "bi",
            f"BI {bi_id}",
            rows,
            bi=info,
            suspect_loads=suspect,
            episode=positive_episode(db, bi_id),
        ),
    )


# --- layout -----------------------------------------------------------------------------------

TITLES = {
    "session": "Trace-back: session",
    "client": "Trace-back: client",
    "lot": "Look-forward: cartridge lot",
    "load": "Look-forward: sterilizer load",
    "bi": "Look-forward: biological indicator",
}


def render(
    data: TraceData,
    *,
    generated_at: dt.datetime,
    clinic: str,
    tz_name: str,
    author: str = "sterilog",
    target: Any = None,
    progress: Callable[[int], None] | None = None,
    training: bool = False,
) -> bytes:
    from reportlab.platypus import Paragraph

    from sterilog.reports import pdf

    def t(value: str | dt.datetime | None) -> str:
        if value is None:
            return DASH
        moment = parse_instant(value) if isinstance(value, str) else value
        return pdf.local_time(moment, tz_name)

    title = TITLES[data.kind]
    story: list[Any] = [Paragraph(pdf.esc(f"{title} \u2014 {data.subject}"), pdf.STYLES.title)]
    if data.kind in ("lot", "load", "bi"):
        story += _forward(data, t)
    else:
        story += _back(data, t)
    return pdf.build_pdf(
        target,
        story,
        title=f"{title} \u2014 {data.subject}",
        clinic=clinic,
        period=f"whole history to {pdf.local_time(generated_at, tz_name)[:10]}",
        subject=f"sterilog trace of {data.subject}",
        author=author,
        generated_at=generated_at,
        tz_name=tz_name,
        anchor=data.anchor,
        progress=progress,
        training=training,
    )


def _late(row: dict[str, Any], t: Callable[[Any], str]) -> str:
    """A late entry says when it was entered (its `operator` is who entered it)."""
    if not row.get("late"):
        return ""
    by = row.get("operator") or row.get("entered_by") or DASH
    return f" (LATE ENTRY: entered {t(row['recorded_at'])} by {by})"


def _fmt(value: float | None) -> str:
    return DASH if value is None else f"{value:g}"


def _bi_text(bi: dict[str, Any] | None, t: Callable[[Any], str]) -> str:
    if bi is None:
        return DASH
    if bi["result"] is None:
        state = "not read yet"
    elif bi["valid"]:
        state = f"{bi['result']} (valid control), read {t(bi['read_at'])}"
    else:
        state = f"invalid read ({bi['result']}, control {bi['control']}), {t(bi['read_at'])}"
    return f"BI {bi['bi_id']} lot {bi['lot']} in load {bi['load_id']}: {state}" + _late(bi, t)


def _load_items(ld: dict[str, Any], t: Callable[[Any], str]) -> list[tuple[str, Any]]:
    status = ld["status"].upper() if ld["status"] != "passed" else "passed"
    if ld["suspect"]:
        status += ", SUSPECT (positive spore test)"
    air = ld["air_removal_before"]
    return [
        (
            "Load",
            f"ID {ld['load_id']}, #{ld['load_no']} on sterilizer {ld['sterilizer']} "
            f"(type {ld['sterilizer_type']}), {t(ld['at'])}, operator {ld['operator'] or DASH}"
            + _late(ld, t),
        ),
        (
            "Program",
            f"{ld['program']}: at least {_fmt(ld['program_temp_c'])} \u00b0C for "
            f"{_fmt(ld['program_hold_min'])} min",
        ),
        *_source_items(ld),
        (
            "Chemical indicator",
            _ci_text(ld),
        ),
        ("Result", status),
        ("BI in this load", _bi_text(ld["bi"], t)),
        ("Nearest BI before", _bi_text(ld["bi_before"], t)),
        ("Nearest BI after", _bi_text(ld["bi_after"], t)),
        (
            "Air-removal test that day",
            f"{air['result']} at {t(air['at'])} (the day's latest before the load)"
            if air
            else "none that day before the load",
        ),
        (
            "Documents",
            "; ".join(
                f"attachment {a['attachment_id']}: {a['filename']} ({a['size']} bytes, "
                f"SHA-256 {a['sha256']})"
                for a in ld.get("attachments", [])
            )
            or DASH,
        ),
    ]


def _ci_text(ld: dict[str, Any]) -> str:
    read = ld.get("ci_read")
    if read:
        return (
            f"{read['ci']}"
            + (f" (type {read['ci_type']})" if read["ci_type"] else "")
            + (" (read after the import)")
        )
    if ld["ci"] == "none":
        return "not read yet"
    return (ld["ci"] or DASH) + (f" (type {ld['ci_type']})" if ld["ci_type"] else "")


def _source_items(ld: dict[str, Any]) -> list[tuple[str, Any]]:
    """Issue 15: typed readings, or the device's record with what was computed from it."""
    d = ld.get("device")
    if not d:
        return [
            ("Readings", f"{_fmt(ld['temp_c'])} \u00b0C, {_fmt(ld['hold_min'])} min (typed)"),
        ]
    hold = int(d["hold_s"])
    temps = (
        DASH if d["temp_min_c"] is None else f"{d['temp_min_c']:.1f}-{d['temp_max_c']:.1f} \u00b0C"
    )
    return [
        (
            "Source",
            f"imported: device cycle {d['device_cycle_no']} of serial {d['device_serial']}, "
            f"file {d['file']} (attachment {d['attachment_id']}, lines {d['lines']}), "
            f"SHA-256 {d['sha256']}",
        ),
        (
            "Readings",
            f"computed from the device's trace: hold {hold // 60}:{hold % 60:02d} at or above "
            f"{_fmt(ld['program_temp_c'])} \u00b0C, {temps}; device verdict "
            + ("OK" if d["device_ok"] else f"FAILED ({d['device_reason']})"),
        ),
    ]


def _clients_table(data: TraceData, t: Callable[[Any], str], width: float) -> list[Any]:
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    widths = [22 * mm, 30 * mm, 50 * mm, 20 * mm]
    return pdf.table(
        ["Session", "Started", "Client reference", "Room", "Practitioner"],
        [
            [
                str(s["session_id"]),
                t(s["started_at"]),
                s["client"],
                s["room"],
                f"{s.get('practitioner_name') or s['practitioner']} ({s['practitioner']})",
            ]
            for s in data.sessions
        ],
        [*widths, width - sum(widths)],
        empty="No session is affected.",
    )


def _forward(data: TraceData, t: Callable[[Any], str]) -> list[Any]:

    from sterilog.reports import pdf

    width = pdf.CONTENT_WIDTH
    n = len(data.sessions)
    clients = len({s["client"] for s in data.sessions})
    if data.kind == "lot":
        source = f"a cartridge from {data.subject}"
    elif data.kind == "load":
        source = f"an instrument pack from {data.subject}"
    elif data.bi is not None and data.bi["result"] == "positive" and data.bi["valid"]:
        source = f"an instrument pack from a load made suspect by {data.subject}"
    else:
        source = f"an instrument pack from the load of {data.subject}"
    story: list[Any] = [
        pdf.para(
            f"{n} session{'s' if n != 1 else ''} of {clients} client"
            f"{'s' if clients != 1 else ''} used {source}. "
            "This is the notification list; the evidence follows it.",
        ),
        *pdf.heading("Affected clients"),
        *_clients_table(data, t, width),
        *pdf.heading("Evidence"),
    ]
    story += _lot_evidence(data, t, width)
    story += _load_evidence(data, t, width)
    story += _bi_evidence(data, t, width)
    return story


def _back(data: TraceData, t: Callable[[Any], str]) -> list[Any]:

    from sterilog.reports import pdf

    width = pdf.CONTENT_WIDTH
    story: list[Any] = []
    if data.kind == "client":
        story += pdf.heading("Sessions of this client")
        story += _clients_table(data, t, width)
    for d in data.details:
        story += _back_session(d, t, width)
    return story


def _lot_evidence(data: TraceData, t: Callable[[Any], str], width: float) -> list[Any]:
    """A lot: its units, recalls and deliveries."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    story: list[Any] = []
    if not (data.lot is not None):
        return story
    lot = data.lot
    story.append(
        pdf.key_values(
            [
                ("GTIN", lot["gtin"]),
                ("Lot", lot["lot"]),
                ("Expiry", lot["expiry"]),
                ("Production date", lot["production_date"] or DASH),
                (
                    "Units",
                    f"{lot['units']} received: {lot['used']} used, {lot['discarded']} "
                    f"discarded, {lot['left']} left",
                ),
                (
                    "Recall",
                    "; ".join(
                        f"{t(r['at'])} by {r['operator']}: {r['reason']}" for r in lot["recalls"]
                    )
                    or "not recalled",
                ),
            ]
        )
    )
    story += pdf.heading("Deliveries of this lot", 2)
    story += pdf.table(
        ["Received", "Quantity", "Supplier", "Invoice", "Received by"],
        [
            [
                t(r["at"]),
                str(r["quantity"]),
                r["supplier"] or DASH,
                r["invoice"] or DASH,
                r["operator"] + _late(r, t),
            ]
            for r in lot["receipts"]
        ],
        [30 * mm, 18 * mm, 55 * mm, 40 * mm, width - 143 * mm],
    )
    return story


def _load_evidence(data: TraceData, t: Callable[[Any], str], width: float) -> list[Any]:
    """A load: its readings and packs."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    story: list[Any] = []
    if not (data.load is not None):
        return story
    story.append(pdf.key_values(_load_items(data.load, t)))
    story += pdf.heading("Packs in this load", 2)
    story += pdf.table(
        ["Pack", "Contents"],
        [[code, contents] for code, contents in data.load_packs],
        [40 * mm, width - 40 * mm],
        empty="None (a test cycle).",
    )
    return story


def _bi_evidence(data: TraceData, t: Callable[[Any], str], width: float) -> list[Any]:
    """A BI: its read, the episode of a valid positive, and the loads traced."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    story: list[Any] = []
    if not (data.bi is not None):
        return story
    bi = data.bi
    positive = bi["result"] == "positive" and bi["valid"]
    story.append(
        pdf.key_values(
            [
                ("Indicator", _bi_text(bi, t)),
                (
                    "Meaning",
                    "A valid positive spore test: the sterilizer is locked and every load "
                    "since the last negative spore test is suspect (listed below)."
                    if positive
                    else "Not a valid positive: only the BI's own load is traced.",
                ),
            ]
        )
    )
    if data.episode is not None:
        from sterilog.reports import episode

        story += episode.flowables(data.episode, t, width)
    story += pdf.heading("Loads traced", 2)
    story += pdf.table(
        ["Load", "Run", "Sterilizer", "Program", "Readings", "CI", "Status", "Packs"],
        [
            [
                f"{ld['load_id']} (#{ld['load_no']})",
                t(ld["at"]),
                ld["sterilizer"],
                ld["program"],
                f"{_fmt(ld['temp_c'])} \u00b0C, {_fmt(ld['hold_min'])} min",
                ld["ci"] or DASH,
                ld["status"] + (", SUSPECT" if ld["suspect"] else ""),
                ", ".join(ld["packs"]) or DASH,
            ]
            for ld in data.suspect_loads
        ],
        [18 * mm, 26 * mm, 20 * mm, 18 * mm, 24 * mm, 12 * mm, 24 * mm, width - 142 * mm],
    )
    return story


def _back_session(d: dict[str, Any], t: Callable[[Any], str], width: float) -> list[Any]:
    """One session traced back: cartridge, device, room, practitioner, packs, incidents."""
    from reportlab.lib.units import mm

    from sterilog.reports import pdf

    story: list[Any] = []
    story += pdf.heading(f"Session {d['session_id']} \u2014 client {d['client']}")
    story.append(pdf.key_values(_session_items(d, t)))
    story += pdf.heading("Packs, their loads and spore tests", 2)
    if not d["packs"]:
        story.append(pdf.para("No instrument packs were used.", pdf.STYLES.small))
    for pk in d["packs"]:
        story.append(
            pdf.key_values(
                [("Pack", f"{pk['pack']}: {pk['contents']}"), *_load_items(pk["load"], t)]
            )
        )
    story += pdf.heading("Incidents", 2)
    story += pdf.table(
        ["Incident", "Time", "Kind", "Severity", "Note", "Recorded by"],
        [
            [
                str(i["incident_id"]),
                t(i["at"]),
                i["kind"],
                i["severity"] or DASH,
                i["note"] + _late(i, t),
                i["operator"] or DASH,
            ]
            for i in d["incidents"]
        ],
        [16 * mm, 28 * mm, 26 * mm, 18 * mm, width - 113 * mm, 25 * mm],
        empty="No incident recorded on this session.",
    )
    return story


def _session_items(d: dict[str, Any], t: Callable[[Any], str]) -> list[tuple[str, Any]]:
    """The session's facts as key-value lines, each judged by the gate's rule at its start."""
    from sterilog.services import trace

    c = d["cartridge"]
    r = c["receipt"]
    dev = d["device"]
    lc = dev["last_clean"]
    room = d["room_detail"]
    rc = room["last_clean"]
    p = d["practitioner_detail"]
    return [
        ("Started", t(d["started_at"])),
        ("Ended", t(d["ended_at"]) if d["ended_at"] else "still open"),
        ("Depth", f"{_fmt(d['depth_mm'])} mm" if d.get("depth_mm") else DASH),
        (
            "Practitioner",
            f"{p['name']} ({p['id']}, {p['role']}); licence {p['license'] or DASH}, "
            f"expires {p['license_expires'] or DASH}",
        ),
        (
            "Cartridge",
            f"GTIN {c['gtin']}, lot {c['lot']}, serial {c['serial'] or DASH}, "
            f"expiry {c['expiry']}" + (f"; {trace.recall_text(c)}" if trace.recall_text(c) else ""),
        ),
        (
            "Receipt",
            f"{t(r['received_at'])} from {r['supplier'] or DASH}, invoice "
            f"{r['invoice'] or DASH}, received by {r['operator'] or DASH}" + _late(r, t)
            if r
            else DASH,
        ),
        (
            "Device",
            f"{dev['serial']} ({dev['model']}); last clean before the session: "
            + (
                f"{t(lc['at'])}, {lc['disinfectant']}, "
                f"{_fmt(lc['contact_min'])} min contact, barrier lot "
                f"{lc['barrier_lot'] or DASH}, by {lc['operator'] or DASH}" + _late(lc, t)
                if lc
                else "NONE RECORDED"
            )
            + (f". {trace.clean_warning(dev)}" if trace.clean_warning(dev) else "")
            + (f". {trace.used_after_text(dev)}" if trace.used_after_text(dev) else ""),
        ),
        (
            "Room",
            f"{room['room']}{' (' + room['name'] + ')' if room['name'] else ''}; "
            "last clean before the session: "
            + (
                f"{t(rc['at'])}, {rc['kind']}, {rc['disinfectant']}, "
                f"{_fmt(rc['contact_min'])} min contact, by {rc['operator'] or DASH}"
                + _late(rc, t)
                + (f"; note: {rc['note']}" if rc["note"] else "")
                if rc
                else "NONE RECORDED"
            )
            + (f". {trace.clean_warning(room)}" if trace.clean_warning(room) else ""),
        ),
    ]
