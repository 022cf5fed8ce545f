"""Full logs readable at 10 000 sessions (issue 13): the cleaning log compacts like cleans into
one row with their times and count, and still represents every clean; voided and late cleans
keep a row of their own."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from conftest import Cli
from test_reports import at, flat, monthly, pages, registers

from sterilog.reports.monthly import CleanRow
from sterilog.reports.monthly.cleaning import runs, side_by_side

UTC = dt.UTC
LONDON = ZoneInfo("Europe/London")


def _clean(i: int, when: dt.datetime, target: str = "Room R1", **kw: object) -> CleanRow:
    values: dict[str, object] = {
        "kind_of_record": "room-clean" if target.startswith("Room") else "device-clean",
        "record_id": i,
        "at": when,
        "target": target,
        "kind": "between-clients",
        "product": "Clinell",
        "contact_min": 1.0,
        "operator": "Ann",
        "note": None,
        "voided": False,
    }
    values.update(kw)
    return CleanRow(**values)  # type: ignore[arg-type]


def test_runs_keep_every_clean_once_and_split_on_any_difference() -> None:
    day = dt.datetime(2026, 10, 5, 8, tzinfo=UTC)
    cleans = []
    for n in range(12):
        for room in ("Room R1", "Room R2"):
            cleans.append(_clean(len(cleans) + 1, day + dt.timedelta(minutes=40 * n), room))
    cleans.append(_clean(99, day + dt.timedelta(hours=9), "Room R1", kind="end-of-day"))
    cleans.append(_clean(100, day + dt.timedelta(hours=9, minutes=5), "Room R1", voided=True))
    cleans.append(_clean(101, day + dt.timedelta(days=1), "Room R1"))  # the next day
    cleans.sort(key=lambda r: (r.at, r.record_id))

    got = runs(cleans, LONDON, lambda r: r.voided)
    assert sorted(r.record_id for run in got for r in run) == sorted(c.record_id for c in cleans)
    assert [len(run) for run in got] == [12, 12, 1, 1, 1]
    assert got[0][0].target == "Room R1" and got[1][0].target == "Room R2"
    groups = side_by_side(got, lambda r: r.voided)
    assert [[len(run) for run in g] for g in groups] == [[12, 12], [1], [1], [1]]
    assert groups[2][0][0].voided  # struck through on a row of its own
    flat_ids = [r.record_id for g in groups for run in g for r in run]
    assert sorted(flat_ids) == sorted(c.record_id for c in cleans)


def test_the_monthly_cleaning_log_has_one_row_per_run_with_every_time(
    cli: Cli, tmp_path: Path
) -> None:
    registers(cli)
    cli.ok("room", "add", "R2", now=at(1, 7))
    for hour in (9, 10, 11, 12):
        for room in ("R1", "R2"):
            cli.ok("clean", "room", room, "--kind", "between-clients", "--disinfectant",
                   "Clinell", now=at(5, hour, 30))  # fmt: skip
    cli.ok("clean", "room", "R1", "--kind", "end-of-day", "--disinfectant", "Clinell",
           now=at(5, 17))  # fmt: skip
    cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell",
           now=at(5, 13, 30))  # fmt: skip
    cli.ok("void", "room-clean", "10", "--reason", "wrong room", now=at(5, 14))
    # entered two days late: its own row, marked
    cli.ok("clean", "room", "R2", "--kind", "between-clients", "--disinfectant", "Clinell",
           "--at", at(5, 14, 30), now=at(7, 9))  # fmt: skip
    text = flat("\n".join(pages(monthly(cli, tmp_path))))
    log = text[text.index("4. Cleaning log") : text.index("5. Sessions and refusals")]
    # the four like cleans of R1 and R2 at the same times: one row, both rooms, 8 cleans
    assert (
        "2026-10-05 10:30, 11:30, 12:30, 13:30 Room R1, R2 between-clients Clinell 1 "
        "Boss Manager 8 " in log
    )
    assert log.count("Room R1, R2") == 1
    # the end-of-day clean, the voided clean and the late clean: one row each
    assert "2026-10-05 18:00 Room R1 end-of-day" in log
    assert "2026-10-05 14:30 Room R1 between-clients" in log  # voided: struck, own row
    assert "2026-10-05 15:30 (LATE ENTRY: entered 2026-10-07 10:00" in log
    counts = [int(n) for n in re.findall(r"Boss Manager (\d+)", log)]
    assert sorted(counts) == [1, 1, 1, 8]  # 11 cleans, each represented once


def _texts_with_colour(path: Path) -> list[tuple[str, tuple[float, ...] | None]]:
    """Every text run of the PDF with the fill colour it is drawn in."""
    from pypdf import PdfReader

    seen: list[tuple[str, tuple[float, ...] | None]] = []
    colour: list[tuple[float, ...] | None] = [None]

    def before(op: bytes, args: list[object], cm: object, tm: object) -> None:
        if op == b"rg":
            colour[0] = tuple(round(float(a), 2) for a in args)  # type: ignore[arg-type]

    def text(t: str, *_: object) -> None:
        if t.strip():
            seen.append((t.strip(), colour[0]))

    for page in PdfReader(str(path)).pages:
        page.extract_text(visitor_operand_before=before, visitor_text=text)
    return seen


def test_a_voided_air_removal_test_shows_its_value_struck_through(cli: Cli, tmp_path: Path) -> None:
    from sterilog.reports import pdf

    registers(cli)
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "fail", now=at(6, 7))
    cli.ok("void", "air-removal", "1", "--reason", "wrong sterilizer", now=at(6, 8))
    path = monthly(cli, tmp_path)
    text = flat("\n".join(pages(path)))
    log = text[text.index("Air-removal (Bowie-Dick / Helix) test log") : text.index("4. Cleaning")]
    assert "2026-10-06 08:00 AC1 FAIL Boss Manager" in log
    assert "voided" not in log
    grey = tuple(round(x, 2) for x in pdf.VOID.rgb())
    # the whole row, its value included, is drawn greyed and struck (not a red FAIL mark)
    assert ("2026-10-06 08:00 AC1 FAIL Boss Manager", grey) in _texts_with_colour(path)
