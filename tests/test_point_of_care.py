"""Issue 14: the way into the gate cannot be fooled (text, scans, numbers, times), on both
backends. Each test fails on the code before issue 14."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import Cli
from test_gate import GTIN, clean, hri, setup_clinic, start


@pytest.fixture
def clinic(cli: Cli) -> Cli:
    setup_clinic(cli)
    return cli


# --- point 2: text that means one thing ----------------------------------------------------


def test_decomposed_and_composed_client_references_are_one_client(clinic: Cli) -> None:
    sid = start(clinic, client="Zoe\u0308-1")["session_id"]  # as macOS copy-paste gives it
    traced = clinic.json("trace", "client", "Zo\u00eb-1")
    assert [s["session_id"] for s in traced["sessions"]] == [sid]
    (s,) = clinic.json("session", "list")["sessions"]
    assert s["client"] == "Zo\u00eb-1"


@pytest.mark.parametrize("odd", ["\u00a0", "\u2007", "\u200b", "\u2060", "\u3000"])
def test_space_like_and_invisible_characters_are_refused(clinic: Cli, odd: str) -> None:
    before = clinic.audit_count()
    r = clinic.fails("disinfectant", "add", f"Clinell{odd}Universal", "--contact-min", "1")
    assert "U+" in r.stderr
    clinic.fails("staff", "add", "bob", "--name", f"Bob{odd}Smith", "--role", "practitioner")
    assert clinic.audit_count() == before
    clinic.ok("disinfectant", "add", "Clinell Universal", "--contact-min", "1")


def test_non_utf8_bytes_in_an_argument_are_exit_1_not_a_traceback(clinic: Cli) -> None:
    before = clinic.audit_count()
    # A Latin-1 "é" (0xE9) reaches Python as the lone surrogate U+DCE9 (surrogateescape).
    r = clinic.fails("room", "add", "Salle-\udce9")
    assert "not valid UTF-8" in r.stderr
    r = clinic.fails("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                     hri("LOTA", "0001"), "--client", "Ren\udce9", operator="ann")
    assert "not valid UTF-8" in r.stderr
    r = clinic.fails("status", operator="ann\udce9")
    assert "not valid UTF-8" in r.stderr
    assert clinic.audit_count() == before
    assert clinic.json("session", "list")["sessions"] == []


# --- point 1: scans that cannot smuggle a lot ------------------------------------------------

GS = "\x1d"


def _raw(lot_and_rest: str) -> str:
    return f"]d201{GTIN}17271231" + lot_and_rest


def test_a_scan_without_gs_cannot_smuggle_a_serial_into_the_lot(clinic: Cli) -> None:
    before = clinic.audit_count()
    r = clinic.fails("cartridge", "receive", _raw("10A1B3210002"), "--supplier", "Acme")
    assert "not ended by a GS separator" in r.stderr
    assert "settings scanner-gs" in r.stderr and "scanner test" in r.stderr
    r = clinic.fails("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                     _raw("10LOTA210001"), "--client", "C-1", operator="ann")
    assert "not ended by a GS separator" in r.stderr
    assert clinic.audit_count() == before


def test_the_scanner_substitute_can_be_set_after_init_audited(clinic: Cli) -> None:
    before = clinic.audit_count()
    r = clinic.run("settings", "scanner-gs", "~", operator="ann")  # a practitioner
    assert r.exit_code != 0 and clinic.audit_count() == before
    out = clinic.json("settings", "scanner-gs", "~")
    assert out == {"scanner_gs": "~", "previous": None}
    clinic.fails("settings", "scanner-gs", "A")  # could occur in a lot
    clinic.fails("settings", "scanner-gs", "~")  # unchanged: nothing recorded
    received = clinic.json("cartridge", "receive", _raw("10A1B3~210002"), "--supplier", "Acme")
    assert received["units"][0]["lot"] == "A1B3" and received["units"][0]["serial"] == "0002"
    test = clinic.json("scanner", "test", "--scan", "]C101" + GTIN + "1727123110SCANTEST~210001")
    assert test["ok"] is True and test["substitute_received"] is True
    assert clinic.json("audit", "verify")["ok"] is True
    assert clinic.json("settings", "scanner-gs", "none")["scanner_gs"] is None
    assert clinic.json("audit", "verify")["ok"] is True


def test_scanner_test_says_whether_gs_arrives(clinic: Cli, tmp_path: Path) -> None:
    good = "]C101" + GTIN + "1727123110SCANTEST" + GS + "210001"
    r = clinic.ok("scanner", "test", "--scan", good, operator=False)
    assert r.stdout.startswith("OK: the scanner delivers the GS separator")
    r = clinic.fails("scanner", "test", "--scan", good.replace(GS, ""), operator=False)
    assert "does not deliver the GS separator" in r.stderr
    assert "settings scanner-gs" in r.stderr
    r = clinic.run("scanner", "test", operator=False, input=good + "\n")
    assert r.exit_code == 0 and "OK" in r.stdout
    sheet = tmp_path / "scanner.pdf"
    clinic.ok("scanner", "sheet", "-o", str(sheet), operator=False)
    assert sheet.read_bytes().startswith(b"%PDF")


# --- point 7: numbers and times --------------------------------------------------------------


def test_absurd_contact_times_are_refused(clinic: Cli) -> None:
    before = clinic.audit_count()
    for value in ("1e-9", "0.4", "0"):
        r = clinic.fails("disinfectant", "add", "Quick", "--contact-min", value)
        assert "--contact-min must be at least 0.5" in r.stderr
        clinic.fails("clean", "room", "R1", "--kind", "between-clients", "--disinfectant",
                     "Clinell", "--contact-min", value)
    assert clinic.audit_count() == before
    clinic.ok("disinfectant", "add", "Quick", "--contact-min", "0.5")


@pytest.mark.parametrize("value", ["1_34", "\u0661\u0663\u0664", "\uff11\uff13\uff14", "nan"])
def test_numbers_are_ascii_digits_only(clinic: Cli, value: str) -> None:
    before = clinic.audit_count()
    r = clinic.run("cycle", "record", "--sterilizer", "AC1", "--program", "134-3.5",
                   "--temp-c", value, "--hold-min", "3.5", "--ci", "pass", "--pack", "P3")
    assert r.exit_code in (1, 2) and "Traceback" not in r.output
    assert "ASCII" in r.stderr or "finite" in r.stderr
    r = clinic.run("trace", "session", value)
    assert r.exit_code in (1, 2) and "Traceback" not in r.output
    assert clinic.audit_count() == before


def test_a_date_without_a_time_is_refused(clinic: Cli) -> None:
    before = clinic.audit_count()
    r = clinic.fails("clean", "room", "R1", "--kind", "between-clients", "--disinfectant",
                     "Clinell", "--at", "2026-11-24")
    assert "add a time" in r.stderr
    assert clinic.audit_count() == before


def test_times_the_clocks_skip_or_repeat_are_refused(clinic: Cli) -> None:
    # Europe/London: 2026-03-29 01:00 -> 02:00 (skipped); 2026-10-25 01:00-02:00 twice.
    args = ("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
            "--at")
    before = clinic.audit_count()
    r = clinic.fails(*args, "2026-03-29T01:30")
    assert "does not exist" in r.stderr
    r = clinic.fails(*args, "2026-10-25T01:30")
    assert "happened twice" in r.stderr and "+01:00" in r.stderr and "+00:00" in r.stderr
    assert clinic.audit_count() == before
    out = clinic.json(*args, "2026-10-25T01:30+00:00")
    assert out["at"].startswith("2026-10-25T01:30:00")


@pytest.mark.parametrize("number", ["2147483648", "9223372036854775808", "99999999999999999999"])
def test_ids_beyond_what_a_database_holds_are_unknown_on_both_backends(
    clinic: Cli, number: str
) -> None:
    r = clinic.fails("trace", "session", number)
    assert f"unknown session {number}" in r.stderr
    r = clinic.fails("trace", "load", number)
    assert f"unknown load {number}" in r.stderr
    r = clinic.fails("void", "room-clean", number, "--reason", "typo")
    assert f"unknown room-clean {number}" in r.stderr
    r = clinic.fails("session", "end", number, operator="ann")
    assert "unknown session" in r.stderr


# --- point 6: the terminal at the treatment room ---------------------------------------------


def test_blocked_reasons_each_say_what_to_do(clinic: Cli) -> None:
    r = clinic.run("check", "--room", "R1", "--device", "SN-1", "--cartridge",
                   hri("LOTA", "0001"), "--pack", "P3", operator="ann")
    assert r.exit_code == 3
    lines = r.stdout.splitlines()
    assert lines[0].startswith("BLOCKED")
    reasons = [i for i, line in enumerate(lines) if line.startswith("  ") and "pack" in line
               and "what to do" not in line]
    assert reasons
    for i in reasons:
        assert lines[i + 1].startswith("      what to do: "), lines


def test_a_blocked_cycle_prints_its_reasons_once(cli: Cli) -> None:
    cli.ok("sterilizer", "add", "AC9", "--model", "Vacuklav", "--type", "B")
    cli.ok("pack", "add", "PX", "--contents", "tweezers")
    r = cli.fails("cycle", "record", "--sterilizer", "AC9", "--program", "134-3.5",
                  "--temp-c", "134", "--hold-min", "3.5", "--ci", "pass", "--pack", "PX", code=3)
    output = r.stdout + r.stderr
    assert output.count("air-removal-test-missing") == 1, output
    assert "listed above" in r.stderr


def test_prompts_ask_for_packs_and_depth(clinic: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from sterilog.cli import gate as gate_cli

    monkeypatch.setattr(gate_cli, "_interactive", lambda: True)
    answers = ["R1", "SN-1", hri("LOTA", "0001"), "C-9", "P1", "", "3.0"]
    r = clinic.run("--json", "session", "start", operator="ann", input="\n".join(answers) + "\n")
    assert r.exit_code == 3, r.output  # 3.0 mm is deeper than ann's 2.0 and SN-1's 2.5
    out = __import__("json").loads(r.stdout)
    assert "practitioner-depth-exceeded" in [x["code"] for x in out["reasons"]]
    assert "Pack ID (empty line to finish)" in r.stderr and "Needle depth" in r.stderr
    answers[-1] = "1.5"
    r = clinic.run("--json", "session", "start", operator="ann", input="\n".join(answers) + "\n")
    assert r.exit_code == 0, r.output
    traced = clinic.json("trace", "session", "1")
    text = __import__("json").dumps(traced)
    assert '"P1"' in text and "1.5" in text, text


def test_go_shows_the_time_in_the_clinic_zone_with_its_offset(clinic: Cli) -> None:
    r = clinic.ok("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                  hri("LOTA", "0001"), "--client", "C-1", "--pack", "P1", operator="ann")
    assert r.stdout.splitlines()[0] == "GO: session 1 started at 2026-11-24 09:00+00:00"


def test_colour_only_at_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import sys

    from sterilog.cli import verdict

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert verdict.use_color() is True
    assert verdict.headline("GO", True, True) != "GO" and "\x1b[32" in verdict.headline(
        "GO", True, True
    )
    assert "\x1b[31" in verdict.headline("BLOCKED", False, True)
    assert verdict.use_color(json_mode=True) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert verdict.use_color() is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert verdict.use_color() is False


def test_ctrl_c_just_after_the_decision_still_prints_it_and_exits_0(
    clinic: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from sterilog.services import gate

    real = gate.start

    def start_then_ctrl_c(*args: object, **kw: object) -> object:
        result = real(*args, **kw)  # type: ignore[arg-type]
        # The user presses Ctrl-C before the commit (to this thread, as in the one-threaded CLI).
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        return result

    monkeypatch.setattr(gate, "start", start_then_ctrl_c)
    r = clinic.run("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                   hri("LOTA", "0001"), "--client", "C-1", "--pack", "P1", operator="ann")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("GO: session 1 started")
    assert len(clinic.json("session", "list")["sessions"]) == 1


def test_a_recall_catches_units_whose_lot_hides_a_serial(clinic: Cli) -> None:
    # Received before scans without GS were refused: lot A1B3 + serial 0002 read as one lot.
    clinic.ok("cartridge", "receive", hri("A1B3", "0001"), hri("A1B3210002"),
              hri("A1B3210003"), "--supplier", "Acme")
    sid = start(clinic, scan=hri("A1B3210002"), client="C-77")["session_id"]
    recall = clinic.json("cartridge", "recall", "--gtin", GTIN, "--lot", "A1B3",
                         "--reason", "sterility breach")
    assert sid in [s["session_id"] for s in recall["sessions"]]
    traced = clinic.json("trace", "lot", "--gtin", GTIN, "--lot", "A1B3")["sessions"]
    assert [s["session_id"] for s in traced] == [sid]
    clinic.ok("session", "end", str(sid), operator="ann")
    clean(clinic, "R1", "SN-1")
    out = start(clinic, scan=hri("A1B3210003"), client="C-78", expect=3)
    assert "cartridge-recalled" in [r["code"] for r in out["reasons"]]


def test_open_session_times_are_in_the_clinic_zone_with_offset(clinic: Cli) -> None:
    start(clinic)  # 09:00 London
    later = "2026-11-24T14:30:00+00:00"
    text = clinic.ok("status", now=later).stdout
    assert "since 2026-11-24 09:00+00:00" in text, text
    assert "T09:00:00+00:00" not in text
    clinic.ok("room", "add", "R3")
    out = start(clinic, room="R3", device="SN-2", scan=hri("LOTA", "0002"), now=later,
                client="C-2", expect=3)
    warn = [w["message"] for w in out["warnings"] if w["code"] == "session-open-long"]
    assert warn and "since 2026-11-24 09:00+00:00" in warn[0]
