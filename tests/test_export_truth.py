"""The export says what every other command says about the same records (STYLE: one home per
compliance fact): a BI's result as `bi list` and trace count it, a unit's discard as
`cartridge list` sees it, a load's suspicion as `cycle list` judges it. On both backends, in
JSON and CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from clinic import hri
from clinic import registers as clinic_registers
from conftest import Cli

NOW = "2026-11-30T12:00:00+00:00"


def at(day: int, hour: int, minute: int = 0) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00+00:00"


def registers(cli: Cli) -> None:
    clinic_registers(cli, packs=("P1", "P2", "P3"), serials=3, now=at(1, 6))


def load(cli: Cli, when: str, pack: str, *, bi: bool = False) -> Any:
    args = ["cycle", "record", "--sterilizer", "AC1", "--program", "134-3.5"]
    args += ["--temp-c", "134", "--hold-min", "3.5", "--ci", "pass", "--pack", pack]
    if bi:
        args += ["--bi-lot", "BI-L1"]
    return cli.json(*args, now=when)


def read(
    cli: Cli, bi_id: int, result: str, control: str, now: str, *, back_to: str | None = None
) -> None:
    args = ["bi", "read", str(bi_id), "--result", result, "--control", control]
    if back_to is not None:
        args += ["--at", back_to]
    cli.ok(*args, now=now)


def export_json(cli: Cli, tmp_path: Path) -> Any:
    target = tmp_path / "export.json"
    cli.ok(
        "export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json",
        "-o", str(target), now=NOW,
    )  # fmt: skip
    return json.loads(target.read_text())


def export_csv(cli: Cli, tmp_path: Path, table: str) -> list[dict[str, str]]:
    target = tmp_path / "csv"
    cli.ok(
        "export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv",
        "-o", str(target), now=NOW,
    )  # fmt: skip
    with (target / f"{table}.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _cell(value: Any) -> str:
    """A JSON value as the CSV export writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- a BI's result -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("invalid", "valid"),
    [
        # the reviewer's case: an invalid read, then a valid positive back-dated before it
        (("negative", "negative"), ("positive", "positive")),
        (("positive", "negative"), ("negative", "positive")),
    ],
    ids=["positive-hidden", "negative-hidden"],
)
def test_a_back_dated_valid_bi_read_counts_in_the_export_as_in_bi_list_and_trace(
    cli: Cli, tmp_path: Path, invalid: tuple[str, str], valid: tuple[str, str]
) -> None:
    registers(cli)
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "pass", now=at(2, 7))
    bi_id = int(load(cli, at(2, 7, 10), "P1", bi=True)["bi_id"])
    read(cli, bi_id, *invalid, now=at(3, 10))
    read(cli, bi_id, *valid, now=at(3, 11), back_to="2026-11-03T09:00")

    keys = ("result", "control", "valid", "read_at")
    want = {"result": valid[0], "control": valid[1], "valid": True,
            "read_at": "2026-11-03T09:00:00Z"}  # fmt: skip
    listed = {b["bi_id"]: b for b in cli.json("bi", "list", now=NOW)["bis"]}[bi_id]
    assert {k: listed[k] for k in keys} == want
    traced = cli.json("trace", "load", "1", now=NOW)["load"]["bi"]
    assert {k: traced[k] for k in keys} == want

    exported = {b["id"]: b for b in export_json(cli, tmp_path)["bis"]}[bi_id]
    assert {k: exported[k] for k in keys} == want
    row = {int(b["id"]): b for b in export_csv(cli, tmp_path, "bis")}[bi_id]
    assert {k: row[k] for k in keys} == {k: _cell(v) for k, v in want.items()}


def test_a_bi_with_only_an_invalid_read_is_pending_in_the_export_as_in_bi_list(
    cli: Cli, tmp_path: Path
) -> None:
    """An invalid read has no result that counts: `bi list` shows none, and so does the export
    (it used to carry the invalid read's own result)."""
    registers(cli)
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "pass", now=at(2, 7))
    bi_id = int(load(cli, at(2, 7, 10), "P1", bi=True)["bi_id"])
    read(cli, bi_id, "positive", "negative", now=at(3, 10))

    keys = ("result", "control", "valid", "read_at")
    listed = {b["bi_id"]: b for b in cli.json("bi", "list", now=NOW)["bis"]}[bi_id]
    assert listed["pending"] is True
    want = {k: listed[k] for k in keys}
    assert want == {"result": None, "control": "negative", "valid": False,
                    "read_at": "2026-11-03T10:00:00Z"}  # fmt: skip
    exported = {b["id"]: b for b in export_json(cli, tmp_path)["bis"]}[bi_id]
    assert {k: exported[k] for k in keys} == want


# --- a unit's discard ----------------------------------------------------------------------------


def test_a_voided_discard_is_no_discard_in_the_export_as_in_cartridge_list(
    cli: Cli, tmp_path: Path
) -> None:
    registers(cli)
    first = cli.json("cartridge", "discard", hri("LOTA", 1), "--reason", "dropped", now=at(2, 8))
    kept = cli.json("cartridge", "discard", hri("LOTA", 2), "--reason", "torn", now=at(2, 8, 5))
    cli.ok("void", "discard", str(first["discard_id"]), "--reason", "mistake", now=at(2, 9))

    units = {u["serial"]: u for u in cli.json("cartridge", "list", now=NOW)["units"]}
    assert units["0001"]["status"] == "in-stock"
    assert units["0002"]["status"] == "discarded"
    want = {"0001": None, "0002": kept["discard_id"], "0003": None}

    exported = export_json(cli, tmp_path)
    assert {u["serial"]: u["discard_id"] for u in exported["cartridges"]} == want
    # the voided discard itself is still exported, marked voided
    discards = {d["id"]: d["voided"] for d in exported["discards"]}
    assert discards == {first["discard_id"]: True, kept["discard_id"]: False}
    rows = export_csv(cli, tmp_path, "cartridges")
    assert {u["serial"]: u["discard_id"] for u in rows} == {s: _cell(v) for s, v in want.items()}


# --- a load's suspicion --------------------------------------------------------------------------


def test_export_cycles_say_which_loads_are_suspect_as_cycle_list_does(
    cli: Cli, tmp_path: Path
) -> None:
    registers(cli)
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "pass", now=at(2, 7))
    first = load(cli, at(2, 7, 10), "P1", bi=True)
    read(cli, first["bi_id"], "negative", "positive", now=at(3, 7))
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "pass", now=at(3, 7, 30))
    load(cli, at(3, 8), "P2")
    cli.ok("air-removal", "record", "--sterilizer", "AC1", "--result", "pass", now=at(4, 7, 30))
    failing = load(cli, at(4, 8), "P3", bi=True)
    read(cli, failing["bi_id"], "positive", "positive", now=at(5, 8))

    listed = cli.json("cycle", "list", "--from", "2026-11-01", now=NOW)["cycles"]
    want = {c["load_id"]: c["suspect"] for c in listed}
    assert want == {1: False, 2: True, 3: True}

    exported = export_json(cli, tmp_path)["cycles"]
    assert {c["id"]: c.get("suspect") for c in exported} == want
    rows = export_csv(cli, tmp_path, "cycles")
    assert {int(c["id"]): c.get("suspect") for c in rows} == {i: _cell(v) for i, v in want.items()}
