"""Bad input through the real CLI (SPEC §10): every malformed scan, date, number, ID, option,
clock value, output path and database URL gets exit 1 or 2 with a message, never a traceback,
and nothing is written (the audit entry count is unchanged).

Table-driven cases share one recorded clinic per backend (they must all be refused, so they
cannot disturb each other; the last test verifies the shared clinic's audit chain). Property
tests (hypothesis, bounded) check the same on generated input.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import traceback
import unicodedata
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from clinic import GTIN, hri
from conftest import NOW, Cli, fresh_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sterilog.cli import main

# When a property fails, hypothesis's pytest plugin imports libcst to suggest a patch; libcst's
# import raises a DeprecationWarning (mypy_extensions) that warnings-as-errors turns into a pytest
# INTERNALERROR hiding the real failure. Import it once here, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    with contextlib.suppress(ImportError):
        import hypothesis.extra._patching  # noqa: F401

BAD_GTIN = "09506000134353"  # wrong check digit


UNIT = hri("LOTA", "0002")  # received, unused


def exists(name: str) -> bool:
    return main.get_command(None, name) is not None  # type: ignore[arg-type]


# --- the shared clinic ---------------------------------------------------------------------------


def record_clinic(cli: Cli) -> None:
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
    cli.ok("room", "add", "R1")
    cli.ok("device", "add", "SN-1", "--model", "Pen 4")
    cli.ok("sterilizer", "add", "AC1", "--model", "Vacuklav", "--type", "B")
    cli.ok("pack", "add", "P1", "--contents", "tweezers")
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    cli.ok("cartridge", "receive", hri("LOTA", "0001"), hri("LOTA", "0002"), hri("LOTA", "0003"))
    cli.ok(
        "air-removal",
        "record",
        "--sterilizer",
        "AC1",
        "--result",
        "pass",
        "--at",
        "2026-11-24T07:00:00+00:00",
    )
    cli.ok(
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--pack",
        "P1",
        "--bi-lot",
        "BI-1",
        "--at",
        "2026-11-24T07:30:00+00:00",
    )
    cli.ok(
        "clean",
        "room",
        "R1",
        "--kind",
        "between-clients",
        "--disinfectant",
        "Clinell",
        "--at",
        "2026-11-24T08:00:00+00:00",
    )
    cli.ok(
        "clean", "device", "SN-1", "--disinfectant", "Clinell", "--at", "2026-11-24T08:00:00+00:00"
    )
    cli.ok(
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        hri("LOTA", "0001"),
        "--pack",
        "P1",
        "--client",
        "C-1",
        operator="ann",
    )


_shops: dict[str, Cli] = {}
_engines: dict[str, Any] = {}


@pytest.fixture(scope="module", autouse=True)
def _close_engines() -> Iterator[None]:
    yield
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def audit_count(cli: Cli) -> int:
    """The audit entry count through one pooled connection per database (cheap per case)."""
    from sqlalchemy import create_engine, text

    if cli.url not in _engines:
        _engines[cli.url] = create_engine(cli.url, pool_size=1)
    with _engines[cli.url].connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())


@pytest.fixture
def shop(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Cli:
    """One recorded clinic per backend, shared by every case of this module."""
    if backend not in _shops:
        if backend == "sqlite":
            pg = None
            template: str | Path = request.getfixturevalue("sqlite_template")
        else:
            pg = request.getfixturevalue("pg_server")
            if pg is None:
                pytest.skip("PostgreSQL is not available here")
            template = request.getfixturevalue("pg_template")
        url = fresh_url(backend, tmp_path_factory.mktemp("badinput"), pg, template=template)
        c = Cli(url=url, backend=backend)
        record_clinic(c)
        _shops[backend] = c
    return _shops[backend]


def crashed(r: Result) -> str | None:
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        return "".join(traceback.format_exception(*r.exc_info)) if r.exc_info else repr(r)
    return None


def refused(cli: Cli, *args: str, codes: tuple[int, ...] = (1, 2), **kw: Any) -> Result:
    """Run one bad command: exit 1 or 2, an `Error:` message, no traceback, nothing written."""
    before = audit_count(cli)
    r = cli.run(*args, **kw)
    tb = crashed(r)
    assert tb is None, f"{args!r} crashed:\n{tb}"
    assert r.exit_code in codes, f"{args!r}: exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.output
    assert "Error: " in r.stderr and len(r.stderr.split("Error: ", 1)[1].strip()) > 5, r.stderr
    if r.exit_code == 1:
        assert r.stderr.startswith("Error: "), r.stderr
    assert "may not" not in r.stderr, f"{args!r} was refused for the role, not the input"
    assert audit_count(cli) == before, f"{args!r} wrote something"
    return r


def fill(template: tuple[str, ...], value: str) -> tuple[str, ...]:
    return tuple(value if part == "{}" else part for part in template)


def case_id(value: str) -> str:
    shown = value if len(value) <= 20 else f"{value[:8]}...x{len(value)}"
    return shown.encode("unicode_escape").decode() or "empty"


def skip_missing(template: tuple[str, ...]) -> None:
    if not exists(template[0]):
        pytest.skip(f"`sterilog {template[0]}` does not exist yet in this build")


# --- numbers: every numeric option ---------------------------------------------------------------

# A cycle that never reached its holding phase really has 0 minutes (recorded as failed).
MEASURED_ZERO = {("cycle", "--hold-min")}

NUMERIC_OPTIONS: list[tuple[str, ...]] = [
    ("staff", "add", "x9", "--name", "X", "--role", "practitioner", "--max-depth-mm", "{}"),
    ("device", "add", "D9", "--model", "M", "--max-depth-mm", "{}"),
    ("sterilizer", "program", "AC1", "p9", "--temp-c", "{}", "--hold-min", "4"),
    ("sterilizer", "program", "AC1", "p9", "--temp-c", "134", "--hold-min", "{}"),
    ("disinfectant", "add", "D9", "--contact-min", "{}"),
    ("cartridge", "receive", hri("Q9"), "--quantity", "{}"),
    (
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "{}",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
    ),
    (
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "{}",
        "--ci",
        "pass",
    ),
    (
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--load-no",
        "{}",
    ),
    (
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--ci-type",
        "{}",
    ),
    ("clean", "room", "R1", "--kind", "spill", "--disinfectant", "Clinell", "--contact-min", "{}"),
    ("clean", "device", "SN-1", "--disinfectant", "Clinell", "--contact-min", "{}"),
    ("check", "--room", "R1", "--device", "SN-1", "--cartridge", UNIT, "--depth-mm", "{}"),
    (
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        UNIT,
        "--client",
        "C-2",
        "--depth-mm",
        "{}",
    ),
    ("audit", "log", "--limit", "{}"),
]
BAD_NUMBERS = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e308",
    "99999999999999999999",
    "",
    "abc",
    "1,5",
    "0x10",
]


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=case_id)
@pytest.mark.parametrize(
    "template",
    NUMERIC_OPTIONS,
    ids=lambda t: " ".join(t[:2]) + " " + t[t.index("{}") - 1],
)
def test_absurd_numbers_are_refused_for_every_numeric_option(
    shop: Cli, template: tuple[str, ...], value: str
) -> None:
    option = template[template.index("{}") - 1]
    if value == "0" and (template[0], option) in MEASURED_ZERO:
        pytest.skip("0 is a real measurement here")
    refused(shop, *fill(template, value))


# --- IDs: every place an ID is typed -------------------------------------------------------------

ID_POSITIONS: list[tuple[str, ...]] = [
    ("room", "add", "{}"),
    ("device", "add", "{}", "--model", "M"),
    ("sterilizer", "add", "{}", "--model", "M", "--type", "B"),
    ("pack", "add", "{}", "--contents", "x"),
    ("disinfectant", "add", "{}", "--contact-min", "1"),
    ("staff", "add", "{}", "--name", "X", "--role", "practitioner"),
    ("staff", "deactivate", "{}", "--reason", "x"),
    ("device", "retire", "{}", "--reason", "x"),
    ("sterilizer", "program", "{}", "fast", "--temp-c", "134", "--hold-min", "4"),
    ("sterilizer", "program", "AC1", "{}", "--temp-c", "134", "--hold-min", "4"),
    ("sterilizer", "service", "{}", "--note", "x"),
    ("clean", "room", "{}", "--kind", "spill", "--disinfectant", "Clinell"),
    ("clean", "room", "R1", "--kind", "spill", "--disinfectant", "{}"),
    ("clean", "device", "{}", "--disinfectant", "Clinell"),
    ("session", "start", "--room", "{}", "--device", "SN-1", "--cartridge", UNIT, "--client", "C"),
    ("session", "start", "--room", "R1", "--device", "{}", "--cartridge", UNIT, "--client", "C"),
    (
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        UNIT,
        "--client",
        "C",
        "--pack",
        "{}",
    ),
    (
        "session",
        "start",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        UNIT,
        "--client",
        "C",
        "--practitioner",
        "{}",
    ),
    (
        "cycle",
        "record",
        "--sterilizer",
        "{}",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
    ),
    (
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "{}",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
    ),
    (
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--pack",
        "{}",
    ),
    ("air-removal", "record", "--sterilizer", "{}", "--result", "pass"),
    ("bi", "read", "{}", "--result", "negative", "--control", "positive"),
    ("cartridge", "recall", "--gtin", "{}", "--lot", "LOTA", "--reason", "x"),
    ("cartridge", "recall", "--gtin", GTIN, "--lot", "{}", "--reason", "x"),
    ("void", "room-clean", "{}", "--reason", "x"),
    ("trace", "client", "{}"),
    ("trace", "device", "{}"),
    ("session", "list", "--room", "{}"),
]
BAD_IDS = [
    "",
    " ",
    "two words",
    "tab\there",
    "nul\x00",
    "bell\x07",
    "\x1b[2J",
    "zero\u200bwidth",
    "line\u2028sep",
    "x" * 10_000,
]


@pytest.mark.parametrize("value", BAD_IDS, ids=case_id)
@pytest.mark.parametrize(
    "template",
    ID_POSITIONS,
    ids=lambda t: " ".join(p for p in t if not p.startswith("(")).replace("{}", "ID")[:60],
)
def test_malformed_ids_are_refused_wherever_an_id_is_typed(
    shop: Cli, template: tuple[str, ...], value: str
) -> None:
    skip_missing(template)
    option = template[template.index("{}") - 1]
    if value == "" and (option == "--practitioner" or template[:2] == ("session", "list")):
        pytest.skip("an empty optional option means 'not given' (the default)")
    if value == "two words" and (template[0] == "disinfectant" or option == "--disinfectant"):
        pytest.skip("a disinfectant's NAME is its product name: spaces are allowed")
    refused(shop, *fill(template, value))


TEXT_POSITIONS: list[tuple[str, ...]] = [
    ("room", "add", "R9", "--name", "{}"),
    ("pack", "add", "P9", "--contents", "{}"),
    ("staff", "add", "z9", "--name", "{}", "--role", "practitioner"),
    ("staff", "add", "z9", "--name", "Z", "--role", "practitioner", "--license", "{}"),
    ("disinfectant", "add", "D9", "--contact-min", "1", "--reg-no", "{}"),
    ("device", "retire", "SN-1", "--reason", "{}"),
    ("sterilizer", "service", "AC1", "--note", "{}"),
    ("clean", "room", "R1", "--kind", "spill", "--disinfectant", "Clinell", "--note", "{}"),
    ("clean", "device", "SN-1", "--disinfectant", "Clinell", "--barrier-lot", "{}"),
    ("cartridge", "receive", hri("T9"), "--supplier", "{}"),
    ("cartridge", "receive", hri("T9"), "--invoice", "{}"),
    ("cartridge", "discard", UNIT, "--reason", "{}"),
    ("cartridge", "recall", "--gtin", GTIN, "--lot", "LOTA", "--reason", "{}"),
    (
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--bi-lot",
        "{}",
    ),
    ("incident", "record", "--session", "1", "--kind", "pain", "--note", "{}"),
    ("session", "end", "1", "--note", "{}"),
    ("staff", "deactivate", "ann", "--reason", "{}"),
    ("void", "room-clean", "1", "--reason", "{}"),
]
BAD_TEXT = ["nul\x00", "\x1b]0;owned\x07", "x" * 10_000]


@pytest.mark.parametrize("value", BAD_TEXT, ids=case_id)
@pytest.mark.parametrize(
    "template",
    TEXT_POSITIONS,
    ids=lambda t: " ".join(p for p in t if not p.startswith("(") and p != "{}")[:60],
)
def test_free_text_with_control_characters_or_absurd_length_is_refused(
    shop: Cli, template: tuple[str, ...], value: str
) -> None:
    skip_missing(template)
    refused(shop, *fill(template, value))


LOOKALIKES = ["tab\there", "zero\u200bwidth", "line\u2028sep", "bidi\u202eevil", "soft\u00adhyphen"]


@pytest.mark.parametrize("value", LOOKALIKES, ids=case_id)
@pytest.mark.parametrize(
    "template",
    [
        (
            "session",
            "start",
            "--room",
            "R1",
            "--device",
            "SN-1",
            "--cartridge",
            UNIT,
            "--client",
            "{}",
        ),
    ],
    ids=lambda t: " ".join(t[:2]),
)
def test_a_client_reference_with_invisible_characters_is_refused(
    shop: Cli, template: tuple[str, ...], value: str
) -> None:
    """`C-1` and `C-1<zero-width space>` look the same on screen and in a report, but `trace
    client C-1` would never find the second: a recall notification would miss that client."""
    refused(shop, *fill(template, value))


@pytest.mark.parametrize(
    "template",
    [t for t in TEXT_POSITIONS if t[-2] in ("--contents", "--reason")],
    ids=lambda t: " ".join(t[:2]) + " " + t[-2],
)
@pytest.mark.parametrize("value", ["", "   "], ids=["empty", "blank"])
def test_required_text_may_not_be_empty(shop: Cli, template: tuple[str, ...], value: str) -> None:
    skip_missing(template)
    refused(shop, *fill(template, value))


# --- scans ---------------------------------------------------------------------------------------

UNREADABLE_SCANS = [
    "",
    "garbage",
    "12345",
    hri("X", gtin=BAD_GTIN),
    hri("X", expiry="260230"),  # 30 February
    hri("X", expiry="261301"),  # month 13
    "(01)0950600013435(17)271231(10)X",  # 13-digit GTIN
    "(01)09506000134352(17)271231(10)",  # empty lot
    hri("A" * 21),  # a lot is at most 20 characters
    hri("X", "9" * 21),  # a serial too
    "(01)09506000134352(17)271231(10)X(99",  # unclosed AI
    "]d2garbage",
    "https://id.example.org/01/0950600013435X/10/X?17=271231",
    "(01)" + "9" * 10_000,
    "\x1d\x1d\x1d",
    "(17)271231(10)X",  # no GTIN
    hri("X", "1") + "\x00",
    "\x1b[2J" + hri("X", "1"),
]
SCAN_COMMANDS: list[tuple[str, ...]] = [
    ("cartridge", "receive", "{}"),
    ("cartridge", "discard", "{}", "--reason", "dropped"),
    ("check", "--room", "R1", "--device", "SN-1", "--cartridge", "{}"),
    ("session", "start", "--room", "R1", "--device", "SN-1", "--cartridge", "{}", "--client", "C"),
]


@pytest.mark.parametrize("scan", UNREADABLE_SCANS, ids=case_id)
@pytest.mark.parametrize("template", SCAN_COMMANDS, ids=lambda t: " ".join(t[:2]))
def test_an_unreadable_scan_is_exit_1_and_records_no_refusal(
    shop: Cli, template: tuple[str, ...], scan: str
) -> None:
    refused(shop, *fill(template, scan))


@pytest.mark.parametrize(
    "scan",
    [
        hri("X", expiry="211231"),  # already expired
        "(01)09506000134352(17)271231",  # no lot
        "(01)09506000134352(10)X",  # no expiry
        "https://id.example.org/01/09506000134352/10/X",  # Digital Link without expiry
        hri("LOTA", "0001"),  # a serial already received
    ],
    ids=case_id,
)
def test_a_scan_that_cannot_be_received_is_refused_whole(shop: Cli, scan: str) -> None:
    r = refused(shop, "cartridge", "receive", hri("GOOD", "1"), scan)
    assert "nothing was received" in r.stderr
    assert shop.json("cartridge", "list", "--lot", "GOOD")["units"] == []


# --- dates and months ----------------------------------------------------------------------------

DATE_OPTIONS: list[tuple[str, ...]] = [
    ("staff", "add", "d9", "--name", "D", "--role", "practitioner", "--license-expires", "{}"),
    ("session", "list", "--date", "{}"),
    ("cycle", "list", "--from", "{}"),
    ("cycle", "list", "--to", "{}"),
    ("trace", "device", "SN-1", "--from", "{}"),
    ("trace", "device", "SN-1", "--to", "{}"),
    ("report", "audit", "--from", "{}", "--to", "2026-11-30", "-o", "/tmp/sterilog-x.pdf"),
    ("report", "audit", "--from", "2026-11-01", "--to", "{}", "-o", "/tmp/sterilog-x.pdf"),
    ("export", "--from", "{}", "--to", "2026-11-30", "--format", "json", "-o", "/tmp/x.json"),
    ("export", "--from", "2026-11-01", "--to", "{}", "--format", "json", "-o", "/tmp/x.json"),
]
BAD_DATES = [
    "2026-02-30",
    "2026-13-01",
    "2026-11-31",
    "26-11-24",
    "24/11/2026",
    "2026-11-24T10:00",
    "yesterday",
    "",
    "99999-01-01",
    "0000-01-01",
    "9999-12-31",
]


@pytest.mark.parametrize("value", BAD_DATES, ids=case_id)
@pytest.mark.parametrize(
    "template",
    DATE_OPTIONS,
    ids=lambda t: " ".join(p for p in t if p.startswith("-") or p.isalpha())[:50],
)
def test_dates_that_are_not_real_or_usable_are_refused(
    shop: Cli, template: tuple[str, ...], value: str, tmp_path: Path
) -> None:
    skip_missing(template)  # an empty value too: given empty is never "not given"
    args = tuple(
        str(tmp_path / Path(a).name) if a.startswith("/tmp/") else a for a in fill(template, value)
    )
    refused(shop, *args)


MONTH_OPTIONS: list[tuple[str, ...]] = [
    ("sign", "{}", "--meaning", "approved"),
    ("report", "monthly", "--month", "{}", "-o", "/tmp/sterilog-m.pdf"),
]
BAD_MONTHS = ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", "", "99999-01", "November"]


@pytest.mark.parametrize("value", [*BAD_MONTHS, "9999-12"], ids=case_id)
@pytest.mark.parametrize("template", MONTH_OPTIONS, ids=lambda t: t[0])
def test_months_that_are_not_real_are_refused(
    shop: Cli, template: tuple[str, ...], value: str, tmp_path: Path
) -> None:
    skip_missing(template)
    args = tuple(
        str(tmp_path / "m.pdf") if a.startswith("/tmp/") else a for a in fill(template, value)
    )
    refused(shop, *args)


# --- clock values --------------------------------------------------------------------------------

BAD_NOW = [
    "yesterday",
    "now",
    "2026-11-24T09:00:00",
    "2026-11-24",
    "99999-01-01T00:00:00+00:00",
    "2026-02-30T10:00:00+00:00",
    "2026-11-24T25:00:00+00:00",
    "0001-01-01T00:00:00+00:00",
    "2026-11-24T09:00:00+25:00",
    "1732438800",
    "9999-12-31T23:59:59+00:00",
]


@pytest.mark.parametrize("value", BAD_NOW, ids=case_id)
@pytest.mark.parametrize(
    "args",
    [("room", "add", "R9"), ("status",), ("audit", "verify"), ("session", "list")],
    ids=lambda a: a[0],
)
def test_a_sterilog_now_that_is_not_a_usable_time_is_exit_1(
    shop: Cli, args: tuple[str, ...], value: str
) -> None:
    r = refused(shop, *args, now=value, codes=(1,))
    assert "STERILOG_NOW" in r.stderr


AT_COMMANDS: list[tuple[str, ...]] = [
    ("clean", "room", "R1", "--kind", "spill", "--disinfectant", "Clinell", "--at", "{}"),
    ("clean", "device", "SN-1", "--disinfectant", "Clinell", "--at", "{}"),
    (
        "cycle",
        "record",
        "--sterilizer",
        "AC1",
        "--program",
        "134-3.5",
        "--temp-c",
        "134",
        "--hold-min",
        "3.5",
        "--ci",
        "pass",
        "--at",
        "{}",
    ),
    ("air-removal", "record", "--sterilizer", "AC1", "--result", "pass", "--at", "{}"),
    ("bi", "read", "1", "--result", "negative", "--control", "positive", "--at", "{}"),
    ("cartridge", "receive", hri("AT9", "1"), "--at", "{}"),
    ("cartridge", "recall", "--gtin", GTIN, "--lot", "LOTA", "--reason", "x", "--at", "{}"),
    ("cartridge", "discard", UNIT, "--reason", "x", "--at", "{}"),
    ("incident", "record", "--session", "1", "--kind", "pain", "--note", "x", "--at", "{}"),
    ("sterilizer", "service", "AC1", "--note", "x", "--at", "{}"),
    ("audit", "log", "--since", "{}"),
]
BAD_AT = [
    "yesterday",
    "2026-02-30T10:00",
    "99999-01-01T10:00",
    "2026-11-24T25:00",
    "2027-01-01T10:00:00+00:00",
    "1969-12-31T23:00:00+00:00",
    "2026-11-24T08:00:00+99:00",
    "24/11/2026 08:00",
    "",  # given empty (an unset shell variable): refused, never "now"
    "   ",
]


@pytest.mark.parametrize("value", BAD_AT, ids=case_id)
@pytest.mark.parametrize("template", AT_COMMANDS, ids=lambda t: " ".join(t[:2]))
def test_an_at_time_that_is_not_real_past_and_in_range_is_refused(
    shop: Cli, template: tuple[str, ...], value: str
) -> None:
    if template[0] == "audit" and value.startswith("2027"):
        pytest.skip("--since in the future is a valid (empty) query")
    refused(shop, *fill(template, value))


# --- integer record IDs --------------------------------------------------------------------------

INT_ID_COMMANDS: list[tuple[str, ...]] = [
    ("session", "end", "{}"),
    ("incident", "record", "--session", "{}", "--kind", "pain", "--note", "x"),
    ("trace", "session", "{}"),
    ("trace", "load", "{}"),
    ("trace", "bi", "{}"),
    ("bi", "read", "{}", "--result", "negative", "--control", "positive"),
    ("void", "cycle", "{}", "--reason", "x"),
    ("report", "trace", "session", "{}", "-o", "/tmp/sterilog-t.pdf"),
    ("report", "trace", "load", "{}", "-o", "/tmp/sterilog-t.pdf"),
    ("report", "trace", "bi", "{}", "-o", "/tmp/sterilog-t.pdf"),
    ("label", "load", "{}", "-o", "/tmp/sterilog-l.pdf"),
]
BAD_INT_IDS = [
    "99999999999999999999",
    "9223372036854775808",
    "2147483648",
    "0",
    "1.5",
    "abc",
    "",
    "999999",
]


@pytest.mark.parametrize("value", BAD_INT_IDS, ids=case_id)
@pytest.mark.parametrize(
    "template", INT_ID_COMMANDS, ids=lambda t: " ".join(p for p in t[:3] if p != "{}")
)
def test_integer_ids_out_of_range_or_unknown_are_exit_1_or_2(
    shop: Cli, template: tuple[str, ...], value: str, tmp_path: Path
) -> None:
    skip_missing(template)
    args = tuple(
        str(tmp_path / "out.pdf") if a.startswith("/tmp/") else a for a in fill(template, value)
    )
    refused(shop, *args)


# --- output paths --------------------------------------------------------------------------------

OUTPUT_COMMANDS: list[tuple[str, ...]] = [
    ("report", "monthly", "--month", "2026-11", "-o", "{}"),
    ("report", "audit", "--from", "2026-11-01", "--to", "2026-11-30", "-o", "{}"),
    ("report", "trace", "session", "1", "-o", "{}"),
    ("label", "load", "1", "-o", "{}"),
    ("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json", "-o", "{}"),
    ("export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv", "-o", "{}"),
    ("backup", "{}"),
    ("demo", "--dir", "{}"),
]


@pytest.mark.parametrize("where", ["missing-dir", "missing-deep", "nul"])
@pytest.mark.parametrize(
    "template", OUTPUT_COMMANDS, ids=lambda t: " ".join(t[:2]) + (" csv" if "csv" in t else "")
)
def test_an_output_path_in_a_directory_that_does_not_exist_is_exit_1_and_creates_nothing(
    shop: Cli, template: tuple[str, ...], where: str, tmp_path: Path
) -> None:
    skip_missing(template)
    if template[0] == "backup" and shop.backend != "sqlite":
        pytest.skip("backup copies SQLite files; PostgreSQL uses pg_dump")
    target = {
        "missing-dir": tmp_path / "nope" / "out.x",
        "missing-deep": tmp_path / "a" / "b" / "c" / "out.x",
        "nul": tmp_path / "o\x00ut.x",
    }[where]
    refused(shop, *fill(template, str(target)), codes=(1,))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_backup_never_overwrites_an_existing_file(shop: Cli, tmp_path: Path) -> None:
    if not exists("backup") or shop.backend != "sqlite":
        pytest.skip("backup of SQLite only, and only once it exists")
    precious = tmp_path / "precious.db"
    precious.write_text("do not overwrite me")
    refused(shop, "backup", str(precious), codes=(1,))
    assert precious.read_text() == "do not overwrite me"


def test_a_report_onto_an_existing_directory_is_exit_1(shop: Cli, tmp_path: Path) -> None:
    if not exists("report"):
        pytest.skip("`sterilog report` does not exist yet in this build")
    refused(shop, "report", "monthly", "--month", "2026-11", "-o", str(tmp_path), codes=(1,))


# --- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("room", "add"),  # missing argument
        ("room", "add", "R9", "--bogus"),
        ("staff", "add", "q", "--name", "Q", "--role", "wizard"),
        ("sterilizer", "add", "AC9", "--model", "M", "--type", "Z"),
        ("disinfectant", "add", "D9", "--contact-min", "1", "--level", "extreme"),
        ("clean", "room", "R1", "--kind", "mopping", "--disinfectant", "Clinell"),
        (
            "cycle",
            "record",
            "--sterilizer",
            "AC1",
            "--program",
            "134-3.5",
            "--temp-c",
            "134",
            "--hold-min",
            "3.5",
            "--ci",
            "maybe",
        ),
        ("air-removal", "record", "--sterilizer", "AC1", "--result", "unsure"),
        ("bi", "read", "1", "--result", "negative", "--control", "none"),
        ("incident", "record", "--session", "1", "--kind", "boredom", "--note", "x"),
        ("cartridge", "list", "--status", "lost"),
        ("nonsense",),
        ("session", "start", "--room", "R1", "--device", "SN-1"),  # no scan, not at a terminal
    ],
    ids=lambda a: " ".join(a)[:50],
)
def test_usage_errors_are_exit_2_and_write_nothing(shop: Cli, args: tuple[str, ...]) -> None:
    refused(shop, *args, codes=(2,))


def test_json_mode_errors_are_one_json_object_and_exit_1(shop: Cli) -> None:
    import json

    r = refused(shop, "--json", "room", "add", "bad id", codes=(1,))
    out = json.loads(r.stdout)
    assert out["exit_code"] == 1 and "whitespace" in out["error"]


# --- database URLs -------------------------------------------------------------------------------


def _bad_db(tmp_path: Path, kind: str) -> tuple[str, str]:
    """(--db value, a fragment the message must contain)."""
    if kind == "directory":
        (tmp_path / "adir").mkdir()
        return str(tmp_path / "adir"), "not a file"
    if kind == "text-file":
        (tmp_path / "notes.txt").write_text("my notes\n" * 200)
        return str(tmp_path / "notes.txt"), "not a sterilog database"
    if kind == "random-bytes":
        (tmp_path / "rand.db").write_bytes(bytes(range(256)) * 40)
        return str(tmp_path / "rand.db"), "not a sterilog database"
    if kind == "empty-file":
        (tmp_path / "empty.db").write_bytes(b"")
        return str(tmp_path / "empty.db"), "not initialised"
    if kind == "other-sqlite":
        import sqlite3

        con = sqlite3.connect(tmp_path / "other.db")
        con.execute("CREATE TABLE invoices (n INTEGER)")
        con.commit()
        con.close()
        return str(tmp_path / "other.db"), "not initialised"
    table = {
        "missing-file": (str(tmp_path / "absent.db"), "sterilog init"),
        "missing-dir": (str(tmp_path / "no" / "x.db"), "does not exist"),
        "garbage-url": ("://nonsense", "not a valid database URL"),
        "unsupported": ("mysql://u@h/db", "not supported"),
        "oracle": ("oracle+cx_oracle://u@h/db", "not supported"),
        "sqlite-memory": ("sqlite:///:memory:", "SQLite file path"),
        "sqlite-no-path": ("sqlite://", "SQLite file path"),
        "bad-port": ("postgresql+psycopg://u@127.0.0.1:abc/x", "not a valid database URL"),
        "unreachable": ("postgresql+psycopg://u:hunter2@127.0.0.1:1/x", "cannot reach"),
        "unresolvable": ("postgresql+psycopg://u@no-such-host.invalid/x", "cannot reach"),
        "control-chars": ("clinic\x1b.db", "control characters"),
        "very-long": (str(tmp_path / ("x" * 5000)), ""),
    }
    return table[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "directory",
        "text-file",
        "random-bytes",
        "empty-file",
        "other-sqlite",
        "missing-file",
        "missing-dir",
        "garbage-url",
        "unsupported",
        "oracle",
        "sqlite-memory",
        "sqlite-no-path",
        "bad-port",
        "unreachable",
        "unresolvable",
        "control-chars",
        "very-long",
    ],
)
@pytest.mark.parametrize(
    "args",
    [("room", "list"), ("--operator", "boss", "room", "add", "R1"), ("audit", "verify")],
    ids=lambda a: a[-2],
)
def test_a_bad_database_is_a_clear_exit_1_and_nothing_is_created_or_changed(
    tmp_path: Path, kind: str, args: tuple[str, ...]
) -> None:
    url, fragment = _bad_db(tmp_path, kind)
    before = {p.name: p.read_bytes() if p.is_file() else None for p in tmp_path.iterdir()}
    r = CliRunner().invoke(
        main,
        ["--db", url, *args],
        env={"STERILOG_NOW": NOW, "STERILOG_DB": "", "STERILOG_OPERATOR": ""},
    )
    tb = crashed(r)
    assert tb is None, tb
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("Error: ") and fragment in r.stderr, r.stderr
    assert "hunter2" not in r.output  # a password never reaches the screen
    after = {p.name: p.read_bytes() if p.is_file() else None for p in tmp_path.iterdir()}
    assert after == before


# --- properties ----------------------------------------------------------------------------------

PROPS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def valid_id(value: str) -> bool:
    """SPEC §6.1: free text without whitespace or control characters (and at most 200)."""
    return (
        0 < len(value) <= 200
        and not any(c.isspace() for c in value)
        and not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)
    )


_used_rooms: set[tuple[str, str]] = set()


@PROPS
@given(st.text(max_size=250))
def test_property_any_room_id_is_either_stored_exactly_or_refused(shop: Cli, raw: str) -> None:
    code = "h" + raw  # never starts with "-" (that would be an option)
    before = audit_count(shop)
    r = shop.run("--json", "room", "add", code)
    assert crashed(r) is None, crashed(r)
    fresh = (shop.backend, code) not in _used_rooms
    if valid_id(code) and fresh:
        assert r.exit_code == 0, (code, r.output)
        _used_rooms.add((shop.backend, code))
        assert audit_count(shop) == before + 1
        assert code in {room["id"] for room in shop.json("room", "list")["rooms"]}
    else:
        assert r.exit_code in (1, 2), (code, r.output)
        assert r.stderr.startswith("Error: ") or "Error: " in r.stderr
        assert audit_count(shop) == before


def _num_text(x: float | int) -> str:
    return repr(x)


@PROPS
@given(st.one_of(st.floats(), st.integers(min_value=-(10**30), max_value=10**30)).map(_num_text))
def test_property_a_depth_is_accepted_only_when_finite_positive_and_at_most_5_mm(
    shop: Cli, raw: str
) -> None:
    value = float(raw)
    r = shop.run(
        "--json",
        "check",
        "--room",
        "R1",
        "--device",
        "SN-1",
        "--cartridge",
        UNIT,
        "--depth-mm",
        raw,
    )
    assert crashed(r) is None, crashed(r)
    if math.isfinite(value) and 0 < value <= 5:
        assert r.exit_code in (0, 3), (raw, r.output)  # a decision (room R1 is occupied)
    else:
        assert r.exit_code == 1, (raw, r.output)
        assert "--depth-mm" in r.stderr


GS1_LIKE = st.builds(
    lambda gtin, exp, lot, serial: (
        f"(01){gtin}(17){exp}(10){lot}" + (f"(21){serial}" if serial is not None else "")
    ),
    st.from_regex(r"\A[0-9]{12,15}\Z"),
    st.from_regex(r"\A[0-9]{6}\Z"),
    st.text(min_size=0, max_size=24),
    st.none() | st.text(max_size=24),
)


@PROPS
@given(st.one_of(st.text(max_size=120), GS1_LIKE))
def test_property_a_received_scan_either_adds_units_or_adds_nothing(shop: Cli, raw: str) -> None:
    if raw.startswith("-"):
        raw = " " + raw
    before = audit_count(shop)
    r = shop.run("--json", "cartridge", "receive", raw)
    assert crashed(r) is None, crashed(r)
    assert r.exit_code in (0, 1, 2), (raw, r.output)
    if r.exit_code == 0:
        import json

        assert json.loads(r.stdout)["received"] >= 1
        assert audit_count(shop) == before + 1
    else:
        assert "Error: " in r.stderr
        assert audit_count(shop) == before


@PROPS
@given(
    st.one_of(
        st.text(max_size=40).filter(lambda s: "\x00" not in s),
        st.datetimes(
            min_value=dt.datetime(1, 1, 2),  # noqa: DTZ001 (naive bounds, zones come next)
            max_value=dt.datetime(9999, 12, 30),  # noqa: DTZ001
            timezones=st.sampled_from(
                [
                    dt.UTC,
                    dt.timezone(dt.timedelta(hours=-14)),
                    dt.timezone(dt.timedelta(hours=5, minutes=30)),
                ]
            ),
        ).map(lambda d: d.isoformat()),
    )
)
def test_property_an_at_time_is_either_a_real_past_time_or_refused(shop: Cli, raw: str) -> None:
    if raw.startswith("-"):
        raw = " " + raw
    before = audit_count(shop)
    r = shop.run("--json", "clean", "device", "SN-1", "--disinfectant", "Clinell", "--at", raw)
    assert crashed(r) is None, crashed(r)
    if r.exit_code == 0 and raw == "":
        assert audit_count(shop) == before + 1  # an empty --at means "now"
    elif r.exit_code == 0:
        assert audit_count(shop) == before + 1
        when = dt.datetime.fromisoformat(raw.strip())
        if when.tzinfo is None:
            from zoneinfo import ZoneInfo

            when = when.replace(tzinfo=ZoneInfo("Europe/London"))
        assert when.year >= 1970 and when <= dt.datetime.fromisoformat(NOW)
    else:
        assert r.exit_code in (1, 2), (raw, r.output)
        assert audit_count(shop) == before


@PROPS
@given(st.one_of(st.text(max_size=30), st.dates().map(dt.date.isoformat)))
def test_property_any_date_is_a_listing_or_a_clear_refusal(shop: Cli, raw: str) -> None:
    if raw.startswith("-"):
        raw = " " + raw
    r = shop.run("session", "list", "--date", raw)
    assert crashed(r) is None, crashed(r)
    assert r.exit_code in (0, 1), (raw, r.output)
    if r.exit_code == 1:
        assert r.stderr.startswith("Error: ")


@PROPS
@given(st.text(max_size=60).filter(lambda s: "\x00" not in s))
def test_property_any_sterilog_now_is_used_or_refused(shop: Cli, raw: str) -> None:
    r = shop.run("status", now=raw or "x")
    assert crashed(r) is None, crashed(r)
    assert r.exit_code in (0, 1), (raw, r.output)


# --- after everything ----------------------------------------------------------------------------


def test_after_the_whole_battery_the_shared_clinic_still_verifies(shop: Cli) -> None:
    out = shop.json("audit", "verify")
    assert out["ok"] is True and out["problems"] == []
    assert shop.json("session", "list", "--date", "2026-11-24")["sessions"][0]["client"] == "C-1"
