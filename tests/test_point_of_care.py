"""Issue 14: the way into the gate cannot be fooled (text, scans, numbers, times), on both
backends. Each test fails on the code before issue 14."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Cli
from test_gate import GTIN, hri, setup_clinic, start


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
