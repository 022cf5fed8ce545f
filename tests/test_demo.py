"""`sterilog demo`: a realistic month built through the real services, then its monthly PDF.

The demo runs twice in this file, both times into the same directory under the same clock: the
second run replaces the first run's database and must reproduce it exactly.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sterilog.cli import main

NOW = "2026-11-24T09:00:00+00:00"  # the demo month is then October 2026


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    full_env = {
        "STERILOG_NOW": NOW,
        "STERILOG_DB": "",
        "STERILOG_OPERATOR": "",
        "STERILOG_PIN": "",
        **(env or {}),
    }
    return CliRunner().invoke(main, list(args), env=full_env, catch_exceptions=True)


def ok_json(*args: str, env: dict[str, str] | None = None) -> Any:
    result = run("--json", *args, env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return json.loads(result.stdout)


@dataclass
class Run:
    out: dict[str, Any]
    seconds: float
    head: str
    pdf_sha256: str


@dataclass
class Demo:
    dir: Path
    decoy_db: Path
    decoy_env_db: Path
    first: Run
    second: Run

    @property
    def db(self) -> str:
        return str(self.dir / "sterilog.db")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()


def _demo_run(directory: Path, decoy_db: Path, decoy_env_db: Path) -> Run:
    started = time.monotonic()
    out = ok_json(
        "--db",
        str(decoy_db),
        "demo",
        "--dir",
        str(directory),
        env={"STERILOG_DB": str(decoy_env_db)},
    )
    seconds = time.monotonic() - started
    verify = ok_json("--db", out["db"], "audit", "verify")
    assert verify["ok"] is True and verify["problems"] == []
    pdf = Path(out["path"]).read_bytes()
    return Run(out, seconds, verify["head"], hashlib.sha256(pdf).hexdigest())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    base = tmp_path_factory.mktemp("demo")
    directory = base / "clinic-demo"  # does not exist yet: the demo creates it
    decoy_db = base / "given-with-db.db"
    decoy_env_db = base / "given-in-env.db"
    first = _demo_run(directory, decoy_db, decoy_env_db)
    second = _demo_run(directory, decoy_db, decoy_env_db)  # replaces the first database
    return Demo(directory, decoy_db, decoy_env_db, first, second)


def test_the_demo_builds_its_month_in_well_under_a_minute(demo: Demo) -> None:
    assert demo.first.seconds < 60, demo.first.seconds
    assert demo.first.out["month"] == "2026-10"


def test_the_demo_writes_sterilog_db_and_a_monthly_pdf_into_its_directory(demo: Demo) -> None:
    out = demo.second.out
    assert out["db"] == demo.db
    assert Path(out["path"]).parent == demo.dir
    assert Path(out["path"]).name == "monthly-2026-10.pdf"
    assert Path(out["path"]).read_bytes()[:5] == b"%PDF-"


def test_the_demo_ignores_db_and_sterilog_db(demo: Demo) -> None:
    assert not demo.decoy_db.exists()
    assert not demo.decoy_env_db.exists()


def test_the_demo_has_several_hundred_sessions_and_the_refusals_it_reports(demo: Demo) -> None:
    out = demo.second.out
    assert 300 <= out["sessions"] <= 450
    assert demo.query("SELECT count(*) FROM sessions") == [(out["sessions"],)]
    assert demo.query("SELECT count(*) FROM refusals") == [(out["refusals"],)]
    ended = demo.query("SELECT count(*) FROM session_ends")
    assert ended == [(out["sessions"],)]  # no session is left open


def test_refusals_include_a_reused_an_expired_cartridge_and_an_uncleaned_room(demo: Demo) -> None:
    codes: Counter[str] = Counter()
    for (reasons,) in demo.query("SELECT reasons FROM refusals"):
        codes.update(r["code"] for r in json.loads(reasons))
    assert {"cartridge-used", "room-not-cleaned", "cartridge-expired"} <= set(codes)
    assert dict(codes) == demo.second.out["refusal_codes"]


def test_the_demo_is_deterministic_under_the_same_clock(demo: Demo) -> None:
    a, b = demo.first, demo.second
    assert (a.out["sessions"], a.out["refusals"]) == (b.out["sessions"], b.out["refusals"])
    assert a.head == b.head
    assert a.pdf_sha256 == b.pdf_sha256


def test_there_is_one_positive_bi_and_its_trace_lists_affected_sessions(demo: Demo) -> None:
    bis = ok_json("--db", demo.db, "bi", "list")["bis"]
    positive = [b for b in bis if b["result"] == "positive"]
    assert len(positive) == 1
    assert all(not b["pending"] for b in bis)
    trace = ok_json("--db", demo.db, "trace", "bi", str(positive[0]["bi_id"]))
    assert trace["sessions"]
    assert len(trace["sessions"]) == demo.second.out["bi_sessions_affected"]


def test_there_is_one_recall_and_its_trace_lists_affected_sessions(demo: Demo) -> None:
    assert demo.query("SELECT count(*) FROM recalls") == [(1,)]
    recall = demo.second.out["recall"]
    trace = ok_json(
        "--db", demo.db, "trace", "lot", "--gtin", recall["gtin"], "--lot", recall["lot"]
    )
    assert len(trace["sessions"]) == recall["sessions"] > 0


def test_the_incident_is_on_a_session_and_shows_in_its_trace(demo: Demo) -> None:
    sid = demo.second.out["incident_session"]
    assert demo.query("SELECT session_id, kind FROM incidents") == [(sid, "infection")]
    text = run("--db", demo.db, "trace", "session", str(sid))
    assert text.exit_code == 0
    assert "Incident 1: infection" in text.stdout


def test_the_month_reads_as_a_complete_clinic_record(demo: Demo) -> None:
    from pypdf import PdfReader

    reader = PdfReader(demo.second.out["path"])
    first_page = reader.pages[0].extract_text()
    assert "Willow & Birch Skin Clinic" in first_page
    assert "INCOMPLETE" not in first_page
    names = {row[0] for row in demo.query("SELECT name FROM staff")}
    assert "Zoë Ångström" in names and len(names) == 4


def test_a_database_that_is_not_a_demo_is_never_replaced(tmp_path: Path) -> None:
    db = tmp_path / "sterilog.db"
    init = run(
        "--db",
        str(db),
        "init",
        "--training",
        "--clinic",
        "Real clinic",
        "--tz",
        "Europe/London",
        "--manager",
        "boss",
        "--name",
        "Boss",
    )
    assert init.exit_code == 0, init.stderr
    before = db.read_bytes()
    result = run("demo", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert "not a demo database" in result.stderr
    assert db.read_bytes() == before
    assert not list(tmp_path.glob("*.pdf"))


def test_a_demo_directory_whose_parent_is_missing_is_refused(tmp_path: Path) -> None:
    result = run("demo", "--dir", str(tmp_path / "missing" / "demo"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: directory ")
    assert "does not exist" in result.stderr
    assert not (tmp_path / "missing").exists()
