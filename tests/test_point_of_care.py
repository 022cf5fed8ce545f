"""Issue 14: the way into the gate cannot be fooled (text, scans, numbers, times), on both
backends. Each test fails on the code before issue 14."""

from __future__ import annotations

import pytest
from conftest import Cli
from test_gate import hri, setup_clinic, start


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
