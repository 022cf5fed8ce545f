"""The gate end to end through the real CLI, on both backends: a whole clinic day."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from clinic import GTIN, hri
from conftest import Cli

GS = "\x1d"




def raw(lot: str, serial: str, expiry: str = "271231") -> str:
    return f"]d201{GTIN}17{expiry}10{lot}{GS}21{serial}"


def setup_clinic(cli: Cli) -> None:
    """Registers, stock, a passing load with P1 and P2, and a clean room and device."""
    cli.ok("staff", "add", "ann", "--name", "Ann Zoë", "--role", "practitioner",
           "--license", "PR-1", "--license-expires", "2027-06-30", "--max-depth-mm", "2.0")
    cli.ok("room", "add", "R1")
    cli.ok("room", "add", "R2")
    cli.ok("device", "add", "SN-1", "--model", "Pen 4", "--max-depth-mm", "2.5")
    cli.ok("device", "add", "SN-2", "--model", "Pen 4")
    cli.ok("sterilizer", "add", "AC1", "--model", "Vacuklav", "--type", "B")
    for p in ("P1", "P2", "P3"):
        cli.ok("pack", "add", p, "--contents", "tweezers")
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    cli.ok("cartridge", "receive", *(hri("LOTA", f"000{i}") for i in range(1, 6)),
           "--supplier", "Acme")
    cli.ok("cartridge", "receive", hri("LOTB"), "--quantity", "2")
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "pass",
           "--at", "2026-11-24T07:00:00+00:00")
    cli.ok("cycle", "record", "--sterilizer", "AC1", "--program", "134-3.5", "--temp-c", "134",
           "--hold-min", "3.5", "--ci", "pass", "--pack", "P1", "--pack", "P2",
           "--bi-lot", "BI-1", "--at", "2026-11-24T07:30:00+00:00")
    clean(cli, "R1", "SN-1", at="2026-11-24T08:00:00+00:00")


def clean(cli: Cli, room: str | None, device: str | None, at: str | None = None,
          now: str | None = None) -> None:
    extra = ["--at", at] if at else []
    if room:
        cli.ok("clean", "room", room, "--kind", "between-clients", "--disinfectant", "Clinell",
               *extra, now=now)
    if device:
        cli.ok("clean", "device", device, "--disinfectant", "Clinell", *extra, now=now)


def start(cli: Cli, *, room: str = "R1", device: str = "SN-1", scan: str | None = None,
          packs: tuple[str, ...] = (), client: str = "C-1", expect: int = 0,
          extra: tuple[str, ...] = (), operator: str = "ann", now: str | None = None) -> dict:
    args = ["session", "start", "--room", room, "--device", device,
            "--cartridge", scan or hri("LOTA", "0001"), "--client", client]
    for p in packs:
        args += ["--pack", p]
    out: dict = cli.json(*args, *extra, expect=expect, operator=operator, now=now)
    return out


def codes(out: dict) -> list[str]:
    return [r["code"] for r in out["reasons"]]


@pytest.fixture
def clinic(cli: Cli) -> Cli:
    setup_clinic(cli)
    return cli


def test_everything_clean_and_sterile_is_go_and_the_session_is_recorded(clinic: Cli) -> None:
    out = start(clinic, packs=("P1",), extra=("--depth-mm", "1.5"))
    assert out["decision"] == "go" and out["reasons"] == [] and out["session_id"] == 1
    (s,) = clinic.json("session", "list")["sessions"]
    assert (s["session_id"], s["client"], s["room"], s["practitioner"]) == (1, "C-1", "R1", "ann")
    assert s["cartridge"] == {"gtin": GTIN, "lot": "LOTA", "serial": "0001",
                              "expiry": "2027-12-31"}
    text = clinic.run("session", "list", operator="ann").stdout
    assert "C-1" in text


def test_check_is_a_dry_run_that_writes_nothing(clinic: Cli) -> None:
    before = clinic.audit_count()
    r = clinic.run("check", "--room", "R1", "--device", "SN-1", "--cartridge",
                   hri("LOTA", "0001"), "--pack", "P1", operator="ann")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("GO")
    assert clinic.audit_count() == before
    assert clinic.json("session", "list")["sessions"] == []


def test_after_a_session_the_room_device_pack_and_unit_all_need_reprocessing(clinic: Cli) -> None:
    sid = start(clinic, packs=("P1",))["session_id"]
    out = start(clinic, packs=("P1",), expect=3, client="C-2")
    assert codes(out) == ["cartridge-used", "device-in-use", "room-occupied", "pack-in-use"]
    clinic.ok("session", "end", str(sid), operator="ann", now="2026-11-24T09:30:00+00:00")
    later = "2026-11-24T09:40:00+00:00"
    out = start(clinic, packs=("P1",), expect=3, client="C-2",
                scan=raw("LOTA", "0001"), now=later)  # the same unit in raw form
    assert codes(out) == ["cartridge-used", "device-not-reprocessed", "room-not-cleaned",
                          "pack-not-sterile"]
    assert out["session_id"] is None and out["refusal_id"] >= 1
    clean(clinic, "R1", "SN-1", now=later)
    out = start(clinic, packs=("P2",), scan=hri("LOTA", "0002"), client="C-2", now=later)
    assert out["decision"] == "go"


def test_a_refusal_is_recorded_with_its_reasons_and_exits_3(clinic: Cli) -> None:
    before = clinic.audit_count()
    r = clinic.run("session", "start", "--room", "R2", "--device", "SN-1", "--cartridge",
                   hri("LOTA", "0001"), "--client", "C-9", operator="ann")
    assert r.exit_code == 3
    assert r.stdout.splitlines()[0] == "BLOCKED: 1 reason (refusal 1 recorded)"
    assert "room-not-cleaned" in r.stdout
    assert clinic.audit_count() == before + 1
    log = clinic.json("audit", "log", "--limit", "1")["entries"][0]
    assert log["action"] == "session.refused" and log["records"] == ["refusals#1"]


def test_an_exhausted_unserialized_lot_is_blocked(clinic: Cli) -> None:
    t = ["2026-11-24T09:00:00+00:00", "2026-11-24T10:00:00+00:00", "2026-11-24T11:00:00+00:00"]
    for i, now in enumerate(t):
        if i:
            clean(clinic, "R1", "SN-1", now=now)
        out = start(clinic, scan=hri("LOTB"), client=f"C-{i}", now=now, expect=3 if i == 2 else 0)
        if i < 2:
            clinic.ok("session", "end", str(out["session_id"]), operator="ann", now=now)
    assert codes(out) == ["lot-exhausted"]
    assert "all 2 units" in out["reasons"][0]["message"]


@pytest.mark.parametrize(
    "now, decision",
    [("2026-11-24T23:59:59+00:00", "go"), ("2026-11-25T00:00:00+00:00", "blocked")],
)
def test_a_cartridge_is_usable_to_the_last_second_of_its_expiry_day(
    clinic: Cli, now: str, decision: str
) -> None:
    clinic.ok("cartridge", "receive", hri("LOTE", "1", expiry="261124"))
    out = start(clinic, scan=hri("LOTE", "1", expiry="261124"), now=now,
                expect=0 if decision == "go" else 3)
    assert out["decision"] == decision
    if decision == "blocked":
        assert codes(out) == ["cartridge-expired"]
    else:
        assert [w["code"] for w in out["warnings"]] == ["cartridge-expiring"]


def test_a_recalled_lot_blocks_and_trace_lists_who_was_treated(clinic: Cli) -> None:
    sid = start(clinic, client="C-42")["session_id"]
    recall = clinic.json("cartridge", "recall", "--gtin", GTIN, "--lot", "LOTA",
                         "--reason", "sterility breach")
    assert [s["session_id"] for s in recall["sessions"]] == [sid]
    traced = clinic.json("trace", "lot", "--gtin", GTIN, "--lot", "LOTA")["sessions"]
    assert [(s["session_id"], s["client"], s["room"], s["practitioner"]) for s in traced] == [
        (sid, "C-42", "R1", "ann")
    ]
    out = start(clinic, room="R2", device="SN-2", scan=hri("LOTA", "0002"), expect=3)
    assert "cartridge-recalled" in codes(out)


def test_a_positive_bi_makes_packs_suspect_and_trace_finds_the_sessions(clinic: Cli) -> None:
    sid = start(clinic, packs=("P1",), client="C-7")["session_id"]
    bi = clinic.json("bi", "list")["bis"][0]["bi_id"]
    read = clinic.json("bi", "read", str(bi), "--result", "positive", "--control", "positive",
                       "--at", "2026-11-24T09:30:00+00:00", now="2026-11-24T09:30:00+00:00")
    assert read["valid"] is True and read["suspect_loads"] == [1]
    traced = clinic.json("trace", "bi", str(bi), now="2026-11-24T09:30:00+00:00")["sessions"]
    assert [(s["session_id"], s["client"]) for s in traced] == [(sid, "C-7")]
    out = start(clinic, room="R2", device="SN-2", scan=hri("LOTA", "0002"), packs=("P2",),
                expect=3, now="2026-11-24T09:31:00+00:00")
    assert "pack-load-suspect" in codes(out)


def test_a_lapsed_licence_and_an_inspector_cannot_treat(clinic: Cli) -> None:
    clinic.ok("staff", "add", "old", "--name", "Old", "--role", "practitioner",
              "--license-expires", "2026-11-23")
    clinic.ok("staff", "add", "ivy", "--name", "Ivy", "--role", "inspector")
    out = start(clinic, expect=3, extra=("--practitioner", "old"))
    assert codes(out) == ["practitioner-not-licensed"]
    assert "expired on 2026-11-23" in out["reasons"][0]["message"]
    out = start(clinic, expect=3, extra=("--practitioner", "ivy"))
    assert codes(out) == ["practitioner-not-licensed"]


def test_depth_limits_of_device_and_practitioner(clinic: Cli) -> None:
    out = start(clinic, expect=3, extra=("--depth-mm", "2.6"))
    assert codes(out) == ["device-depth-exceeded", "practitioner-depth-exceeded"]
    out = start(clinic, expect=3, extra=("--depth-mm", "2.1"))
    assert codes(out) == ["practitioner-depth-exceeded"]
    assert start(clinic, extra=("--depth-mm", "2.0"))["decision"] == "go"


def test_a_retired_device_is_blocked(clinic: Cli) -> None:
    clinic.ok("device", "retire", "SN-1", "--reason", "motor noise")
    assert codes(start(clinic, expect=3)) == ["device-retired"]


def test_a_failed_load_blocks_its_packs(clinic: Cli) -> None:
    clinic.ok("cycle", "record", "--sterilizer", "AC1", "--program", "134-3.5", "--temp-c",
              "131", "--hold-min", "3.5", "--ci", "pass", "--pack", "P3",
              "--at", "2026-11-24T08:10:00+00:00")
    assert codes(start(clinic, packs=("P3",), expect=3)) == ["pack-load-failed"]


def test_a_pack_never_sterilized_is_blocked(clinic: Cli) -> None:
    assert codes(start(clinic, packs=("P3",), expect=3)) == ["pack-not-sterile"]


@pytest.mark.parametrize(
    "args, message",
    [
        (("--room", "R9"), "unknown room 'R9'"),
        (("--device", "SN-9"), "unknown device 'SN-9'"),
        (("--pack", "P9"), "unknown pack 'P9'"),
        (("--practitioner", "zed"), "unknown staff 'zed'"),
        (("--cartridge", "not a barcode"), "cannot read the cartridge scan"),
        (("--depth-mm", "nan"), "--depth-mm"),
    ],
)
def test_typos_are_exit_1_and_record_nothing(clinic: Cli, args: tuple[str, ...],
                                             message: str) -> None:
    base = {"--room": "R1", "--device": "SN-1", "--cartridge": hri("LOTA", "0001"),
            "--client": "C-1"}
    argv = ["session", "start"]
    given = dict(zip(args[::2], args[1::2], strict=True))
    for k, val in {**base, **given}.items():
        argv += [k, val]
    before = clinic.audit_count()
    r = clinic.fails(*argv, operator="ann")
    assert message in r.stderr
    assert clinic.audit_count() == before


def test_missing_options_are_a_usage_error_when_not_at_a_terminal(clinic: Cli) -> None:
    r = clinic.run("session", "start", "--room", "R1", "--device", "SN-1", operator="ann")
    assert r.exit_code == 2 and "--cartridge" in r.stderr


def test_an_incident_is_traced_back_to_everything_behind_the_session(clinic: Cli) -> None:
    sid = start(clinic, packs=("P1",), client="C-5")["session_id"]
    clinic.ok("incident", "record", "--session", str(sid), "--kind", "infection",
              "--severity", "moderate", "--note", "redness <day 3> & pus", operator="ann")
    out = clinic.json("trace", "session", str(sid))
    assert out["sessions"][0]["session_id"] == sid
    d = out["detail"][0]
    assert d["cartridge"]["receipt"]["supplier"] == "Acme"
    assert d["device"]["last_clean"]["disinfectant"] == "Clinell"
    assert d["room_detail"]["last_clean"]["kind"] == "between-clients"
    assert d["packs"][0]["load"]["sterilizer"] == "AC1"
    assert d["packs"][0]["load"]["bi"]["lot"] == "BI-1"
    assert d["incidents"][0]["note"] == "redness <day 3> & pus"
    by_client = clinic.json("trace", "client", "C-5")
    assert [s["session_id"] for s in by_client["sessions"]] == [sid]
    assert [s["session_id"] for s in clinic.json("trace", "load", "1")["sessions"]] == [sid]
    assert [s["session_id"] for s in clinic.json("trace", "device", "SN-1")["sessions"]] == [sid]


def test_status_lists_what_is_due_and_blocked(clinic: Cli) -> None:
    sid = start(clinic)["session_id"]
    items = clinic.json("status", now="2026-11-24T14:00:00+00:00")["items"]
    kinds = {(i["kind"], i["subject"], i["state"]) for i in items}
    assert ("session", str(sid), "overdue") in kinds
    assert ("room", "R2", "due") in kinds  # never cleaned
    clinic.ok("session", "end", str(sid), operator="ann", now="2026-11-24T14:00:00+00:00")
    items = clinic.json("status", now="2026-11-24T14:01:00+00:00")["items"]
    kinds = {(i["kind"], i["subject"], i["state"]) for i in items}
    assert ("room", "R1", "due") in kinds and ("device", "SN-1", "due") in kinds
    for i in items:
        assert set(i) == {"kind", "subject", "state", "message", "code"}
        assert i["code"].startswith("status-")


def test_the_audit_chain_verifies_after_a_clinic_day(clinic: Cli) -> None:
    sid = start(clinic, packs=("P1",))["session_id"]
    start(clinic, expect=3)
    clinic.ok("session", "end", str(sid), operator="ann")
    assert clinic.json("audit", "verify")["ok"] is True


# --- single use under concurrency: real processes --------------------------------------------


def _spawn(cli: Cli, client: str, scan: str) -> subprocess.Popen[str]:
    env = {**os.environ, "STERILOG_NOW": cli.now, "STERILOG_OPERATOR": "ann",
           "STERILOG_DB": cli.url, "STERILOG_PIN": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "sterilog", "--json", "session", "start", "--room", "R1",
         "--device", "SN-1", "--cartridge", scan, "--client", client],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=Path(__file__).parent,
    )


def test_two_terminals_racing_for_one_unit_end_with_one_session_and_one_refusal(
    clinic: Cli,
) -> None:
    procs = [_spawn(clinic, f"C-{i}", hri("LOTA", "0003")) for i in range(2)]
    results = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    for _code, _out, err in results:
        assert "Traceback" not in err and "locked" not in err
    assert sorted(code for code, _o, _e in results) == [0, 3]
    decisions = sorted(json.loads(out)["decision"] for _c, out, _e in results)
    assert decisions == ["blocked", "go"]
    assert len(clinic.json("session", "list")["sessions"]) == 1
    assert clinic.json("audit", "verify")["ok"] is True


@pytest.mark.parametrize("read", [None, ("negative", "positive"), ("positive", "positive"),
                                  ("negative", "negative")])
def test_the_gates_bi_due_time_agrees_with_the_sterilizer_state(
    clinic: Cli, read: tuple[str, str] | None
) -> None:
    """The gate's BI-due warning and `cycle record`'s sterilizer-bi-overdue rule (through
    status's sterilizer state) must agree."""
    from sterilog.clock import parse_instant
    from sterilog.compliance import facts, history
    from sterilog.db import read_session
    from sterilog.models import Sterilizer
    from sterilog.services.base import load_clinic

    if read is not None:
        clinic.ok("bi", "read", "1", "--result", read[0], "--control", read[1])
    engine = clinic.engine()
    try:
        with read_session(engine) as session:
            clinic_ = load_clinic(session)
            now = parse_instant(clinic.now)
            fast = dict(facts.bi_due(session, now, clinic_.rules.bi_interval_days))
            st = session.query(Sterilizer).one()
            state = history.sterilizer_state(session, st.id, now, clinic_.rules, clinic_.tz)
    finally:
        engine.dispose()
    due = fast.get("AC1")
    assert due == state.bi_due_at
    assert state.bi_overdue is (due is None or now >= due)


def test_verifys_fast_row_reader_agrees_with_what_append_records(clinic: Cli) -> None:
    """audit verify reads rows through the driver; its canonical form must equal the one
    audit.append records (read back through SQLAlchemy), for every table and column type."""
    from sqlalchemy import select

    from sterilog import audit
    from sterilog.db import read_session
    from sterilog.models import AUDITED

    sid = start(clinic, packs=("P1",), extra=("--depth-mm", "1.5"))["session_id"]
    clinic.ok("session", "end", str(sid), operator="ann")
    clinic.ok("staff", "add", "pin", "--name", "P", "--role", "practitioner", "--pin",
              env={"STERILOG_NEW_PIN": "2468"})
    engine = clinic.engine()
    checked = 0
    try:
        with read_session(engine) as session:
            for model in AUDITED:
                table = model.__table__
                slow = {
                    int(r._mapping[table.c.id]): audit.row_content(table, r)  # type: ignore[arg-type]
                    for r in session.execute(select(table))
                }
                cursor = audit._Cursor(session, table)  # type: ignore[arg-type]
                fast = {}
                while (item := cursor.peek()) is not None:
                    fast[item[0]] = cursor.content(item[1])
                    cursor.advance()
                assert fast == slow, model.__tablename__
                checked += len(fast)
    finally:
        engine.dispose()
    assert checked > 30


def test_session_list_open_shows_every_open_session_and_no_ended_one(clinic: Cli) -> None:
    first = start(clinic)["session_id"]
    clinic.ok("session", "end", str(first), operator="ann", now="2026-11-24T09:10:00+00:00")
    clean(clinic, "R2", "SN-2", now="2026-11-24T09:10:00+00:00")
    second = start(clinic, room="R2", device="SN-2", scan=hri("LOTA", "0002"), client="C-2",
                   now="2026-11-24T09:20:00+00:00")["session_id"]
    rows = clinic.json("session", "list", "--open")["sessions"]
    assert [r["session_id"] for r in rows] == [second]
    assert clinic.json("session", "list", "--open", "--room", "R1")["sessions"] == []


def test_a_voided_clean_is_not_shown_as_the_clean_behind_a_session(clinic: Cli) -> None:
    clinic.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
              "--at", "2026-11-24T08:30:00+00:00", "--note", "wrong room")
    clean_id = clinic.json("audit", "log", "--limit", "1")["entries"][0]["records"][0]
    assert clean_id.startswith("room_cleans#")
    clinic.ok("void", "room-clean", clean_id.split("#")[1], "--reason", "it was R2")
    sid = start(clinic)["session_id"]
    detail = clinic.json("trace", "session", str(sid))["detail"][0]
    assert detail["room_detail"]["last_clean"]["at"] == "2026-11-24T08:00:00Z"
    assert detail["room_detail"]["last_clean"]["note"] is None


def test_a_voided_discard_puts_the_unit_back_in_stock_everywhere(clinic: Cli) -> None:
    out = clinic.json("cartridge", "discard", hri("LOTA", "0004"), "--reason", "dropped?")
    clinic.ok("void", "discard", str(out["discard_id"]), "--reason", "it was another unit")
    statuses = {u["serial"]: u["status"] for u in clinic.json("cartridge", "list")["units"]}
    assert statuses["0004"] == "in-stock"
    r = clinic.fails("cartridge", "discard", hri("LOTA", "0004"), "--reason", "again")
    assert "voided" in r.stderr
    assert start(clinic, scan=hri("LOTA", "0004"))["decision"] == "go"


def test_a_voided_recall_no_longer_blocks_the_lot_anywhere(clinic: Cli) -> None:
    recall = clinic.json("cartridge", "recall", "--gtin", GTIN, "--lot", "LOTA",
                         "--reason", "wrong lot keyed")
    clinic.ok("void", "recall", str(recall["recall_id"]), "--reason", "keyed the wrong lot")
    statuses = {u["status"] for u in clinic.json("cartridge", "list", "--lot", "LOTA")["units"]}
    assert statuses == {"in-stock"}
    clinic.ok("cartridge", "receive", hri("LOTA", "0009"))
    assert start(clinic, scan=hri("LOTA", "0009"))["decision"] == "go"
