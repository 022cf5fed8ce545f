"""Late cleans that close what would otherwise be a gap come from the one home
(compliance.history.late_cleans_closing, the gate's own clean rules), not a second reckoning
in the report: a late spill clean (which never counts before a client) closes nothing, and the
session stays a gap; a late between-clients clean closes it. Both backends, real CLI."""

from __future__ import annotations

from pathlib import Path

from conftest import Cli
from test_reports import at, flat, hri, monthly, pages, registers


def _setup_voided_clean_before_session_two(cli: Cli) -> None:
    registers(cli)
    for n, serial in ((0, "0001"), (1, "0002")):
        cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
               now=at(6, 9 + n, 45))  # fmt: skip
        cli.ok("clean", "device", "SN-1", "--disinfectant", "Clinell", now=at(6, 9 + n, 45))
        sid = cli.json("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                       hri("LOTA", serial), "--client", f"C-{n}", operator="ann",
                       now=at(6, 10 + n))["session_id"]  # fmt: skip
        cli.ok("session", "end", str(sid), operator="ann", now=at(6, 10 + n, 30))
    cli.ok("void", "room-clean", "2", "--reason", "wrong room", now=at(8, 9))


def _closers(cli: Cli, tmp_path: Path) -> tuple[str, str]:
    text = flat(" ".join(pages(monthly(cli, tmp_path))))
    title = "Late entries that close what would otherwise be a gap"
    part = text[text.index(title) :].split("Verdict per area")[0] if title in text else ""
    return text, part


def test_a_late_spill_clean_closes_no_gap(cli: Cli, tmp_path: Path) -> None:
    _setup_voided_clean_before_session_two(cli)
    cli.ok("clean", "room", "R1", "--kind", "spill", "--disinfectant", "Clinell",
           "--at", at(6, 10, 50), now=at(8, 10))  # fmt: skip
    text, part = _closers(cli, tmp_path)
    assert "session 2: room R1 was not cleaned after its last session ended" in text  # a gap
    assert "room_cleans #3" not in part


def test_a_late_between_clients_clean_closes_the_gap(cli: Cli, tmp_path: Path) -> None:
    _setup_voided_clean_before_session_two(cli)
    cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
           "--at", at(6, 10, 50), now=at(8, 10))  # fmt: skip
    text, part = _closers(cli, tmp_path)
    assert "session 2: room R1" not in text  # no gap
    assert "room_cleans #3" in part and "session 2 (started before the clean was entered)" in part
