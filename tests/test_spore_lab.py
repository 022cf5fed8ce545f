"""Spore tests as clinics run them (issue 16), through the real CLI on both backends: the BI's
expiry and control lot, mail-in labs, invalid BIs and declared non-test weeks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import MANAGER, NOW, TZ, Cli

from sterilog.rulepack import load_pack

D0 = "2026-11-02T08:00:00Z"  # a Monday
START = "2026-11-01T08:00:00Z"


def _pack(tmp_path: Path) -> Path:
    text = load_pack("default").text
    text = text.replace('name = "default"', 'name = "lab-test"')
    text = text.replace("interval_days = 7", "interval_days = 14")
    text = text.replace("require_bi_expiry = false", "require_bi_expiry = true")
    path = tmp_path / "lab.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def lab(empty_url: str, tmp_path: Path) -> Cli:
    """A clinic whose pack wants a BI every 14 days, lab results in 10, and the BI's expiry."""
    cli = Cli(url=empty_url, backend="x")
    cli.ok(
        "init",
        "--clinic",
        "Lab Clinic",
        "--tz",
        TZ,
        "--manager",
        MANAGER,
        "--name",
        "Boss",
        "--rules",
        str(_pack(tmp_path)),
        operator=False,
        now=START,
    )
    cli.ok("sterilizer", "add", "N1", "--model", "Classic", "--type", "N", now=START)
    cli.ok("pack", "add", "P1", "--contents", "tweezers", now=START)
    return cli


def cyc(cli: Cli, at: str, *extra: str, expect: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = cli.json(
        "cycle",
        "record",
        "--sterilizer",
        "N1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--at",
        at,
        *extra,
        expect=expect,
        now=at,
    )
    return out


def bi_load(cli: Cli, at: str) -> int:
    out = cyc(cli, at, "--bi-lot", "SP-9", "--bi-expires", "2027-03", "--bi-control-lot", "SP-9")
    return int(out["bi_id"])


def monthly(cli: Cli, tmp_path: Path) -> str:
    import io

    from pypdf import PdfReader

    target = tmp_path / "m.pdf"
    cli.ok("report", "monthly", "--month", "2026-11", "-o", str(target), now="2026-12-02T09:00:00Z")
    reader = PdfReader(io.BytesIO(target.read_bytes()))
    return " ".join(" ".join(p.extract_text().split()) for p in reader.pages)


def codes(out: dict[str, Any]) -> list[str]:
    return [r["code"] for r in out["reasons"]]


def state(cli: Cli, bi_id: int, now: str) -> str:
    rows = cli.json("bi", "list", now=now)["bis"]
    return str(next(r["state"] for r in rows if r["bi_id"] == bi_id))


def test_an_expired_or_missing_expiry_or_other_lot_control_is_refused(lab: Cli) -> None:
    before = lab.audit_count()
    r = lab.fails(
        "cycle",
        "record",
        "--sterilizer",
        "N1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--bi-lot",
        "SP-1",
        "--bi-expires",
        "2026-10",
        "--at",
        D0,
        now=D0,
    )
    assert "expired on 2026-10-31" in r.stderr
    r = lab.fails(
        "cycle",
        "record",
        "--sterilizer",
        "N1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--bi-lot",
        "SP-1",
        "--at",
        D0,
        now=D0,
    )
    assert "requires the BI's expiry" in r.stderr
    r = lab.fails(
        "cycle",
        "record",
        "--sterilizer",
        "N1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--bi-lot",
        "SP-1",
        "--bi-expires",
        "2027-01-15",
        "--bi-control-lot",
        "SP-2",
        "--at",
        D0,
        now=D0,
    )
    assert "same lot" in r.stderr
    r = lab.fails(
        "cycle",
        "record",
        "--sterilizer",
        "N1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--bi-lot",
        "SP-1",
        "--bi-expires",
        "2027-13",
        "--at",
        D0,
        now=D0,
    )
    assert "is not a date" in r.stderr
    assert lab.audit_count() == before
    # The expiry day itself is still good.
    cyc(lab, D0, "--bi-lot", "SP-1", "--bi-expires", "2026-11-02")


def test_a_mailed_bi_keeps_loads_going_for_lab_result_days_then_blocks(lab: Cli) -> None:
    bi = bi_load(lab, D0)
    assert state(lab, bi, D0) == "placed"
    lab.ok(
        "bi",
        "mail",
        str(bi),
        "--lab",
        "Mesa Labs",
        "--envelope",
        "E-1",
        "--at",
        "2026-11-03T10:00:00Z",
        now="2026-11-03T10:00:00Z",
    )
    assert state(lab, bi, "2026-11-03T11:00:00Z") == "mailed"
    # Status and the gate's warning say when: 10 days after placement, not 14.
    items = lab.json("status", now="2026-11-11T09:00:00Z")["items"]
    due = [i for i in items if i["code"] == "status-bi-overdue"]
    assert [i["state"] for i in due] == ["due"] and "2026-11-12 08:00" in due[0]["message"], due
    cyc(lab, "2026-11-12T07:59:00Z", "--pack", "P1")  # 9 days 23h59 after placement
    blocked = cyc(lab, "2026-11-12T08:00:00Z", "--pack", "P1", expect=3)
    assert codes(blocked) == ["sterilizer-bi-overdue"]
    status = lab.json("status", now="2026-11-12T09:00:00Z")
    text = lab.ok("status", now="2026-11-12T09:00:00Z").stdout
    assert "Mesa Labs" in text and f"BI {bi}" in text, text
    assert any(i.get("code") == "status-bi-at-lab" for i in status["items"]), status
    lab.ok("bi", "received", str(bi), "--at", "2026-11-05T10:00", now="2026-11-12T09:00:00Z")
    assert state(lab, bi, "2026-11-12T09:00:00Z") == "received"
    # The lab's negative: the BI counts again, for its 14-day window.
    lab.ok(
        "bi",
        "read",
        str(bi),
        "--result",
        "negative",
        "--control",
        "positive",
        "--report-no",
        "R-77",
        "--at",
        "2026-11-12T10:00:00Z",
        now="2026-11-12T10:00:00Z",
    )
    assert state(lab, bi, "2026-11-12T10:00:00Z") == "negative"
    cyc(lab, "2026-11-12T11:00:00Z", "--pack", "P1")


def test_an_in_office_bi_is_not_cut_short(lab: Cli) -> None:
    bi_load(lab, D0)
    cyc(lab, "2026-11-15T08:00:00Z", "--pack", "P1")  # 13 days, unread, not mailed


def test_a_lab_positive_locks_the_sterilizer_and_lists_loads(lab: Cli) -> None:
    bi = bi_load(lab, D0)
    load = cyc(lab, "2026-11-03T08:00:00Z", "--pack", "P1")
    lab.ok(
        "bi",
        "mail",
        str(bi),
        "--lab",
        "Mesa Labs",
        "--at",
        "2026-11-03T09:00:00Z",
        now="2026-11-03T09:00:00Z",
    )
    out = lab.json(
        "bi",
        "read",
        str(bi),
        "--result",
        "positive",
        "--control",
        "positive",
        "--report-no",
        "R-1",
        "--at",
        "2026-11-06T09:00:00Z",
        now="2026-11-06T09:00:00Z",
    )
    assert out["locked"] is True and load["load_id"] in out["suspect_loads"]
    assert state(lab, bi, "2026-11-06T10:00:00Z") == "positive"
    blocked = cyc(lab, "2026-11-06T10:00:00Z", "--pack", "P1", expect=3)
    assert "sterilizer-locked" in codes(blocked)


def test_an_invalid_bi_leaves_the_week_uncovered(lab: Cli, tmp_path: Path) -> None:
    bi = bi_load(lab, D0)
    cyc(lab, "2026-11-03T08:00:00Z", "--pack", "P1")
    lab.ok(
        "bi",
        "mail",
        str(bi),
        "--lab",
        "Mesa Labs",
        "--at",
        "2026-11-03T09:00:00Z",
        now="2026-11-03T09:00:00Z",
    )
    lab.fails("bi", "invalid", str(bi), "--reason", "other", now="2026-11-04T09:00:00Z")
    lab.ok("bi", "invalid", str(bi), "--reason", "late-receipt", now="2026-11-04T09:00:00Z")
    assert state(lab, bi, "2026-11-04T09:00:00Z") == "invalid"
    blocked = cyc(lab, "2026-11-04T10:00:00Z", "--pack", "P1", expect=3)
    assert codes(blocked) == ["sterilizer-bi-overdue"]
    r = lab.fails(
        "bi",
        "read",
        str(bi),
        "--result",
        "negative",
        "--control",
        "positive",
        now="2026-11-04T11:00:00Z",
    )
    assert "invalid" in r.stderr
    # The monthly report shows the earlier load uncovered? It had the BI's window at its time,
    # but the BI never counts: the load of the 3rd is a gap.
    text = monthly(lab, tmp_path)
    assert "load 2 (#2" in text and "no BI incubating" in text, text


def test_a_declared_week_blocks_a_later_load_until_voided(lab: Cli, tmp_path: Path) -> None:
    now = "2026-11-20T09:00:00Z"
    lab.fails("bi", "skip", "--sterilizer", "N1", "--week", "2026-W53", "--reason", "x", now=now)
    lab.fails("bi", "skip", "--sterilizer", "N1", "--week", "2027-W53", "--reason", "x", now=now)
    cyc(lab, "2026-11-10T08:00:00Z", "--bi-lot", "SP-9", "--bi-expires", "2027-03")
    r = lab.fails(
        "bi", "skip", "--sterilizer", "N1", "--week", "2026-W46", "--reason", "closed", now=now
    )
    assert "ran load" in r.stderr
    out = lab.json(
        "bi",
        "skip",
        "--sterilizer",
        "N1",
        "--week",
        "2026-W45",
        "--reason",
        "studio closed",
        now=now,
    )
    lab.fails(
        "bi", "skip", "--sterilizer", "N1", "--week", "2026-W45", "--reason", "again", now=now
    )
    lab.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner", now=now)
    r = lab.fails(
        "bi", "skip", "--sterilizer", "N1", "--week", "2026-W44", "--reason", "closed",
        operator="ann", now=now,
    )  # fmt: skip
    assert "manager" in r.stderr, r.stderr
    blocked = cyc(
        lab, "2026-11-04T08:00:00Z", "--bi-lot", "SP-9", "--bi-expires", "2027-03", expect=3
    )
    assert codes(blocked) == ["bi-week-declared"]
    text = monthly(lab, tmp_path)
    assert "2026-W45" in text and "studio closed" in text, text
    assert "No week declared" not in text
    lab.ok("void", "bi-skip", str(out["skip_id"]), "--reason", "we did run", now=now)
    cyc(lab, "2026-11-04T08:00:00Z", "--bi-lot", "SP-9", "--bi-expires", "2027-03")


def test_unused_names_stay_importable() -> None:
    assert NOW


def test_the_export_carries_lab_events_details_and_declared_weeks(lab: Cli, tmp_path: Path) -> None:
    import json

    bi = bi_load(lab, D0)
    lab.ok("bi", "mail", str(bi), "--lab", "Mesa Labs", "--envelope", "E-1",
           "--at", "2026-11-03T10:00:00Z", now="2026-11-03T10:00:00Z")  # fmt: skip
    lab.ok("bi", "read", str(bi), "--result", "negative", "--control", "positive",
           "--report-no", "R-77", now="2026-11-06T10:00:00Z")  # fmt: skip
    lab.ok("bi", "skip", "--sterilizer", "N1", "--week", "2026-W46", "--reason", "closed",
           now="2026-11-20T10:00:00Z")  # fmt: skip
    path = tmp_path / "nov.json"
    lab.ok("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json",
           "-o", str(path), now="2026-11-24T09:00:00Z")  # fmt: skip
    data = json.loads(path.read_text(encoding="utf-8"))
    events = [(e["kind"], e["lab"], e["envelope"], e["note"]) for e in data["bi_lab_events"]]
    assert events == [("mailed", "Mesa Labs", "E-1", None), ("report", None, None, "R-77")]
    assert [(d["expires"], d["control_lot"]) for d in data["bi_details"]] == [
        ("2027-03-31", "SP-9")
    ]
    assert [(s["week"], s["voided"]) for s in data["bi_skips"]] == [("2026-W46", False)]
