"""The positive-BI episode block (issue 13), shared by the monthly report and `report trace bi`.
Data from `sterilog.services.episode.positive_episode`; this module only lays it out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DASH = "\u2014"


def items(ep: dict[str, Any], t: Callable[[Any], str]) -> list[tuple[str, str]]:
    """The episode as label/text rows, in the order an inspector asks."""
    exp = ep["exposure"]
    lock = (
        f"from {t(ep['lock_from'])} to {t(ep['lock_until'])}; cleared by "
        f"{ep['cleared_by'] or DASH} (negative retest BI)"
        if ep["lock_until"]
        else f"from {t(ep['lock_from'])}; STILL LOCKED"
    )
    retests = "; ".join(
        f"BI {r['bi_id']} (load {r['load_id']}, {t(r['load_at'])}): "
        + (
            f"{r['result']} {t(r['read_at'])}"
            if r["valid"]
            else ("invalid read" if r["read_at"] else "not read yet")
        )
        for r in ep["retests"]
    )
    services = "; ".join(
        f"{t(s['at'])} {'repair' if s['repair'] else 'service'} by {s['by'] or DASH}: {s['note']}"
        for s in ep["services"]
    )
    sl = ep["suspect_loads"]
    after = sum(x["sessions_after_read"] for x in sl)
    loads = (
        f"{len(sl)} load(s) ({', '.join(str(x['load_id']) for x in sl)}), run "
        f"{t(sl[0]['at'])} to {t(sl[-1]['at'])}: {sum(x['packs'] for x in sl)} pack(s), used in "
        f"{sum(x['sessions_before_read'] for x in sl)} session(s) before the read"
        + (f" and {after} after it" if after else "")
        + "; the rest blocked at the gate from the read on (pack-load-suspect)"
        if sl
        else ""
    )
    exposure = (
        f"exposure {exp['id']}: {exp['clients']} client(s), {exp['notified']} notified"
        + (f", {exp['unreachable']} unreachable" if exp["unreachable"] else "")
        + (f"; {exp['state']} {t(exp['closed_at'])}" if exp["closed_at"] else "; OPEN")
        if exp
        else "none (no client used packs of the suspect loads)"
    )
    return [
        (
            "Positive read",
            f"BI {ep['bi_id']} of load {ep['load_id']} on {ep['sterilizer']}, read positive "
            f"(valid control) {t(ep['read_at'])} by {ep['read_by'] or DASH}",
        ),
        ("Sterilizer lock", lock),
        ("Retest BIs", retests or "None yet"),
        ("Service / remedy", services or "None recorded"),
        ("Suspect loads", loads or "None"),
        ("Clients exposed", exposure),
    ]


def flowables(ep: dict[str, Any], t: Callable[[Any], str], width: float) -> list[Any]:
    from sterilog.reports import pdf

    story: list[Any] = []
    story += pdf.heading(f"Positive spore test: BI {ep['bi_id']} ({ep['sterilizer']})", 2)
    story.append(pdf.key_values(items(ep, t), width=width))
    return story
