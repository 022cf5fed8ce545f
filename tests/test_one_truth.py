"""Issue 12: one answer everywhere. One regression test per reproduced case, on both backends:
the gate / `cycle record`, `bi read`, `bi list`, `cycle list`, `status`, every `trace` and the
monthly report's gaps must say the same thing about the same records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clinic import GTIN, hri
from clinic import registers as clinic_registers
from conftest import Cli


def at(day: int, hour: int, minute: int = 0, month: int = 10) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00+00:00"


def registers(cli: Cli, *, serials: int = 9) -> None:
    clinic_registers(cli, packs=("P1", "P2", "P3", "P4", "P5"), serials=serials, now=at(1, 6))


def air(cli: Cli, when: str, result: str = "pass") -> None:
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", result, now=when)


def load(cli: Cli, when: str, *packs: str, bi: bool = False, code: int = 0) -> Any:
    args = [
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
    ]
    for p in packs:
        args += ["--pack", p]
    if bi:
        args += ["--bi-lot", "BI-L1"]
    return cli.json(*args, now=when, expect=code)


def read(cli: Cli, bi_id: int, result: str, when: str, control: str = "positive") -> Any:
    return cli.json("bi", "read", str(bi_id), "--result", result, "--control", control, now=when)


def clean(cli: Cli, when: str) -> None:
    cli.ok(
        "clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell", now=when
    )
    cli.ok("clean", "device", "SN-1", "--disinfectant", "Clinell", now=when)


def session(
    cli: Cli, when: str, serial: str, *packs: str, client: str = "C-1", end: str | None = None
) -> int:
    args = [
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        hri("LOTA", serial),
        "--client",
        client,
    ]
    for p in packs:
        args += ["--pack", p]
    sid = int(cli.json(*args, operator="ann", now=when)["session_id"])
    if end is not None:
        cli.ok("session", "end", str(sid), operator="ann", now=end)
    return sid


def month_gaps(
    cli: Cli, year: int = 2026, month: int = 10, now: str = at(30, 12, month=11)
) -> list[str]:
    """The monthly report's gaps, as its data layer computes them (the PDF prints these)."""
    from sqlalchemy.orm import Session

    from sterilog.clock import parse_instant
    from sterilog.reports import monthly
    from sterilog.services.base import load_clinic

    engine = cli.engine()
    try:
        with Session(engine) as db:
            clinic = load_clinic(db)
            data = monthly.rows(
                db, year, month, tz=clinic.tz, now=parse_instant(now), rules=clinic.rules
            )
            return [f"{g.area}: {g.what}" for g in data.gaps]
    finally:
        engine.dispose()


def void(cli: Cli, kind: str, record_id: int, when: str) -> None:
    cli.ok("void", kind, str(record_id), "--reason", "mistake", now=when)


# --- case 1: a voided positive read is pending everywhere ------------------------------------


def test_case1_a_voided_positive_read_is_pending_in_every_answer(cli: Cli) -> None:
    registers(cli)
    air(cli, at(6, 7))
    first = load(cli, at(6, 7, 30), "P1", bi=True)
    read(cli, first["bi_id"], "positive", at(7, 8))
    void(cli, "bi-read", 1, at(7, 9))

    bis = {b["bi_id"]: b for b in cli.json("bi", "list", now=at(7, 10))["bis"]}
    assert bis[first["bi_id"]]["pending"] is True
    cycles = cli.json("cycle", "list", "--sterilizer", "AC1", "--from", "2026-10-01", now=at(7, 10))
    assert not any(c["suspect"] for c in cycles["cycles"])
    traced = cli.json("trace", "bi", str(first["bi_id"]), now=at(7, 10))
    assert traced["bi"]["result"] is None and traced["bi"]["valid"] is None
    assert traced["bi"]["pending"] is True
    assert traced["loads"] == [first["load_id"]]
    loaded = cli.json("trace", "load", str(first["load_id"]), now=at(7, 10))["load"]
    assert loaded["suspect"] is False and loaded["bi"]["result"] is None
    # and the sterilizer is not locked: cycle record and status agree
    status = cli.json("status", now=at(7, 10))["items"]
    assert not any(i["code"] == "status-sterilizer-locked" for i in status)
    air(cli, at(7, 10, 5))
    load(cli, at(7, 10, 10), "P2")


# --- case 2: the suspect loads of one BI are that BI's ---------------------------------------


def test_case2_bi_read_and_trace_bi_list_the_same_suspect_loads(cli: Cli) -> None:
    registers(cli)
    air(cli, at(6, 7))
    a1 = load(cli, at(6, 7, 30), "P1", bi=True)
    a2 = load(cli, at(6, 8), "P2")
    first = read(cli, a1["bi_id"], "positive", at(7, 7))
    assert first["suspect_loads"] == [a1["load_id"], a2["load_id"]]
    # requalify: a test cycle with a BI, read negative
    air(cli, at(7, 7, 10))
    t = load(cli, at(7, 7, 30), bi=True)
    read(cli, t["bi_id"], "negative", at(8, 7))
    air(cli, at(8, 7, 10))
    b1 = load(cli, at(8, 7, 30), "P3", bi=True)
    b2 = load(cli, at(8, 8), "P4")
    second = read(cli, b1["bi_id"], "positive", at(9, 7))
    assert second["suspect_loads"] == [b1["load_id"], b2["load_id"]]

    for bi, said in ((a1["bi_id"], first), (b1["bi_id"], second)):
        traced = cli.json("trace", "bi", str(bi), now=at(9, 8))
        assert traced["loads"] == said["suspect_loads"]
        assert traced["bi"]["suspect_loads"] == said["suspect_loads"]
    listed = cli.json("cycle", "list", "--sterilizer", "AC1", "--from", "2026-10-01", now=at(9, 8))[
        "cycles"
    ]
    suspect = sorted(c["load_id"] for c in listed if c["suspect"])
    assert suspect == sorted(first["suspect_loads"] + second["suspect_loads"])
    assert t["load_id"] not in suspect


# --- case 3: the weekly-BI gap is the gate's rule with the rule pack's numbers -----------------


def _init_with_interval(empty_url: str, backend: str, tmp_path: Path, days: int) -> Cli:
    from sterilog.rulepack import load_pack

    text = (
        load_pack("default")
        .text.replace('name = "default"', 'name = "monthly-bi"')
        .replace("interval_days = 7", f"interval_days = {days}")
    )
    path = tmp_path / "monthly-bi.toml"
    path.write_text(text)
    c = Cli(url=empty_url, backend=backend, now=at(1, 5))
    c.ok(
        "init",
        "--tz",
        "Europe/London",
        "--rules",
        str(path),
        "--manager",
        "boss",
        "--name",
        "B",
        operator=False,
    )
    return c


def test_case3_a_30_day_pack_gives_no_spore_gap_for_loads_the_gate_accepted(
    empty_url: str, backend: str, tmp_path: Path
) -> None:
    c = _init_with_interval(empty_url, backend, tmp_path, 30)
    registers(c)
    air(c, at(2, 7))
    first = load(c, at(2, 7, 30), "P1", bi=True)
    read(c, first["bi_id"], "negative", at(3, 7))
    for day in (9, 16, 23, 30):  # weekly loads, no BI: the 30-day pack allows them
        air(c, at(day, 7))
        load(c, at(day, 7, 30), "P1")
    assert not [g for g in month_gaps(c) if g.startswith("spore testing")]
    # a load 30 days after the BI is blocked by cycle record, and would be a gap
    air(c, at(1, 7, month=11))
    blocked = load(c, at(1, 7, 30, month=11), "P1", code=3)
    assert [r["code"] for r in blocked["reasons"]] == ["sterilizer-bi-overdue"]


def test_case3_default_pack_a_monday_load_inside_the_rolling_week_is_no_gap(cli: Cli) -> None:
    registers(cli)
    # Monday 2026-10-05 08:00 BI (negative); next Monday 2026-10-12 07:30 load without a BI is
    # inside the rolling seven days, so cycle record accepted it: not a gap either.
    air(cli, at(5, 7))
    first = load(cli, at(5, 8), "P1", bi=True)
    read(cli, first["bi_id"], "negative", at(6, 8))
    air(cli, at(12, 7))
    load(cli, at(12, 7, 30), "P1")
    assert not [g for g in month_gaps(cli) if g.startswith("spore testing")]
    # voiding the BI's cycle removes the cover after the fact: now both reports and status agree
    void(cli, "cycle", first["load_id"], at(12, 9))
    gaps = [g for g in month_gaps(cli) if g.startswith("spore testing")]
    assert len(gaps) == 1 and "load 2 (#2" in gaps[0]
    items = cli.json("status", now=at(12, 9, 5))["items"]
    assert any(i["code"] == "status-bi-overdue" and i["state"] == "overdue" for i in items)


def test_case3_a_clinic_that_never_ran_a_load_has_no_spore_gap(cli: Cli) -> None:
    registers(cli)
    assert month_gaps(cli) == []


# --- case 4: the air-removal test of that day only, void-aware ------------------------------


def test_case4_a_voided_air_removal_test_is_not_shown_and_is_a_gap(cli: Cli) -> None:
    registers(cli)
    air(cli, at(5, 7))  # the day before: never "the test before" a load of the 6th
    air(cli, at(6, 7))
    first = load(cli, at(6, 7, 30), "P1", bi=True)
    read(cli, first["bi_id"], "negative", at(6, 8))
    clean(cli, at(6, 8, 30))
    sid = session(cli, at(6, 9), "0001", "P1", end=at(6, 9, 30))
    traced = cli.json("trace", "session", str(sid), now=at(6, 10))["detail"][0]
    assert traced["packs"][0]["load"]["air_removal_before"]["at"].startswith("2026-10-06T07:00")
    void(cli, "air-removal", 2, at(6, 11))

    traced = cli.json("trace", "session", str(sid), now=at(6, 12))["detail"][0]
    assert traced["packs"][0]["load"]["air_removal_before"] is None
    text = cli.ok("trace", "session", str(sid), now=at(6, 12)).output
    assert "air-removal test that day: none" in text
    gaps = [g for g in month_gaps(cli) if g.startswith("air-removal")]
    assert len(gaps) == 1 and "2026-10-06" in gaps[0] and f"({first['load_id']})" in gaps[0]


# --- case 5: the sessions in between when a clean is missing ----------------------------------


def test_case5_trace_names_the_session_in_between_when_a_clean_is_missing(cli: Cli) -> None:
    registers(cli)
    air(cli, at(6, 7))
    first = load(cli, at(6, 7, 30), "P1", "P2", bi=True)
    read(cli, first["bi_id"], "negative", at(6, 7, 45))
    clean(cli, at(5, 19))  # the previous evening
    s1 = session(cli, at(6, 8), "0001", "P1", client="C-399", end=at(6, 8, 30))
    clean(cli, at(6, 8, 40))  # room-clean 2, device-clean 2
    s2 = session(cli, at(6, 9), "0002", "P2", client="C-400", end=at(6, 9, 30))
    ok = cli.json("trace", "session", str(s2), now=at(6, 10))["detail"][0]
    assert ok["room_detail"]["cleaned_since_previous_session"] is True
    assert ok["room_detail"]["sessions_since_last_clean"] == []
    void(cli, "room-clean", 2, at(6, 11))
    void(cli, "device-clean", 2, at(6, 11))

    traced = cli.json("trace", "session", str(s2), now=at(6, 12))["detail"][0]
    for part in (traced["room_detail"], traced["device"]):
        assert part["cleaned_since_previous_session"] is False
        assert part["previous_session_id"] == s1
        assert [b["session_id"] for b in part["sessions_since_last_clean"]] == [s1]
        assert part["last_clean"]["at"].startswith("2026-10-05T19:00")
    text = cli.ok("trace", "session", str(s2), now=at(6, 12)).output
    assert "NOT CLEANED" in text and "C-399" in text
    gaps = [g for g in month_gaps(cli) if g.startswith("cleaning")]
    assert gaps == [
        f"cleaning: session {s2}: room R1 was not cleaned after its last session ended",
        f"cleaning: session {s2}: device SN-1 was not cleaned and disinfected after its last "
        "session",
    ]
    # the gate says the same now: the room and pen need a clean after session s2
    status = {(i["kind"], i["code"]) for i in cli.json("status", now=at(6, 12))["items"]}
    assert ("room", "status-room-not-cleaned") in status
    assert ("device", "status-device-not-reprocessed") in status


# --- case 6: nearest BI before is another load's; recalled lots are said ----------------------


def test_case6_nearest_bi_before_is_an_earlier_load_and_recalls_are_said(cli: Cli) -> None:
    registers(cli)
    air(cli, at(6, 7))
    first = load(cli, at(6, 7, 30), "P1", bi=True)
    read(cli, first["bi_id"], "negative", at(7, 7))
    air(cli, at(7, 7, 10))
    second = load(cli, at(7, 7, 30), "P2", bi=True)
    traced = cli.json("trace", "load", str(second["load_id"]), now=at(7, 8))["load"]
    assert traced["bi"]["bi_id"] == second["bi_id"]
    assert traced["bi_before"]["bi_id"] == first["bi_id"]
    assert traced["bi_before"]["load_id"] == first["load_id"]
    first_traced = cli.json("trace", "load", str(first["load_id"]), now=at(7, 8))["load"]
    assert first_traced["bi_before"] is None
    assert first_traced["bi_after"]["bi_id"] == second["bi_id"]

    clean(cli, at(7, 8))
    sid = session(cli, at(7, 9), "0001", "P2", end=at(7, 9, 30))
    assert (
        cli.json("trace", "session", str(sid), now=at(7, 10))["detail"][0]["cartridge"]["recalled"]
        is None
    )
    cli.ok(
        "cartridge",
        "recall",
        "--gtin",
        GTIN,
        "--lot",
        "LOTA",
        "--reason",
        "maker recall",
        now=at(7, 11),
    )
    traced_s = cli.json("trace", "session", str(sid), now=at(7, 12))["detail"][0]
    assert traced_s["cartridge"]["recalled"]["reason"] == "maker recall"
    assert "LOT RECALLED" in cli.ok("trace", "session", str(sid), now=at(7, 12)).output
    lot = cli.json("trace", "lot", "--gtin", GTIN, "--lot", "LOTA", now=at(7, 12))
    assert lot["recalled"]["reason"] == "maker recall"
    # the gate refuses the lot for the same reason
    clean(cli, at(7, 12, 5))
    refused = cli.json(
        "check",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        hri("LOTA", "0002"),
        "--practitioner",
        "ann",
        now=at(7, 12, 10),
        expect=3,
    )
    assert "cartridge-recalled" in [r["code"] for r in refused["reasons"]]


def test_every_gap_and_status_rule_runs_the_gate_or_cycle_rules_own_function() -> None:
    """Pure: a gap or status rule that names a rule applies that rule's function (no second
    implementation), and codes are unique across the one table."""
    from sterilog.compliance import table as rules

    named = [spec for spec in rules.RULES if spec.same_as is not None]
    assert {s.code for s in named} >= {"gap-bi-overdue", "gap-room-not-cleaned"}
    for spec in named:
        original = rules.BY_CODE[spec.same_as]
        assert original.scope in ("gate", "cycle")
        assert original.check is spec.check
    assert len(rules.BY_CODE) == len(rules.RULES)


# --- case 7: a corrected name, before and after the correction ------------------------------


def test_case7_a_practitioner_renamed_between_sessions_is_named_alike_everywhere(
    cli: Cli, tmp_path: Path
) -> None:
    """`staff update --name` is a dated change: the session before it shows the name in force
    then, the session after it the new name, in trace-back, `session list`, the export and
    the monthly report alike (the list, the export and the report used to print the name
    given at `staff add` for both)."""
    import json

    registers(cli)
    air(cli, at(5, 7))
    first = load(cli, at(5, 7, 30), "P1", "P2", bi=True)
    read(cli, first["bi_id"], "negative", at(5, 7, 45))
    clean(cli, at(5, 8))
    before = session(cli, at(5, 9), "0001", "P1", client="C-1", end=at(5, 9, 30))
    cli.ok("staff", "update", "ann", "--name", "Ann Byrne", now=at(5, 10))
    clean(cli, at(5, 10, 30))
    after = session(cli, at(5, 11), "0002", "P2", client="C-2", end=at(5, 11, 30))
    want = {before: "Ann", after: "Ann Byrne"}
    now = at(30, 12, month=11)

    listed = cli.json("session", "list", "--date", "2026-10-05", now=now)["sessions"]
    assert {s["session_id"]: s["practitioner_name"] for s in listed} == want
    for sid, name in want.items():
        traced = cli.json("trace", "session", str(sid), now=now)
        assert traced["detail"][0]["practitioner_detail"]["name"] == name
    target = tmp_path / "x.json"
    cli.ok(
        "export", "--from", "2026-10-01", "--to", "2026-10-31", "--format", "json",
        "-o", str(target), now=now,
    )  # fmt: skip
    exported = json.loads(target.read_text())["sessions"]
    assert {s["id"]: s["practitioner_name"] for s in exported} == want

    from sqlalchemy.orm import Session

    from sterilog.clock import parse_instant
    from sterilog.reports import monthly
    from sterilog.services.base import load_clinic

    engine = cli.engine()
    try:
        with Session(engine) as db:
            clinic = load_clinic(db)
            data = monthly.rows(
                db, 2026, 10, tz=clinic.tz, now=parse_instant(now), rules=clinic.rules
            )
            assert {s.session_id: s.practitioner for s in data.sessions} == want
    finally:
        engine.dispose()


# --- case 8: a positive read entered late ------------------------------------------------------


def test_case8_a_load_run_before_a_late_entered_positive_read_is_suspect_everywhere(
    cli: Cli,
) -> None:
    """BI 1 is read positive at 11:00 with `--at 09:00`; load 2 ran at 10:00 on the sterilizer
    locked in hindsight. It is suspect in the read's output, the gate, trace, `cycle list` and
    the report (the gate said go and trace said not suspect: the range stopped at 09:00)."""
    registers(cli)
    air(cli, at(5, 7))
    first = load(cli, at(5, 7, 10), "P1", bi=True)
    air(cli, at(6, 7))
    second = load(cli, at(6, 10), "P2")
    out = cli.json(
        "bi", "read", str(first["bi_id"]), "--result", "positive", "--control", "positive",
        "--at", at(6, 9), now=at(6, 11),
    )  # fmt: skip
    assert out["suspect_loads"] == [first["load_id"], second["load_id"]]
    clean(cli, at(6, 11, 5))
    gate = cli.json(
        "check", "--room", "R1", "--device", "SN-1", "--cartridge", hri("LOTA", "0001"),
        "--pack", "P2", "--practitioner", "ann", now=at(6, 11, 10), expect=3,
    )  # fmt: skip
    assert [r["code"] for r in gate["reasons"]] == ["pack-load-suspect"]
    assert cli.json("trace", "load", str(second["load_id"]), now=at(6, 12))["load"]["suspect"]
    cycles = cli.json("cycle", "list", now=at(6, 12))["cycles"]
    listed = {c["load_id"]: c["suspect"] for c in cycles}
    assert listed == {first["load_id"]: True, second["load_id"]: True}
    traced = cli.json("trace", "bi", str(first["bi_id"]), now=at(6, 12))
    assert traced["loads"] == [first["load_id"], second["load_id"]]
