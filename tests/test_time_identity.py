"""Time and identity an inspector can trust (issue 11), on both backends.

Live vs training databases, the clock of record, clock anomalies, late entries, signatures
bound to the month, PINs with lockout and the practitioner's own PIN.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from sqlalchemy import text
from test_gate import hri, setup_clinic, start

import sterilog.clock

PIN = "2468"


def live(url: str, backend: str) -> Cli:
    """A live clinic database (no STERILOG_NOW anywhere), manager boss with PIN 2468."""
    c = Cli(url=url, backend=backend, training=False, now="")
    c.env = {"STERILOG_PIN": PIN, "STERILOG_NEW_PIN": PIN}
    c.ok("init", "--tz", "Europe/London", "--manager", "boss", "--name", "Boss", operator=False)
    return c


def query(cli: Cli, sql: str) -> list[Any]:
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(path.read_bytes())).pages)


def as_utc(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# --- 1. live and training databases --------------------------------------------------------------


def test_sterilog_now_is_refused_on_a_live_database(empty_url: str, backend: str) -> None:
    c = live(empty_url, backend)
    assert c.json("status")["training"] is False
    assert c.json("audit", "verify")["training"] is False
    drill = "2026-11-24T09:00:00+00:00"
    before = c.audit_count()
    for args in (
        ("status",),
        ("room", "add", "R1"),
        ("audit", "verify"),
        ("room", "list"),
        ("db", "upgrade"),
        ("init", "--manager", "x", "--name", "X"),
    ):
        r = c.fails(*args, now=drill)
        assert "live clinic database whose clock cannot be replaced" in r.stderr, args
        assert "init --training" in r.stderr, args
    assert c.audit_count() == before  # nothing was written
    c.ok("room", "add", "R1")  # the system clock works


def test_a_live_init_with_sterilog_now_is_refused(empty_url: str, backend: str) -> None:
    c = Cli(url=empty_url, backend=backend, training=False)
    c.env = {"STERILOG_NEW_PIN": PIN}
    r = c.fails("init", "--manager", "boss", "--name", "Boss", operator=False)
    assert "live clinic database" in r.stderr and "init --training" in r.stderr


def test_sterilog_now_works_on_a_training_database_and_its_pdfs_say_so(
    cli: Cli, tmp_path: Path
) -> None:
    assert cli.json("status")["training"] is True
    assert cli.json("audit", "verify")["training"] is True
    cli.ok("room", "add", "R1", now="2026-11-20T09:00:00+00:00")
    out = tmp_path / "m.pdf"
    cli.ok("report", "monthly", "--month", "2026-11", "-o", str(out))
    from pypdf import PdfReader

    pages = PdfReader(str(out)).pages
    assert len(pages) > 1
    for page in pages:
        assert "TRAINING \u2014 NOT A CLINICAL RECORD" in page.extract_text()


def test_a_live_databases_pdfs_carry_no_training_mark(empty_url: str, backend: str,
                                                     tmp_path: Path) -> None:  # fmt: skip
    c = live(empty_url, backend)
    out = tmp_path / "a.pdf"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    c.ok("report", "audit", "--from", today, "--to", today, "-o", str(out))
    assert "TRAINING" not in pdf_text(out)


# --- 2. the clock of record ----------------------------------------------------------------------


def test_a_terminal_with_a_wrong_clock_records_the_clock_of_record(
    empty_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS clock of this process is 5 hours slow. PostgreSQL: every time of record is the
    server's. SQLite has no server: the system clock is the clock of record."""
    c = live(empty_url, backend)
    real = dt.datetime.now(dt.UTC)
    monkeypatch.setattr(sterilog.clock, "system_now", lambda: real - dt.timedelta(hours=5))
    c.ok("room", "add", "R1")
    c.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    # An --at half an hour ago is in the future for the slow terminal; the server says it is not.
    at = (real - dt.timedelta(minutes=30)).isoformat()
    r = c.run("--json", "clean", "room", "R1", "--kind", "end-of-day", "--disinfectant",
              "Clinell", "--at", at)  # fmt: skip
    entry = c.json("audit", "log", "--limit", "1")["entries"][0]
    (recorded,) = query(c, "SELECT recorded_at FROM rooms")[0]
    if backend == "postgresql":
        assert r.exit_code == 0, r.output
        assert "late" not in json.loads(r.stdout)
        assert entry["clock"] == "database"
        assert abs(as_utc(entry["at"]) - real) < dt.timedelta(minutes=2)
        assert abs(as_utc(recorded) - real) < dt.timedelta(minutes=2)
    else:
        assert r.exit_code == 1 and "--at is in the future" in r.stderr
        assert entry["clock"] == "system"
        assert abs(as_utc(entry["at"]) - (real - dt.timedelta(hours=5))) < dt.timedelta(minutes=2)
        assert abs(as_utc(recorded) - (real - dt.timedelta(hours=5))) < dt.timedelta(minutes=2)


# --- 3. clock anomalies --------------------------------------------------------------------------


def test_an_os_clock_moved_back_is_a_clock_anomaly(
    empty_url: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = live(empty_url, backend)
    real = dt.datetime.now(dt.UTC)
    monkeypatch.setattr(sterilog.clock, "system_now", lambda: real)
    c.ok("room", "add", "R1")
    monkeypatch.setattr(sterilog.clock, "system_now", lambda: real - dt.timedelta(hours=2))
    c.ok("room", "add", "R2")
    monkeypatch.setattr(sterilog.clock, "system_now", lambda: real)
    out = c.json("audit", "verify")
    assert out["ok"] is True  # the chain is intact: exit 0
    if backend == "postgresql":
        assert out["clock_anomalies"] == []  # the server's clock was used, not the terminal's
        return
    seq = c.audit_count()
    assert [a["seq"] for a in out["clock_anomalies"]] == [seq]
    assert "moved back" in out["clock_anomalies"][0]["message"]
    status = c.json("status")
    assert [a["seq"] for a in status["clock_anomalies"]] == [seq]
    assert f"audit #{seq}" in c.ok("status").stdout


def test_a_clock_moved_back_or_ahead_on_a_training_database_is_an_anomaly(
    cli: Cli, tmp_path: Path
) -> None:
    cli.ok("room", "add", "R1", now="2026-11-24T12:00:00+00:00")
    cli.ok("room", "add", "R2", now="2026-11-24T11:50:00+00:00")  # 10 min back
    cli.ok("room", "add", "R3", now="2026-11-24T11:58:00+00:00")  # forward again: fine
    cli.ok("room", "add", "R4", now="2026-11-24T11:56:00+00:00")  # 2 min back: tolerated
    back = cli.audit_count() - 2
    out = cli.json("audit", "verify", now="2026-11-24T12:30:00+00:00")
    assert out["ok"] is True
    assert [a["seq"] for a in out["clock_anomalies"]] == [back]
    # The verifier's clock an hour earlier: every entry after it is "from the future".
    out = cli.json("audit", "verify", now="2026-11-24T11:00:00+00:00")
    future = [a["seq"] for a in out["clock_anomalies"] if "verifier" in a["message"]]
    assert future == list(range(back - 1, back + 3))
    report = tmp_path / "m.pdf"
    cli.ok("report", "monthly", "--month", "2026-11", "-o", str(report),
           now="2026-12-01T09:00:00+00:00")  # fmt: skip
    content = pdf_text(report)
    assert "Clock anomalies" in content and "1 audit entry out of time order" in content


# --- 4. late entries -----------------------------------------------------------------------------


def test_a_late_clean_is_marked_everywhere_and_counted(cli: Cli, tmp_path: Path) -> None:
    setup_clinic(cli)

    def clean_both(at: str, now: str) -> Any:
        cli.ok("clean", "room", "R2", "--kind", "between-clients", "--disinfectant", "Clinell",
               "--at", at, now=now)  # fmt: skip
        return cli.run("--json", "clean", "device", "SN-2", "--disinfectant", "Clinell",
                       "--at", at, now=now)  # fmt: skip

    clean_both("2026-11-24T09:55:00+00:00", "2026-11-24T09:56:00+00:00")
    start(cli, room="R2", device="SN-2", packs=("P1",), now="2026-11-24T10:00:00+00:00")
    cli.ok("session", "end", "1", operator="ann", now="2026-11-24T10:40:00+00:00")
    clean_both("2026-11-24T10:45:00+00:00", "2026-11-24T10:46:00+00:00")  # cleans 3
    start(cli, room="R2", device="SN-2", packs=("P2",), scan=hri("LOTA", "0002"),
          now="2026-11-24T11:00:00+00:00")  # fmt: skip
    # The cleans before session 2 were of the wrong room: voided. Two days later someone
    # enters cleans "at 10:50": without them session 2 would be a gap.
    cli.ok("void", "room-clean", "3", "--reason", "wrong room", now="2026-11-26T08:00:00+00:00")
    cli.ok("void", "device-clean", "3", "--reason", "wrong pen", now="2026-11-26T08:00:00+00:00")
    late = "2026-11-26T09:00:00+00:00"
    r = cli.ok("clean", "room", "R2", "--kind", "between-clients", "--disinfectant", "Clinell",
               "--at", "2026-11-24T10:50:00+00:00", now=late)  # fmt: skip
    assert "Late entry" in r.stdout and "2026-11-26" in r.stdout
    r = cli.run("--json", "clean", "device", "SN-2", "--disinfectant", "Clinell",
                "--at", "2026-11-24T10:50:00+00:00", now=late)  # fmt: skip
    row = json.loads(r.stdout)
    assert row["late"] is True and row["recorded_at"] == "2026-11-26T09:00:00Z"
    on_time = cli.json("clean", "room", "R1", "--kind", "end-of-day", "--disinfectant",
                       "Clinell", "--at", "2026-11-26T08:30:00+00:00", now=late)  # fmt: skip
    assert "late" not in on_time  # 30 min: within the rule pack's 60
    out = tmp_path / "m.pdf"
    cli.ok("report", "monthly", "--month", "2026-11", "-o", str(out),
           now="2026-12-01T09:00:00+00:00")  # fmt: skip
    content = " ".join(pdf_text(out).split())
    assert content.count("LATE ENTRY: entered 2026-11-26 09:00 by Boss Manager") == 2
    # setup_clinic's 07:00 air-removal test and 07:30 cycle were entered at 09:00: late too.
    assert "4 late entries" in content
    assert "Air-removal tests 1 Cleaning 2 Sterilization 1" in content
    assert "Late entries that close what would otherwise be a gap" in content
    assert "room_cleans #4" in content and "device_cleans #4" in content
    assert "room_cleans #5" not in content  # the on-time clean is not late
    # The trace of session 2 (JSON and PDF) shows the late cleans that preceded it.
    detail = cli.json("trace", "session", "2", now="2026-12-01T09:00:00+00:00")["detail"][0]
    for part in (detail["device"], detail["room_detail"]):
        seen = part["last_clean"]
        assert (seen["late"], seen["recorded_at"]) == (True, "2026-11-26T09:00:00Z")
    trace_pdf = tmp_path / "trace.pdf"
    cli.ok("report", "trace", "session", "2", "-o", str(trace_pdf),
           now="2026-12-01T09:00:00+00:00")  # fmt: skip
    assert " ".join(pdf_text(trace_pdf).split()).count("LATE ENTRY: entered 2026-11-26 09:00") == 2
    # The machine-readable export marks the same rows, and only those.
    path = tmp_path / "export.json"
    cli.ok("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json",
           "-o", str(path), now="2026-12-01T09:00:00+00:00")  # fmt: skip
    exported = json.loads(path.read_text(encoding="utf-8"))
    late_cleans = [(r["id"], r["recorded_at"]) for r in exported["room_cleans"] if r["late"]]
    assert late_cleans == [(4, "2026-11-26T09:00:00Z")]
    assert [r["id"] for r in exported["device_cleans"] if r["late"]] == [4]
    assert all(r["late"] is False for r in exported["sessions"])


def test_late_entry_minutes_comes_from_the_rule_pack(empty_url: str, backend: str,
                                                     tmp_path: Path) -> None:  # fmt: skip
    from sterilog.rulepack import load_pack

    pack = load_pack("default").text.replace('name = "default"', 'name = "strict"')
    pack = pack.replace("late_entry_minutes = 60", "late_entry_minutes = 10")
    path = tmp_path / "strict.toml"
    path.write_text(pack)
    c = Cli(url=empty_url, backend=backend)
    c.ok("init", "--rules", str(path), "--manager", "boss", "--name", "B", operator=False)
    c.ok("room", "add", "R1")
    c.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    out = c.json("clean", "room", "R1", "--kind", "end-of-day", "--disinfectant", "Clinell",
                 "--at", "2026-11-24T08:45:00+00:00")  # fmt: skip
    assert out["late"] is True  # 15 minutes > 10


# --- 5. signatures bound to the month ------------------------------------------------------------


@pytest.mark.slow
def test_a_record_added_or_voided_after_sign_shows_on_the_report(cli: Cli, tmp_path: Path) -> None:
    cli.ok("room", "add", "R1")
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    cli.ok("clean", "room", "R1", "--kind", "end-of-day", "--disinfectant", "Clinell",
           "--at", "2026-11-23T18:00:00+00:00")  # fmt: skip
    cli.ok("sign", "2026-11", "--meaning", "reviewed")
    out = tmp_path / "m.pdf"

    def report() -> str:
        cli.ok("report", "monthly", "--month", "2026-11", "-o", str(out), "--force")
        return pdf_text(out)

    assert "month unchanged since this signature" in report()
    cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
           "--at", "2026-11-24T08:30:00+00:00")  # fmt: skip
    content = report()
    assert "changed since signature #1" in content
    assert "added after it: room_cleans #2" in content
    cli.ok("sign", "2026-11", "--meaning", "approved")
    content = report()
    assert "changed since signature #1" in content
    assert "month unchanged since this signature" in content  # signature 2
    cli.ok("void", "room-clean", "1", "--reason", "wrong room")
    content = report()
    assert "changed since signature #2" in content and "voided after it: room_cleans #1" in content
    (digest,) = query(cli, "SELECT digest FROM signatures ORDER BY id LIMIT 1")[0]
    assert digest.startswith("sha256:") and len(digest) == 71
    assert cli.json("audit", "verify")["ok"] is True


def test_signing_a_month_that_has_not_started_is_exit_1(cli: Cli) -> None:
    before = cli.audit_count()
    r = cli.fails("sign", "2026-12", "--meaning", "approved")
    assert "has not started" in r.stderr
    assert cli.audit_count() == before
    cli.ok("sign", "2026-11", "--meaning", "approved")  # the current month may be signed


# --- 6. PINs -------------------------------------------------------------------------------------


def test_a_live_database_needs_manager_pins(empty_url: str, backend: str) -> None:
    c = Cli(url=empty_url, backend=backend, training=False, now="")
    r = c.fails("init", "--manager", "boss", "--name", "Boss", operator=False)
    assert "needs a PIN" in r.stderr and "STERILOG_NEW_PIN" in r.stderr
    c.env = {"STERILOG_NEW_PIN": PIN, "STERILOG_PIN": PIN}
    c.ok("init", "--manager", "boss", "--name", "Boss", operator=False)
    r = c.fails("room", "add", "R1", env={"STERILOG_PIN": ""})  # the first manager has one
    assert "boss has a PIN" in r.stderr
    r = c.fails("staff", "add", "m2", "--name", "M2", "--role", "manager")
    assert "every manager of a live database has a PIN" in r.stderr
    c.ok("staff", "add", "m2", "--name", "M2", "--role", "manager", "--pin")
    c.ok("staff", "add", "pat", "--name", "Pat", "--role", "practitioner")  # no PIN: fine
    assert c.json("status")["managers_without_pin"] == []
    # A PIN-less manager of an upgraded database keeps working and is listed until they set one.
    with c.engine().begin() as conn:
        conn.execute(text(
            "INSERT INTO staff (code, name, role, recorded_at) "
            "VALUES ('old', 'Old', 'manager', '2026-01-01 00:00:00.000000')"
        ))  # fmt: skip
    assert c.json("status")["managers_without_pin"] == ["old"]
    c.ok("staff", "pin", "old", operator="old", env={"STERILOG_NEW_PIN": "9753"})
    assert c.json("status")["managers_without_pin"] == []


def test_lockout_after_five_wrong_pins_and_unlock(cli: Cli) -> None:
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner", "--pin",
           env={"STERILOG_NEW_PIN": "4821"})  # fmt: skip
    right, wrong = {"STERILOG_PIN": "4821"}, {"STERILOG_PIN": "0000"}
    # Four wrong, then a right one: the count restarts.
    for _ in range(4):
        cli.fails("pack", "add", "P0", "--contents", "x", operator="ann", env=wrong)
    cli.ok("pack", "add", "P1", "--contents", "x", operator="ann", env=right)
    for n in range(5):
        r = cli.fails("pack", "add", "P2", "--contents", "x", operator="ann", env=wrong)
        assert ("locked" in r.stderr) == (n == 4), (n, r.stderr)
    r = cli.fails("pack", "add", "P2", "--contents", "x", operator="ann", env=right)
    assert "ann is locked" in r.stderr and "sterilog staff unlock ann" in r.stderr
    assert cli.json("status")["locked_staff"] == ["ann"]
    assert "LOCKED" in cli.ok("status").stdout
    r = cli.fails("staff", "unlock", "ann", operator="ann", env=right)
    assert "may not" in r.stderr or "locked" in r.stderr
    cli.ok("staff", "unlock", "ann")
    assert cli.json("status")["locked_staff"] == []
    cli.ok("pack", "add", "P2", "--contents", "x", operator="ann", env=right)
    actions = [a for (a,) in query(cli, "SELECT action FROM audit_log ORDER BY seq")]
    assert actions.count("auth.failed") == 9 and "staff.unlock" in actions
    logged = json.dumps([r for (r,) in query(cli, "SELECT records FROM audit_log")])
    assert "4821" not in logged and "0000" not in logged and "scrypt$" not in logged
    assert cli.json("audit", "verify")["ok"] is True


def test_lockout_attempts_come_from_the_rule_pack(empty_url: str, backend: str,
                                                  tmp_path: Path) -> None:  # fmt: skip
    from sterilog.rulepack import load_pack

    pack = load_pack("default").text.replace('name = "default"', 'name = "strict"')
    path = tmp_path / "strict.toml"
    path.write_text(pack.replace("pin_lockout_attempts = 5", "pin_lockout_attempts = 2"))
    c = Cli(url=empty_url, backend=backend)
    c.ok("init", "--rules", str(path), "--manager", "boss", "--name", "B", operator=False)
    c.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner", "--pin",
         env={"STERILOG_NEW_PIN": "4821"})  # fmt: skip
    for _ in range(2):
        c.fails("pack", "add", "P0", "--contents", "x", operator="ann",
                env={"STERILOG_PIN": "0000"})  # fmt: skip
    r = c.fails("pack", "add", "P0", "--contents", "x", operator="ann",
                env={"STERILOG_PIN": "4821"})  # fmt: skip
    assert "locked" in r.stderr


def test_staff_pin_own_needs_the_old_one_and_a_manager_may_reset(cli: Cli) -> None:
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner", "--pin",
           env={"STERILOG_NEW_PIN": "4821"})  # fmt: skip
    cli.ok("staff", "add", "bob", "--name", "Bob", "--role", "practitioner")
    r = cli.fails("staff", "pin", "ann", operator="ann",
                  env={"STERILOG_PIN": "1111", "STERILOG_NEW_PIN": "5555"})  # fmt: skip
    assert "wrong PIN for ann" in r.stderr
    r = cli.fails("staff", "pin", "bob", operator="ann",
                  env={"STERILOG_PIN": "4821", "STERILOG_NEW_PIN": "5555"})  # fmt: skip
    assert "may not" in r.stderr
    out = cli.ok("staff", "pin", "ann", operator="ann",
                 env={"STERILOG_PIN": "4821", "STERILOG_NEW_PIN": "5555"})  # fmt: skip
    assert "5555" not in out.output and "4821" not in out.output
    cli.fails("pack", "add", "P1", "--contents", "x", operator="ann", env={"STERILOG_PIN": "4821"})
    cli.ok("pack", "add", "P1", "--contents", "x", operator="ann", env={"STERILOG_PIN": "5555"})
    cli.ok("staff", "pin", "ann", env={"STERILOG_NEW_PIN": "7777"})  # boss resets it
    cli.ok("pack", "add", "P2", "--contents", "x", operator="ann", env={"STERILOG_PIN": "7777"})
    actions = [a for (a,) in query(cli, "SELECT action FROM audit_log ORDER BY seq")]
    assert actions.count("staff.pin") == 2
    # Every text the log holds, but the SHA-256 digests it records secrets as: a random
    # 64-digit hex digest holds "5555" now and then (this test failed once that way).
    texts = [
        v
        for (records,) in query(cli, "SELECT records FROM audit_log")
        for v in _strings(json.loads(records))
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", v)
    ]
    assert texts and all(p not in t for t in texts for p in ("4821", "5555", "7777", "scrypt$"))
    pin_hashes = [
        item["content"]["pin_hash"]
        for (records,) in query(cli, "SELECT records FROM audit_log")
        for item in json.loads(records)
        if "pin_hash" in item.get("content", {})
    ]
    assert pin_hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin_hashes if h)
    assert cli.json("audit", "verify")["ok"] is True


def _strings(value: Any) -> list[str]:
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_practitioner_needs_their_own_pin(cli: Cli) -> None:
    setup_clinic(cli)
    cli.ok("staff", "add", "pat", "--name", "Pat", "--role", "practitioner", "--license", "PR-2",
           "--license-expires", "2027-06-30", "--pin",
           env={"STERILOG_NEW_PIN": "8642"})  # fmt: skip
    before = cli.audit_count()
    r = cli.fails("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                  hri("LOTA", "0001"), "--pack", "P1", "--client", "C-1",
                  "--practitioner", "pat", operator="ann")  # fmt: skip
    assert "pat has a PIN" in r.stderr and "STERILOG_PRACTITIONER_PIN" in r.stderr
    r = cli.fails("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                  hri("LOTA", "0001"), "--pack", "P1", "--client", "C-1",
                  "--practitioner", "pat", operator="ann",
                  env={"STERILOG_PRACTITIONER_PIN": "1111"})  # fmt: skip
    assert "wrong PIN for pat" in r.stderr
    assert query(cli, "SELECT count(*) FROM sessions")[0][0] == 0
    assert query(cli, "SELECT count(*) FROM refusals")[0][0] == 0
    assert cli.audit_count() == before + 2  # the two failed attempts only
    out = cli.json("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                   hri("LOTA", "0001"), "--pack", "P1", "--client", "C-1",
                   "--practitioner", "pat", operator="ann",
                   env={"STERILOG_PRACTITIONER_PIN": "8642"})  # fmt: skip
    assert out["decision"] == "go"
    (who,) = query(cli, "SELECT s.code FROM sessions JOIN staff s ON s.id = practitioner_id")[0]
    assert who == "pat"


# --- upgrading a database from before revision 0002 ---------------------------------------------


def test_a_database_from_before_0002_is_live_and_still_verifies_after_upgrade(
    empty_url: str, backend: str
) -> None:
    from sterilog import migrate
    from sterilog.db import make_engine, resolve_url

    c = live(empty_url, backend)
    c.ok("room", "add", "R1")
    engine = make_engine(resolve_url(c.url))
    try:
        migrate.downgrade(engine, "0001")
    finally:
        engine.dispose()
    r = c.fails("status")
    assert "run `sterilog db upgrade`" in r.stderr
    r = c.fails("status", now="2026-11-24T09:00:00+00:00")  # no flag yet: live
    assert "live clinic database" in r.stderr
    c.ok("db", "upgrade")
    assert c.json("status")["training"] is False
    assert c.json("audit", "verify")["ok"] is True


def test_only_columns_added_later_with_their_default_are_tolerated() -> None:
    from sterilog.audit import _only_added_columns

    recorded = {"id": 1, "clinic_name": "X"}
    assert _only_added_columns("settings", {**recorded, "training": False}, recorded)
    assert not _only_added_columns("settings", {**recorded, "training": True}, recorded)
    assert not _only_added_columns("settings", {"id": 1, "clinic_name": "Y", "training": False},
                                   recorded)  # fmt: skip
    assert not _only_added_columns("rooms", {**recorded, "training": False}, recorded)
    sig = {"id": 1, "month": "2026-11"}
    assert _only_added_columns("signatures", {**sig, "digest": None, "marks": None}, sig)
    assert not _only_added_columns("signatures", {**sig, "digest": "sha256:x", "marks": None}, sig)
