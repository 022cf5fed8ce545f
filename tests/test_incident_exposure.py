"""An exposure opened from an incident (issue 13) includes the clients treated later with the
same device before its next clean, and agrees with `trace session` (one home:
compliance.history.sessions_until_next_clean); on both backends through the real CLI."""

from __future__ import annotations

from pathlib import Path

from conftest import Cli
from test_reports import at, flat, hri, pages, registers


def _session(cli: Cli, hour: int, lot: str, client: str, *, clean: bool = True) -> int:
    if clean:
        cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
               now=at(6, hour, 5))  # fmt: skip
        cli.ok("clean", "device", "SN-1", "--disinfectant", "Clinell", now=at(6, hour, 5))
    sid = cli.json("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge",
                   hri(lot, "0001"), "--client", client, operator="ann",
                   now=at(6, hour, 10))["session_id"]  # fmt: skip
    cli.ok("session", "end", str(sid), operator="ann", now=at(6, hour, 40))
    return int(sid)


def test_an_incident_exposure_includes_the_next_clients_on_the_uncleaned_device(
    cli: Cli, tmp_path: Path
) -> None:
    registers(cli)
    for lot in ("LOTB", "LOTC", "LOTD"):  # one lot each: no client shares a lot
        cli.ok("cartridge", "receive", hri(lot, "0001"), now=at(6, 7))
    first = _session(cli, 8, "LOTB", "C-FIRST")
    second = _session(cli, 9, "LOTC", "C-SECOND")  # after a device clean: voided below
    _session(cli, 10, "LOTD", "C-THIRD")  # after a real clean: not exposed
    device_cleans = cli.json("trace", "session", str(second))["detail"][0]["device"]
    assert device_cleans["cleaned_since_previous_session"] is True
    # The 09:05 device clean was of another pen: voided. Session 2 followed session 1 on an
    # uncleaned device.
    cli.ok("void", "device-clean", "2", "--reason", "wrong pen", now=at(6, 12))
    inc = cli.json("incident", "record", "--session", str(first), "--kind", "infection",
                   "--note", "red", operator="ann", now=at(8, 9))["incident_id"]  # fmt: skip

    detail = cli.json("trace", "session", str(first))["detail"][0]["device"]
    assert [(b["session_id"], b["client"]) for b in detail["sessions_until_next_clean"]] == [
        (second, "C-SECOND")
    ]
    opened = cli.json("exposure", "open", "--incident", str(inc), operator="boss", now=at(8, 10))
    shown = cli.json("exposure", "show", str(opened["id"]))
    clients = sorted(c["client"] for c in shown["clients_detail"])
    assert clients == ["C-FIRST", "C-SECOND"]  # the third came after the 10:05 clean
    # trace's text and PDF say the same
    text = cli.ok("trace", "session", str(first)).stdout
    assert f"before its next clean, by session(s) {second} (client C-SECOND)" in text
    out = tmp_path / "t.pdf"
    cli.ok("report", "trace", "session", str(first), "-o", str(out))
    assert f"by session(s) {second} (client C-SECOND)" in flat(" ".join(pages(out)))


def test_a_clean_made_during_a_session_does_not_clean_the_pen_for_the_next_client(
    cli: Cli,
) -> None:
    """The next clean is the first after the session ENDED (the gate's rule): a device clean
    logged while the session ran does not end the list of clients who came after it."""
    registers(cli)
    for lot in ("LOTB", "LOTC"):
        cli.ok("cartridge", "receive", hri(lot, "0001"), now=at(6, 7))
    first = _session(cli, 8, "LOTB", "C-FIRST")  # 08:10-08:40; cleans at 08:05 (devices: 1)
    cli.ok("clean", "device", "SN-1", "--disinfectant", "Clinell", now=at(6, 8, 20))  # during
    second = _session(cli, 9, "LOTC", "C-SECOND")  # after the 09:05 clean (device clean 3)
    cli.ok("void", "device-clean", "3", "--reason", "wrong pen", now=at(6, 12))
    detail = cli.json("trace", "session", str(first))["detail"][0]["device"]
    assert [(b["session_id"], b["client"]) for b in detail["sessions_until_next_clean"]] == [
        (second, "C-SECOND")
    ]
