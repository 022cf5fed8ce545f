"""Issue 17: the per-client write path (`App.writing`, `session start`, `session end`) without
the ORM. What may not change with it: who may write is decided by the staff record IN FORCE now
(`staff update --role`, `staff deactivate`, `staff reinstate` are dated corrections, issue 14),
and `session start`/`session end` never import the mapped classes. Both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import Cli
from test_gate import hri, setup_clinic, start


@pytest.fixture
def clinic(cli: Cli) -> Cli:
    setup_clinic(cli)
    return cli


def _room_add(cli: Cli, room: str, operator: str, now: str | None = None) -> int:
    """A manager-only write; returns its exit code (nothing written when refused)."""
    before = cli.audit_count()
    result = cli.run("room", "add", room, operator=operator, now=now)
    if result.exit_code != 0:
        assert "Traceback" not in result.output
        assert cli.audit_count() == before
    return result.exit_code


def _clean_room(cli: Cli, operator: str, now: str | None = None) -> int:
    """A daily write (manager or practitioner); returns its exit code."""
    before = cli.audit_count()
    result = cli.run("clean", "room", "R2", "--kind", "between-clients", "--disinfectant",
                     "Clinell", operator=operator, now=now)
    if result.exit_code != 0:
        assert "Traceback" not in result.output
        assert cli.audit_count() == before
    return result.exit_code


def test_a_role_correction_changes_what_the_person_may_write(clinic: Cli) -> None:
    clinic.ok("staff", "add", "mia", "--name", "Mia", "--role", "manager")
    assert _room_add(clinic, "R5", "mia") == 0
    # Demoted by a correction: the staff row keeps "manager", the correction is in force.
    clinic.ok("staff", "update", "mia", "--role", "practitioner")
    refused = clinic.run("room", "add", "R6", operator="mia")
    assert refused.exit_code == 1 and "mia is a practitioner" in refused.stderr, refused.stderr
    assert _room_add(clinic, "R6", "mia") == 1
    assert _clean_room(clinic, "mia") == 0  # a practitioner still may clean
    clinic.ok("staff", "update", "mia", "--role", "inspector")
    assert _clean_room(clinic, "mia") == 1
    assert _room_add(clinic, "R6", "mia") == 1
    clinic.ok("staff", "update", "mia", "--role", "manager")  # and back
    assert _room_add(clinic, "R6", "mia") == 0
    # Promoted: a practitioner made manager may do a manager's writes at once.
    assert _room_add(clinic, "R7", "ann") == 1
    clinic.ok("staff", "update", "ann", "--role", "manager")
    assert _room_add(clinic, "R7", "ann") == 0
    # The per-client writes follow the role in force too.
    clinic.ok("staff", "update", "ann", "--role", "inspector")
    before = clinic.audit_count()
    r = clinic.run("--json", "session", "start", "--room", "R1", "--device", "SN-1",
                   "--cartridge", hri("LOTA", "0001"), "--client", "C-1", operator="ann")
    assert r.exit_code == 1 and "ann is a inspector" in r.stdout + r.stderr, r.output
    assert clinic.audit_count() == before
    clinic.ok("staff", "update", "ann", "--role", "practitioner")
    sid = start(clinic)["session_id"]
    clinic.ok("staff", "update", "ann", "--role", "inspector")
    before = clinic.audit_count()
    assert clinic.run("session", "end", str(sid), operator="ann").exit_code == 1
    assert clinic.audit_count() == before
    assert clinic.run("session", "end", str(sid), operator="boss").exit_code == 0
    assert clinic.json("audit", "verify")["ok"] is True


def test_deactivation_and_reinstatement_decide_who_may_write(clinic: Cli) -> None:
    # Each step a minute later: a deactivation and a reinstatement at the very same instant
    # are a tie that compliance/registers.py resolves for the reinstatement.
    times = iter(f"2026-11-24T{h:02d}:{m:02d}:00+00:00" for h in (9, 10) for m in range(60))

    def ok(*args: str) -> None:
        clinic.ok(*args, now=next(times))

    ok("staff", "add", "mia", "--name", "Mia", "--role", "manager")
    ok("staff", "deactivate", "mia", "--reason", "left")
    r = clinic.run("room", "add", "R5", operator="mia", now=next(times))
    assert r.exit_code == 1 and "has been deactivated" in r.stderr
    assert _clean_room(clinic, "mia", next(times)) == 1
    ok("staff", "reinstate", "mia")
    assert _room_add(clinic, "R5", "mia", next(times)) == 0
    ok("staff", "update", "mia", "--role", "practitioner")  # role and state together
    assert _room_add(clinic, "R6", "mia", next(times)) == 1
    assert _clean_room(clinic, "mia", next(times)) == 0
    ok("staff", "deactivate", "mia", "--reason", "left again")
    assert _clean_room(clinic, "mia", next(times)) == 1
    ok("staff", "reinstate", "mia")
    assert _clean_room(clinic, "mia", next(times)) == 0
    # The practitioner at the chair: deactivated, then reinstated.
    ok("staff", "deactivate", "ann", "--reason", "leave")
    before = clinic.audit_count()
    r = clinic.run("session", "start", "--room", "R1", "--device", "SN-1",
                   "--cartridge", hri("LOTA", "0001"), "--client", "C-1", operator="ann",
                   now=next(times))
    assert r.exit_code == 1 and "has been deactivated" in r.stderr
    assert clinic.audit_count() == before
    ok("staff", "reinstate", "ann")
    sid = start(clinic, now=next(times))["session_id"]
    ok("staff", "deactivate", "ann", "--reason", "leave again")
    assert clinic.run("session", "end", str(sid), operator="ann", now=next(times)).exit_code == 1
    ok("staff", "reinstate", "ann")
    clinic.ok("session", "end", str(sid), operator="ann", now=next(times))
    assert clinic.json("audit", "verify", now=next(times))["ok"] is True


_PROBE = """
import sys
from sterilog.cli import main
code = 0
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit as stop:
    code = stop.code
heavy = ("sterilog.models", "sterilog.compliance.history", "sterilog.compliance.cycle_rules",
         "orjson")  # orjson: only audit verify decodes the log
print("PROBE", code, sorted(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


def imported_by(cli: Cli, *args: str, operator: str = "ann") -> tuple[int, list[str]]:
    """Run one command in a fresh interpreter: its exit code and which heavy modules it loaded
    (the mapped classes, the as-of-a-time history, the cycle rules)."""
    code, mods, _ = probe(cli, *args, operator=operator)
    return code, mods


def probe(cli: Cli, *args: str, operator: str = "ann") -> tuple[int, list[str], str]:
    """`imported_by`, and what the command printed on stdout."""
    env = {**os.environ, "STERILOG_NOW": cli.now, "STERILOG_DB": "", "STERILOG_PIN": "",
           "STERILOG_OPERATOR": ""}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "--db", cli.url, "--operator", operator, *args],
        capture_output=True, text=True, env=env, check=False,
    )
    line = [x for x in out.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, out.stdout + out.stderr
    _, code, mods = line[-1].split(" ", 2)
    return int(code or 0), json.loads(mods.replace("'", '"')), out.stdout


def test_the_check_imports_no_models_even_with_corrections_in_force(clinic: Cli) -> None:
    # The in-force staff and device facts (issue 14's corrections) are read in plain SQL.
    clinic.ok("staff", "update", "ann", "--license", "PR-2")
    clinic.ok("device", "update", "SN-1", "--max-depth-mm", "2.4")
    go = ("check", "--room", "R1", "--device", "SN-1", "--cartridge", hri("LOTA", "0001"),
          "--pack", "P1")
    assert imported_by(clinic, *go) == (0, [])
    clinic.ok("staff", "update", "ann", "--role", "inspector")
    code, mods = imported_by(clinic, *go)
    assert code == 3 and "sterilog.models" not in mods, mods  # blocked: not a practitioner now


def test_session_start_and_end_import_no_models(clinic: Cli) -> None:
    """The per-client writes insert with Core (sterilog/tables.py) and chain their audit entry
    without loading the mapped classes; the entries still record what the database holds."""
    begin = ("session", "start", "--room", "R1", "--device", "SN-1", "--client", "C-1",
             "--pack", "P1", "--cartridge")
    code, mods, out = probe(clinic, *begin, hri("LOTA", "0001"))
    assert (code, mods) == (0, []), out
    sid = int(out.split("GO: session ", 1)[1].split()[0])
    code, mods, out = probe(clinic, "session", "end", str(sid), "--note", "fine")
    assert (code, mods) == (0, []), out
    # refused (the same unit again, room and device not cleaned): a refusal is recorded
    code, mods, out = probe(clinic, *begin, hri("LOTA", "0001"))
    assert code == 3 and "sterilog.models" not in mods, (mods, out)
    assert "refusal 1 recorded" in out
    # a wrong end (already ended) writes nothing
    before = clinic.audit_count()
    code, mods, _ = probe(clinic, "session", "end", str(sid))
    assert code == 1 and "sterilog.models" not in mods
    assert clinic.audit_count() == before
    # What the entries recorded is what the rows hold: audit verify compares every row.
    assert clinic.json("audit", "verify")["ok"] is True
    log = clinic.json("audit", "log", "--limit", "3")["entries"]
    assert [e["action"] for e in log] == ["session.start", "session.end", "session.refused"]
    (listed,) = clinic.json("session", "list")["sessions"]
    assert (listed["session_id"], listed["client"], listed["ended_at"]) == (
        sid, "C-1", "2026-11-24T09:00:00Z"
    )
