"""Sterilization through the real CLI on both backends: cycles, air-removal tests, BIs, the lock
after a positive BI, suspect loads and requalification."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli, _need_pg, fresh_url

DAY1 = "2026-11-23"
DAY2 = "2026-11-24"  # the fixture's today (now 09:00 GMT = UTC)


def setup(cli: Cli) -> None:
    cli.ok("sterilizer", "add", "AC1", "--model", "Vacuklav", "--type", "B")
    cli.ok("sterilizer", "add", "N1", "--model", "Classic", "--type", "N")
    for p in ("P1", "P2", "P3"):
        cli.ok("pack", "add", p, "--contents", "tweezers")


_TEMPLATES: dict[tuple[str, str], str] = {}


def prepared_cli(
    request: pytest.FixtureRequest,
    backend: str,
    tmp_path: Path,
    key: str,
    setup_fn: Callable[[Cli], None],
) -> Cli:
    """Like the `cli` fixture, but copied from a template that `setup_fn` prepared once per
    backend: registers are not re-added for every test (keeps the suite fast)."""
    from sqlalchemy.engine import make_url

    pg = None
    if backend == "sqlite":
        base: str | Path = request.getfixturevalue("sqlite_template")
    else:
        pg = _need_pg(request.getfixturevalue("pg_server"))
        base = request.getfixturevalue("pg_template")
    template = _TEMPLATES.get((key, backend))
    if template is None:
        where = request.getfixturevalue("tmp_path_factory").mktemp(key)
        url = fresh_url(backend, where, pg, template=base)
        setup_fn(Cli(url=url, backend=backend))
        template = str(make_url(url).database)
        _TEMPLATES[(key, backend)] = template
    return Cli(url=fresh_url(backend, tmp_path, pg, template=template), backend=backend)


@pytest.fixture
def clinic(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Cli:
    return prepared_cli(request, backend, tmp_path, "sterilization", setup)


def air(cli: Cli, at: str, result: str = "pass", sterilizer: str = "AC1", **kw: Any) -> None:
    cli.ok(
        "air-removal", "record", "--sterilizer", sterilizer, "--result", result, "--at", at, **kw
    )


def cycle_args(*extra: str, sterilizer: str = "AC1", temp: str = "134") -> list[str]:
    return [
        "cycle",
        "record",
        "--sterilizer",
        sterilizer,
        "--program",
        "134-3.5",
        "--temp-c",
        temp,
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        *extra,
    ]


def cycle(cli: Cli, *extra: str, expect: int = 0, **kw: Any) -> dict[str, Any]:
    sterilizer = kw.pop("sterilizer", "AC1")
    out: dict[str, Any] = cli.json(*cycle_args(*extra, sterilizer=sterilizer), expect=expect, **kw)
    return out


def codes(out: dict[str, Any]) -> list[str]:
    return [r["code"] for r in out["reasons"]]


def read(
    cli: Cli, bi_id: int, result: str, at: str, control: str = "positive", **kw: Any
) -> dict[str, Any]:
    out: dict[str, Any] = cli.json(
        "bi", "read", str(bi_id), "--result", result, "--control", control, "--at", at, **kw
    )
    return out


def first_load(cli: Cli) -> dict[str, Any]:
    """Today's air-removal test and a first load carrying the weekly BI."""
    air(cli, f"{DAY2}T07:00:00Z")
    return cycle(
        cli, "--pack", "P1", "--pack", "P2", "--bi-lot", "SP-1", "--at", f"{DAY2}T07:30:00Z"
    )


# --- cycle record ------------------------------------------------------------------------------


def test_a_first_load_with_a_bi_passes_with_the_spec_json_keys(clinic: Cli) -> None:
    out = first_load(clinic)
    assert out == {
        "load_id": out["load_id"],
        "load_no": 1,
        "status": "passed",
        "bi_id": out["bi_id"],
        "sterilizer": "AC1",
        "program": "134-3.5",
        "packs": ["P1", "P2"],
        "at": f"{DAY2}T07:30:00Z",
        "failures": [],
        "test_cycle": False,
        # Recorded at 09:00 for 07:30: a late entry (issue 11) says so, with its time of record.
        "late": True,
        "recorded_at": f"{DAY2}T09:00:00Z",
    }
    assert isinstance(out["load_id"], int) and isinstance(out["bi_id"], int)


def test_a_failed_cycle_is_recorded_and_says_failed(clinic: Cli) -> None:
    first_load(clinic)
    result = clinic.ok(*cycle_args("--pack", "P3", temp="133.9"))
    assert "failed" in result.stdout
    assert "temperature 133.9 °C is below the program's 134 °C" in result.stdout
    assert result.stderr == ""
    out = cycle(clinic, "--ci", "fail", "--pack", "P3")
    assert (out["status"], out["failures"]) == ("failed", ["the chemical indicator failed"])


def test_load_numbers_count_up_per_sterilizer_and_a_taken_one_is_exit_1(clinic: Cli) -> None:
    first_load(clinic)
    assert cycle(clinic, "--pack", "P3")["load_no"] == 2
    assert cycle(clinic, "--load-no", "10")["load_no"] == 10
    assert cycle(clinic)["load_no"] == 11
    assert cycle(clinic, "--bi-lot", "SP-2", sterilizer="N1")["load_no"] == 1
    before = clinic.audit_count()
    r = clinic.fails(*cycle_args("--load-no", "10"))
    assert "load number 10 of sterilizer AC1 already exists" in r.stderr
    clinic.fails(*cycle_args("--load-no", "0"))
    assert clinic.audit_count() == before


BAD_CYCLE_INPUT = [
    (["--sterilizer", "AC9"], "unknown sterilizer 'AC9'"),
    (["--program", "nope"], "unknown program 'nope' for sterilizer AC1; its programs: "),
    (["--pack", "P9"], "unknown pack 'P9'"),
    (["--pack", "P1", "--pack", "P1"], "pack 'P1' is given twice"),
    (["--temp-c", "nan"], "--temp-c must be a finite number"),
    (["--temp-c", "inf"], "--temp-c must be a finite number"),
    (["--temp-c", "-5"], "--temp-c must be more than 0"),
    (["--temp-c", "1e9"], "--temp-c must be more than 0"),
    (["--hold-min", "-1"], "--hold-min must be at least 0"),
    (["--hold-min", "nan"], "--hold-min must be a finite number"),
    (["--bi-lot", " "], "--bi-lot must not be empty"),
    (["--at", "yesterday"], "--at 'yesterday' is not an ISO 8601 time"),
    (["--at", "2026-11-24T09:00:01Z"], "--at is in the future"),
]


def test_bad_cycle_input_is_exit_1_and_writes_nothing(clinic: Cli) -> None:
    first_load(clinic)
    before = clinic.audit_count()
    base = {
        "--sterilizer": "AC1",
        "--program": "134-3.5",
        "--temp-c": "134",
        "--hold-min": "3.5",
        "--ci": "pass",
    }
    for args, message in BAD_CYCLE_INPUT:
        argv = ["cycle", "record"]
        for key, value in base.items():
            if key not in args:
                argv += [key, value]
        r = clinic.fails(*argv, *args)
        assert message in r.stderr, (args, r.stderr)
        assert r.stdout == ""
    assert clinic.audit_count() == before


def test_a_ci_type_outside_1_to_6_is_a_usage_error(clinic: Cli) -> None:
    clinic.fails(*cycle_args("--ci-type", "7"), code=2)


def test_a_new_sterilizer_without_a_test_or_a_bi_is_blocked_with_every_reason(
    clinic: Cli,
) -> None:
    before = clinic.audit_count()
    out = cycle(clinic, "--pack", "P1", expect=3)
    assert out["decision"] == "blocked"
    assert codes(out) == ["air-removal-test-missing", "sterilizer-bi-overdue"]
    r = clinic.fails(*cycle_args("--pack", "P1"), code=3)
    assert r.stdout.startswith("BLOCKED\n")
    assert "air-removal-test-missing" in r.stdout and "sterilizer-bi-overdue" in r.stdout
    assert clinic.audit_count() == before
    assert clinic.json("cycle", "list") == {"cycles": []}


def test_a_failed_air_removal_test_blocks_until_one_passes(clinic: Cli) -> None:
    air(clinic, f"{DAY2}T07:00:00Z", "fail")
    out = cycle(clinic, "--bi-lot", "SP-1", expect=3)
    assert codes(out) == ["air-removal-test-failed"]
    air(clinic, f"{DAY2}T07:10:00Z", "pass")
    assert cycle(clinic, "--bi-lot", "SP-1")["status"] == "passed"


def test_yesterdays_air_removal_test_does_not_count_today(clinic: Cli) -> None:
    air(clinic, f"{DAY1}T23:59:59Z")
    assert codes(cycle(clinic, "--bi-lot", "SP-1", expect=3)) == ["air-removal-test-missing"]


def test_a_type_n_sterilizer_needs_no_air_removal_test(clinic: Cli) -> None:
    assert cycle(clinic, "--bi-lot", "SP-1", sterilizer="N1")["status"] == "passed"


def test_the_weekly_bi_is_overdue_exactly_seven_days_after_the_bi_load(clinic: Cli) -> None:
    air(clinic, f"{DAY1}T07:00:00Z", now=f"{DAY1}T09:00:00Z")
    out = cycle(clinic, "--bi-lot", "SP-1", "--at", f"{DAY1}T08:00:00Z", now=f"{DAY1}T09:00:00Z")
    later = "2026-11-30T09:00:00Z"
    air(clinic, "2026-11-30T07:00:00Z", now=later)
    # loads go on while the BI incubates
    cycle(clinic, "--pack", "P1", "--at", "2026-11-30T07:59:59Z", now=later)
    read(clinic, out["bi_id"], "negative", "2026-11-25T08:00:00Z", now=later)
    cycle(clinic, "--pack", "P2", "--at", "2026-11-30T07:59:59Z", now=later)
    blocked = cycle(clinic, "--pack", "P3", "--at", "2026-11-30T08:00:00Z", expect=3, now=later)
    assert codes(blocked) == ["sterilizer-bi-overdue"]
    assert (
        cycle(
            clinic, "--pack", "P3", "--bi-lot", "SP-2", "--at", "2026-11-30T08:00:00Z", now=later
        )["bi_id"]
        is not None
    )


def test_an_inspector_cannot_record_a_cycle(clinic: Cli) -> None:
    clinic.ok("staff", "add", "insp", "--name", "I", "--role", "inspector")
    before = clinic.audit_count()
    clinic.fails(*cycle_args("--bi-lot", "X"), operator="insp")
    clinic.fails(
        "air-removal", "record", "--sterilizer", "AC1", "--result", "pass", operator="insp"
    )
    assert clinic.audit_count() == before


# --- air-removal record ------------------------------------------------------------------------


def test_air_removal_record_gives_its_id_and_refuses_unknown_sterilizers(clinic: Cli) -> None:
    out = clinic.json("air-removal", "record", "--sterilizer", "AC1", "--result", "pass")
    assert out == {
        "test_id": out["test_id"],
        "sterilizer": "AC1",
        "result": "pass",
        "at": f"{DAY2}T09:00:00Z",
    }
    before = clinic.audit_count()
    assert (
        "unknown sterilizer"
        in clinic.fails("air-removal", "record", "--sterilizer", "X", "--result", "pass").stderr
    )
    clinic.fails("air-removal", "record", "--sterilizer", "AC1", "--result", "maybe", code=2)
    assert clinic.audit_count() == before


# --- BI reads ----------------------------------------------------------------------------------


def test_bi_reads_are_checked_and_an_invalid_control_changes_nothing(clinic: Cli) -> None:
    bi_id = first_load(clinic)["bi_id"]
    before = clinic.audit_count()
    r = clinic.fails(
        "bi",
        "read",
        str(bi_id),
        "--result",
        "negative",
        "--control",
        "positive",
        "--at",
        f"{DAY2}T07:29:59Z",
    )
    assert "earlier than its load" in r.stderr
    assert (
        "unknown BI 999"
        in clinic.fails("bi", "read", "999", "--result", "negative", "--control", "positive").stderr
    )
    clinic.fails("bi", "read", "abc", "--result", "negative", "--control", "positive")
    assert clinic.audit_count() == before

    r = clinic.ok(
        "bi",
        "read",
        str(bi_id),
        "--result",
        "positive",
        "--control",
        "negative",
        "--at",
        f"{DAY2}T08:00:00Z",
    )
    assert "INVALID" in r.stdout
    assert clinic.json("bi", "list", "--pending")["bis"][0]["valid"] is False
    # an invalid positive does not lock: loads go on
    assert cycle(clinic, "--pack", "P3")["status"] == "passed"

    out = read(clinic, bi_id, "negative", f"{DAY2}T08:30:00Z")
    assert out | {"read_id": 0} == {
        "bi_id": bi_id,
        "read_id": 0,
        "load_id": out["load_id"],
        "sterilizer": "AC1",
        "valid": True,
        "result": "negative",
        "control": "positive",
        "at": f"{DAY2}T08:30:00Z",
        "suspect_loads": [],
        "sessions_affected": 0,
        "locked": False,
        "requalify_remaining": 0,
        "exposure_id": None,  # a negative read opens no exposure (issue 13)
    }
    before = clinic.audit_count()
    r = clinic.fails("bi", "read", str(bi_id), "--result", "positive", "--control", "positive")
    assert "already read negative" in r.stderr
    assert clinic.audit_count() == before
    assert clinic.json("bi", "list", "--pending") == {"bis": []}
    (row,) = clinic.json("bi", "list")["bis"]
    assert row == {
        "bi_id": bi_id,
        "load_id": out["load_id"],
        "load_no": 1,
        "sterilizer": "AC1",
        "lot": "SP-1",
        "placed_at": f"{DAY2}T07:30:00Z",
        "result": "negative",
        "control": "positive",
        "valid": True,
        "read_at": f"{DAY2}T08:30:00Z",
        "read_id": row["read_id"],  # issue 14: the ID `void bi-read` takes
        "pending": False,
        "state": "negative",
        "lab": None,
        "late": False,
        "recorded_at": f"{DAY2}T09:00:00Z",
        "entered_by": "boss",
    }
    assert isinstance(row["read_id"], int)


def test_a_positive_bi_locks_marks_suspect_loads_and_a_negative_retest_releases(
    clinic: Cli,
) -> None:
    d1 = f"{DAY1}T18:00:00Z"
    air(clinic, f"{DAY1}T07:00:00Z", now=d1)
    load1 = cycle(clinic, "--pack", "P1", "--bi-lot", "SP-1", "--at", f"{DAY1}T07:30:00Z", now=d1)
    read(clinic, load1["bi_id"], "negative", f"{DAY1}T12:00:00Z", now=d1)
    load2 = cycle(clinic, "--pack", "P2", "--at", f"{DAY1}T13:00:00Z", now=d1)
    load3 = cycle(clinic, "--pack", "P3", "--bi-lot", "SP-1", "--at", f"{DAY1}T14:00:00Z", now=d1)
    air(clinic, f"{DAY2}T07:00:00Z")
    load4 = cycle(clinic, "--pack", "P1", "--at", f"{DAY2}T07:30:00Z")  # BI 2 incubating

    out = read(clinic, load3["bi_id"], "positive", f"{DAY2}T08:00:00Z")
    suspects = [load2["load_id"], load3["load_id"], load4["load_id"]]
    assert out["suspect_loads"] == suspects
    assert (out["valid"], out["locked"], out["sessions_affected"]) == (True, True, 0)
    listed = {c["load_id"]: c["suspect"] for c in clinic.json("cycle", "list")["cycles"]}
    assert listed == {load1["load_id"]: False, **dict.fromkeys(suspects, True)}

    now = f"{DAY2}T10:00:00Z"
    before = clinic.audit_count()
    blocked = cycle(clinic, "--pack", "P2", "--at", f"{DAY2}T08:30:00Z", expect=3, now=now)
    assert codes(blocked) == ["sterilizer-locked"]
    assert "locked (BI 2 read positive)" in blocked["reasons"][0]["message"]
    assert codes(cycle(clinic, "--at", f"{DAY2}T08:30:00Z", expect=3, now=now)) == [
        "sterilizer-locked"
    ]
    assert codes(cycle(clinic, "--pack", "P2", "--bi-lot", "SP-3", expect=3, now=now)) == [
        "sterilizer-locked"
    ]
    assert clinic.audit_count() == before

    retest = cycle(clinic, "--bi-lot", "SP-3", "--at", f"{DAY2}T08:30:00Z", now=now)
    assert retest["test_cycle"] is True
    r = clinic.ok(
        "bi",
        "read",
        str(retest["bi_id"]),
        "--result",
        "negative",
        "--control",
        "positive",
        "--at",
        f"{DAY2}T09:30:00Z",
        now=now,
    )
    assert "Sterilizer AC1 is released" in r.stdout
    assert cycle(clinic, "--pack", "P2", now=now)["status"] == "passed"
    # the suspect loads stay suspect after the release
    listed = {c["load_id"]: c["suspect"] for c in clinic.json("cycle", "list")["cycles"]}
    assert [k for k, v in listed.items() if v] == suspects
    assert clinic.json("audit", "verify")["ok"] is True


def test_after_a_repair_three_negative_bis_are_needed(clinic: Cli) -> None:
    bi_id = first_load(clinic)["bi_id"]
    r = clinic.ok(
        "bi",
        "read",
        str(bi_id),
        "--result",
        "positive",
        "--control",
        "positive",
        "--at",
        f"{DAY2}T08:00:00Z",
    )
    assert "LOCKED" in r.stdout and "Suspect loads:" in r.stdout
    clinic.ok(
        "sterilizer",
        "service",
        "AC1",
        "--note",
        "door seal",
        "--repair",
        "--at",
        f"{DAY2}T08:10:00Z",
    )
    for k in range(3):
        now = f"{DAY2}T1{k}:00:00Z"
        blocked = cycle(clinic, "--pack", "P3", expect=3, now=now)
        assert codes(blocked)[0] == "sterilizer-locked"
        assert f"{3 - k} more negative BI" in blocked["reasons"][0]["message"]
        test = cycle(clinic, "--bi-lot", "RQ", "--at", f"{DAY2}T1{k}:00:00Z", now=now)
        out = read(
            clinic, test["bi_id"], "negative", f"{DAY2}T1{k}:30:00Z", now=f"{DAY2}T1{k}:30:00Z"
        )
        assert (out["locked"], out["requalify_remaining"]) == (k < 2, 2 - k)
    assert cycle(clinic, "--pack", "P3", now=f"{DAY2}T13:00:00Z")["status"] == "passed"
    assert clinic.json("audit", "verify", now=f"{DAY2}T13:00:00Z")["ok"] is True


def test_a_positive_bi_counts_the_sessions_that_already_used_suspect_packs(clinic: Cli) -> None:
    clinic.ok("room", "add", "R1")
    clinic.ok("device", "add", "SN-1", "--model", "Pen")
    clinic.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    clinic.ok("cartridge", "receive", "(01)09506000134352(17)271231(10)LOTA(21)0001")
    bi_id = first_load(clinic)["bi_id"]
    clinic.ok("clean", "room", "R1", "--kind", "end-of-day", "--disinfectant", "Clinell")
    clinic.ok("clean", "device", "SN-1", "--disinfectant", "Clinell")
    clinic.ok(
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        "(01)09506000134352(17)271231(10)LOTA(21)0001",
        "--pack",
        "P1",
        "--client",
        "C-1",
    )
    out = read(clinic, bi_id, "positive", f"{DAY2}T09:00:00Z")
    assert out["sessions_affected"] == 1


# --- cycle list --------------------------------------------------------------------------------


def test_cycle_list_filters_by_sterilizer_and_clinic_days(clinic: Cli) -> None:
    now = "2026-07-02T12:00:00Z"
    # 22:30Z on 1 July is 23:30 BST on 1 July; 23:30Z is 00:30 BST on 2 July.
    air(clinic, "2026-07-01T22:00:00Z", now=now)
    air(clinic, "2026-07-01T23:10:00Z", now=now)
    a = cycle(clinic, "--bi-lot", "SP", "--at", "2026-07-01T22:30:00Z", now=now)
    b = cycle(clinic, "--pack", "P1", "--at", "2026-07-01T23:30:00Z", now=now)
    n = cycle(clinic, "--bi-lot", "SP", "--at", "2026-07-02T08:00:00Z", now=now, sterilizer="N1")

    def ids(*args: str) -> list[int]:
        return [c["load_id"] for c in clinic.json("cycle", "list", *args, now=now)["cycles"]]

    assert ids() == [a["load_id"], b["load_id"], n["load_id"]]
    assert ids("--from", "2026-07-02", "--to", "2026-07-02") == [b["load_id"], n["load_id"]]
    assert ids("--to", "2026-07-01") == [a["load_id"]]
    assert ids("--sterilizer", "N1") == [n["load_id"]]
    (row,) = clinic.json("cycle", "list", "--sterilizer", "N1", now=now)["cycles"]
    assert {
        k: row[k]
        for k in ("load_no", "sterilizer", "program", "status", "packs", "bi_id", "at", "suspect")
    } == {
        "load_no": 1,
        "sterilizer": "N1",
        "program": "134-3.5",
        "status": "passed",
        "packs": [],
        "bi_id": n["bi_id"],
        "at": "2026-07-02T08:00:00Z",
        "suspect": False,
    }
    assert (
        "--to is before --from"
        in clinic.fails("cycle", "list", "--from", "2026-07-02", "--to", "2026-07-01").stderr
    )
    clinic.fails("cycle", "list", "--from", "2026-02-30")
    clinic.fails("cycle", "list", "--sterilizer", "nope")
    text = clinic.ok("cycle", "list", now=now).stdout
    assert text.splitlines()[0].split()[:3] == ["LOAD_ID", "STERILIZER", "LOAD_NO"]


# --- the shared read functions -----------------------------------------------------------------


def test_sterilizer_state_and_suspect_functions_agree_with_the_commands(clinic: Cli) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from sterilog.compliance import facts as svc
    from sterilog.compliance import history
    from sterilog.models import Sterilizer
    from sterilog.rulepack import load_pack

    load = first_load(clinic)
    pack = load_pack("default")
    now = dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC)
    engine = clinic.engine()

    def state() -> Any:
        with Session(engine) as s:
            sid = s.execute(select(Sterilizer.id).where(Sterilizer.code == "AC1")).scalar_one()
            return history.sterilizer_state(s, sid, now, pack, ZoneInfo("Europe/London"))

    try:
        st = state()
        assert (
            st.locked,
            st.lock_reason,
            st.requalify_remaining,
            st.bi_due_at,
            st.bi_overdue,
            st.air_removal_today,
            st.air_removal_required,
        ) == (False, None, 0, dt.datetime(2026, 12, 1, 7, 30, tzinfo=dt.UTC), False, "pass", True)
        read(clinic, load["bi_id"], "positive", f"{DAY2}T08:00:00Z")
        st = state()
        assert (st.locked, st.requalify_remaining, st.bi_due_at, st.bi_overdue) == (
            True,
            1,
            None,
            True,
        )
        with Session(engine) as s:
            assert svc.suspect_load_ids(s) == {load["load_id"]}
            assert svc.suspect_load_ids(s, 999) == set()
            assert svc.is_load_suspect(s, load["load_id"])
            assert svc.suspect_loads_of_bi(s, load["bi_id"]) == [load["load_id"]]
    finally:
        engine.dispose()


def test_the_rule_packs_minimum_ci_type_is_enforced(
    empty_url: str, backend: str, tmp_path: Path
) -> None:
    from sterilog.rulepack import load_pack

    text = (
        load_pack("default")
        .text.replace('name = "default"', 'name = "strict"')
        .replace("min_type = 0", "min_type = 5")
    )
    path = tmp_path / "strict.toml"
    path.write_text(text)
    c = Cli(url=empty_url, backend=backend)
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
    c.ok("sterilizer", "add", "N1", "--model", "M", "--type", "N")
    out = c.json(*cycle_args("--bi-lot", "SP", sterilizer="N1"))
    assert (out["status"], out["failures"]) == (
        "failed",
        ["no chemical indicator type given; the rule pack requires type 5+"],
    )
    out = c.json(*cycle_args("--ci-type", "5", sterilizer="N1"))
    assert out["status"] == "passed"
