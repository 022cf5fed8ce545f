"""The benchmark's instruments (bench/): no timing is asserted here, only that they work.

The generator must make valid history (the audit chain verifies, nothing is due) that leaves the
advertised gate command GO; `bench/run.py --json` must print one object with every SPEC §10 key.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

KEYS = (
    "check_floor_ratio",
    "check_history_ratio",
    "report_canvas_ratio",
    "report_linearity",
    "verify_entries_per_second",
    "report_peak_rss_mb",
    "verify_peak_rss_mb",
    "session_start_floor_ratio",
    "session_end_floor_ratio",
    "status_floor_ratio",
    "terminal_decision_ms",
    "terminal_history_ratio",
)


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("STERILOG_DB", "STERILOG_OPERATOR", "STERILOG_PIN", "STERILOG_NOW")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=_env(**env), capture_output=True, text=True,
        timeout=900,  # a hang guard, not a speed check: a loaded 2-core box took 140 s
    )


def _sterilog(db: Path, now: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _run("-m", "sterilog", "--db", str(db), *args, STERILOG_NOW=now)


def _generate(tmp_path: Path, *args: str) -> tuple[Path, dict[str, Any]]:
    db = tmp_path / "bench.db"
    done = _run(str(BENCH / "generate.py"), "--db", str(db), "--quiet", *args)
    assert done.returncode == 0, done.stderr
    side = json.loads((tmp_path / "bench.db.bench.json").read_text())
    assert json.loads(done.stdout.strip().splitlines()[-1])["entries"] == side["entries"]
    return db, side


def test_generated_history_verifies_and_its_gate_command_is_go(tmp_path: Path) -> None:
    db, side = _generate(tmp_path, "--sessions", "200", "--per-day", "40", "--seed", "3")
    assert side["sessions"] == 200
    assert side["refusals"] >= 0
    now = side["now"]

    verify = _sterilog(db, now, "--json", "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    result = json.loads(verify.stdout)
    assert result["ok"] is True
    assert result["problems"] == []
    assert result["entries"] == side["entries"]

    check = _sterilog(db, now, "--operator", side["operator"], "--json", *side["command"])
    assert check.returncode == 0, check.stdout + check.stderr
    decision = json.loads(check.stdout)
    assert decision["decision"] == "go"
    assert decision["reasons"] == []
    assert "--cartridge" in side["command"] and "--pack" in side["command"]

    status = _sterilog(db, now, "--json", "status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["items"] == []

    sessions = _sterilog(db, now, "--json", "session", "list", "--date", side["last_day"])
    assert sessions.returncode == 0, sessions.stderr
    assert len(json.loads(sessions.stdout)["sessions"]) == 40


def test_a_busy_month_puts_every_session_in_that_month(tmp_path: Path) -> None:
    db, side = _generate(tmp_path, "--sessions", "93", "--month", "2026-02")
    assert (side["first_day"], side["last_day"]) == ("2026-02-01", "2026-02-28")
    verify = _sterilog(db, side["now"], "--json", "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_generator_refuses_an_existing_database(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    db.write_bytes(b"")
    done = _run(str(BENCH / "generate.py"), "--db", str(db), "--sessions", "5", "--quiet")
    assert done.returncode != 0
    assert "exists" in done.stderr
    assert db.read_bytes() == b""


@pytest.mark.slow
def test_run_json_prints_one_object_with_every_spec_key(tmp_path: Path) -> None:
    done = _run(str(BENCH / "run.py"), "--smoke", "--json", "--cache", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    for key in KEYS:
        assert key in doc, key
        value = doc[key]
        assert value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    assert isinstance(doc["notes"], list)
    # the tiny histories are valid and their gate command is GO, so these are measured
    assert doc["check_floor_ratio"] is not None, doc["notes"]
    assert doc["check_history_ratio"] is not None, doc["notes"]
    assert doc["verify_entries_per_second"] is not None, doc["notes"]
    # a fresh unit per run: every session start is GO, every terminal verdict is GO
    for key in ("session_start_floor_ratio", "session_end_floor_ratio", "status_floor_ratio",
                "terminal_decision_ms", "terminal_history_ratio"):
        assert doc[key] is not None, (key, doc["notes"])
    assert doc["series"]["terminal_large"]["n"] >= 1


def test_a_history_with_an_incident_generates_and_verifies(tmp_path: Path) -> None:
    """Seed 14 draws an incident within 300 sessions (1 in 5 000): its row has every column
    of the incidents table (room, device and staff are None for a client session's one)."""
    db, side = _generate(tmp_path, "--sessions", "300", "--seed", "14")
    verify = _sterilog(db, side["now"], "--json", "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    import sqlite3

    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] >= 1
