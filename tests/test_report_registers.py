"""The registers appendix of the monthly report (issue 13) shows each entry as in force at the
month's end (compliance.registers.in_force), then the history of corrections: staff update,
deactivate and reinstate, device update, disinfectant update. Both backends, real CLI."""

from __future__ import annotations

from pathlib import Path

from conftest import Cli
from test_reports import at, flat, monthly, pages, registers


def test_the_registers_appendix_is_in_force_at_month_end_with_its_corrections(
    cli: Cli, tmp_path: Path
) -> None:
    registers(cli)
    cli.ok("staff", "update", "ann", "--license", "PR-2", "--license-expires", "2028-06-30",
           now=at(10, 9))  # fmt: skip
    cli.ok("staff", "deactivate", "ins", "--reason", "left the clinic", now=at(11, 9))
    cli.ok("staff", "reinstate", "ins", now=at(12, 9))
    cli.ok("device", "update", "SN-1", "--max-depth-mm", "2.5", now=at(13, 9))
    cli.ok("disinfectant", "update", "Clinell", "--contact-min", "2", now=at(14, 9))
    # after the month: neither in force at its end nor in its history
    cli.ok("staff", "update", "ann", "--license", "PR-3", now="2026-11-05T09:00:00+00:00")
    text = flat(" ".join(pages(monthly(cli, tmp_path, now="2026-11-06T09:00:00+00:00"))))
    registers_part = text[text.index("Appendix B. Registers") :]
    assert "PR-2 2028-06-30" in registers_part and "PR-3" not in registers_part
    assert "2.5 mm" in registers_part and "2 min" in registers_part
    history = registers_part[registers_part.index("Corrections to the registers") :]
    for line in (
        "staff ann licence \u2192 PR-2; licence expires \u2192 2028-06-30 Boss Manager",
        "staff ins deactivated: left the clinic",
        "staff ins reinstated",
        "device SN-1 maximum depth (mm) \u2192 2.5",
        "disinfectant Clinell contact time (min) \u2192 2",
    ):
        assert line in history, line
    assert history.index("deactivated") < history.index("reinstated")
