"""Late entries are marked on every list, the audit report and the trace (issue 11 point 4),
on both backends. The rule (sterilog.lateness): more than the rule pack's late_entry_minutes
(60) between the event time and the time of record; exactly 60 minutes is not late."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from conftest import Cli
from test_gate import hri, setup_clinic, start

NOW = "2026-11-24T09:00:00+00:00"  # conftest's clock: setup_clinic records everything at it


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    pages = PdfReader(io.BytesIO(path.read_bytes())).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


def cycle(cli: Cli, at: str, pack: str, bi: str | None = None) -> int:
    extra = ["--bi-lot", bi] if bi else []
    out: dict[str, Any] = cli.json(
        "cycle", "record", "--sterilizer", "AC1", "--program", "134-3.5", "--temp-c", "134",
        "--hold-min", "3.5", "--ci", "pass", "--pack", pack, "--at", at, *extra,
    )  # fmt: skip
    return int(out["load_id"])


def test_every_list_marks_late_rows_exactly_past_the_boundary(cli: Cli) -> None:
    setup_clinic(cli)  # its 07:00 air-removal test and 07:30 cycle (load 1) are entered at 09:00
    on_edge = cycle(cli, "2026-11-24T08:00:00+00:00", "P3")  # exactly 60 min: not late
    past_edge = cycle(cli, "2026-11-24T07:59:59+00:00", "P3")  # 60 min + 1 s: late
    rows = {r["load_id"]: r for r in cli.json("cycle", "list")["cycles"]}
    assert rows[1]["late"] is True and rows[1]["recorded_at"] == "2026-11-24T09:00:00Z"
    assert rows[1]["entered_by"] == "boss"
    assert rows[on_edge]["late"] is False and rows[on_edge]["recorded_at"] == "2026-11-24T09:00:00Z"
    assert rows[past_edge]["late"] is True
    text = cli.ok("cycle", "list").stdout
    lines = {line.split()[0]: line for line in text.splitlines()[1:]}
    assert "LATE (entered 2026-11-24 09:00 by boss)" in lines[str(past_edge)]
    assert "LATE" not in lines[str(on_edge)]

    # BI reads: the counted read's time against its time of record.
    cli.ok("bi", "read", "1", "--result", "negative", "--control", "positive",
           "--at", "2026-11-24T08:00:00+00:00", now="2026-11-24T09:00:01+00:00")  # fmt: skip
    bis = {b["bi_id"]: b for b in cli.json("bi", "list")["bis"]}
    assert (bis[1]["late"], bis[1]["recorded_at"]) == (True, "2026-11-24T09:00:01Z")
    late_bi = cycle(cli, "2026-11-24T07:45:00+00:00", "P3", bi="BI-2")
    bi2 = next(b for b in cli.json("bi", "list")["bis"] if b["load_id"] == late_bi)
    assert (bi2["late"], bi2["recorded_at"]) == (False, None)  # no read yet: nothing entered
    cli.ok("bi", "read", str(bi2["bi_id"]), "--result", "negative", "--control", "positive",
           "--at", "2026-11-24T08:00:00+00:00", now="2026-11-24T09:00:00+00:00")  # fmt: skip
    bi2 = next(b for b in cli.json("bi", "list")["bis"] if b["load_id"] == late_bi)
    assert bi2["late"] is False  # exactly 60 minutes
    assert "LATE (entered 2026-11-24 09:00 by boss)" in cli.ok("bi", "list").stdout

    # Cartridge receipts: received "yesterday", entered today.
    cli.ok("cartridge", "receive", hri("LOTC", "0001"), "--supplier", "Acme",
           "--at", "2026-11-23T16:00:00+00:00")  # fmt: skip
    units = cli.json("cartridge", "list")["units"]
    late_units = [(u["lot"], u["late"]) for u in units if u["late"]]
    assert late_units == [("LOTC", True)]
    assert all(u["recorded_at"] == "2026-11-24T09:00:00Z" for u in units)
    assert "LATE (entered 2026-11-24 09:00 by boss)" in cli.ok("cartridge", "list").stdout

    # Sessions are started now (no --at): listed as on time, with their time of record.
    start(cli, packs=("P1",))
    (s,) = cli.json("session", "list")["sessions"]
    assert (s["late"], s["recorded_at"], s["entered_by"]) == (False, "2026-11-24T09:00:00Z", "ann")
    assert "LATE" not in cli.ok("session", "list").stdout


def test_the_audit_report_says_when_a_late_entry_happened_was_entered_and_by_whom(
    cli: Cli, tmp_path: Path
) -> None:
    setup_clinic(cli)  # air-removal 07:00 and load 1 at 07:30 are entered at 09:00: late
    cli.ok("clean", "room", "R2", "--kind", "end-of-day", "--disinfectant", "Clinell",
           "--at", "2026-11-24T08:00:00+00:00")  # fmt: skip  # exactly 60 min: on time
    out = tmp_path / "audit.pdf"
    cli.ok("report", "audit", "--from", "2026-11-24", "--to", "2026-11-24", "-o", str(out))
    content = pdf_text(out)
    assert (
        "LATE ENTRY cycles#1: happened 2026-11-24 07:30, entered 2026-11-24 09:00 by Boss"
        in content
    )
    assert "LATE ENTRY air_removal_tests#1: happened 2026-11-24 07:00" in content
    assert content.count("LATE ENTRY") == 2  # the 08:00 clean, 60 min before, is not late


def test_trace_marks_late_incidents_receipts_and_bi_reads(cli: Cli, tmp_path: Path) -> None:
    setup_clinic(cli)
    later = "2026-11-24T09:05:00+00:00"
    cli.ok("cartridge", "receive", hri("LOTC", "0001"), "--supplier", "Acme",
           "--at", "2026-11-23T16:00:00+00:00", now=later)  # fmt: skip
    cli.ok("bi", "read", "1", "--result", "negative", "--control", "positive",
           "--at", "2026-11-24T08:00:00+00:00", now=later)  # fmt: skip  # 65 min: late
    out = start(cli, packs=("P1",), scan=hri("LOTC", "0001"), now="2026-11-24T09:10:00+00:00")
    sid = str(out["session_id"])
    cli.ok("incident", "record", "--session", sid, "--kind", "infection", "--note", "redness",
           "--at", "2026-11-24T09:30:00+00:00", now="2026-11-26T10:00:00+00:00")  # fmt: skip
    cli.ok("incident", "record", "--session", sid, "--kind", "infection", "--note", "pustules",
           "--at", "2026-11-26T09:00:00+00:00", now="2026-11-26T10:00:00+00:00")  # fmt: skip
    when = "2026-12-01T09:00:00+00:00"
    (d,) = cli.json("trace", "session", sid, now=when)["detail"]
    receipt = d["cartridge"]["receipt"]
    assert (receipt["late"], receipt["recorded_at"]) == (True, "2026-11-24T09:05:00Z")
    marks = [(i["note"], i["late"], i["recorded_at"]) for i in d["incidents"]]
    assert marks == [("redness", True, "2026-11-26T10:00:00Z"),
                     ("pustules", False, "2026-11-26T10:00:00Z")]  # fmt: skip  # exactly 60
    bi = d["packs"][0]["load"]["bi"]
    assert (bi["late"], bi["recorded_at"], bi["entered_by"]) == (True, "2026-11-24T09:05:00Z",
                                                                 "boss")  # fmt: skip
    looked = cli.json("trace", "bi", "1", now=when)
    assert looked["bi"]["late"] is True
    pdf = tmp_path / "trace.pdf"
    cli.ok("report", "trace", "session", sid, "-o", str(pdf), now=when)
    content = pdf_text(pdf)
    assert "LATE ENTRY: entered 2026-11-24 09:05 by boss" in content  # receipt and BI read
    assert content.count("LATE ENTRY: entered 2026-11-24 09:05") == 2
    assert content.count("LATE ENTRY: entered 2026-11-26 10:00") == 1  # the 09:30 incident only
    # The lot's own trace lists its receipts; the late one says when it was entered.
    from test_gate import GTIN

    lot_pdf = tmp_path / "lot.pdf"
    cli.ok("report", "trace", "lot", "--gtin", GTIN, "--lot", "LOTC", "-o", str(lot_pdf), now=when)
    assert pdf_text(lot_pdf).count("LATE ENTRY: entered 2026-11-24 09:05") == 1
