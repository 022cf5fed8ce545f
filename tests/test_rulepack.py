from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sterilog.rulepack import (
    BUILTIN,
    TOML_KEYS,
    Program,
    RulePack,
    RulePackError,
    load_pack,
    parse_pack,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "rules.md"

GATE_CODES = (
    "cartridge-unknown",
    "cartridge-expired",
    "cartridge-used",
    "lot-exhausted",
    "cartridge-recalled",
    "cartridge-discarded",
    "device-retired",
    "device-not-reprocessed",
    "device-in-use",
    "device-depth-exceeded",
    "room-not-cleaned",
    "room-occupied",
    "pack-not-sterile",
    "pack-load-failed",
    "pack-ci-missing",
    "pack-load-suspect",
    "pack-expired",
    "pack-in-use",
    "practitioner-not-licensed",
    "practitioner-depth-exceeded",
)
CYCLE_CODES = (
    "sterilizer-locked",
    "air-removal-test-missing",
    "air-removal-test-failed",
    "sterilizer-bi-overdue",
)


def custom_text(**replace: str) -> str:
    """The default pack renamed "custom"; the first `key = ...` line of each key replaced."""
    text = load_pack("default").text.replace('name = "default"', 'name = "custom"')
    for key, value in replace.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text, count=1)
        assert count == 1, key
    return text


def error_of(text: str, origin: str = "custom.toml") -> str:
    with pytest.raises(RulePackError) as caught:
        parse_pack(text, origin)
    return str(caught.value)


# Built-in packs


def test_the_default_pack_follows_cdc_and_aami() -> None:
    pack = load_pack("default")
    assert pack.name == "default"
    assert "CDC 2003" in pack.source
    assert pack.bi_interval_days == 7
    assert pack.requalify_bis == 1
    assert pack.requalify_bis_after_repair == 3
    assert pack.air_removal_types == frozenset({"B", "S"})
    assert pack.pack_shelf_life_days is None
    assert pack.cartridge_expiry_warning_days == 30
    assert pack.bi_due_warning_hours == 24
    assert pack.open_session_warning_hours == 4
    assert pack.min_ci_type is None
    assert pack.default_programs == (
        Program(name="134-3.5", temp_c=134.0, hold_min=3.5),
        Program(name="121-20", temp_c=121.0, hold_min=20.0),
    )


def test_the_uk_pack_follows_htm_01_05() -> None:
    pack = load_pack("uk-htm-01-05")
    assert pack.name == "uk-htm-01-05"
    assert "HTM 01-05" in pack.source
    assert pack.bi_interval_days == 7
    assert pack.requalify_bis == 1
    assert pack.requalify_bis_after_repair == 3
    assert pack.air_removal_types == frozenset({"B", "S"})
    assert pack.pack_shelf_life_days == 365
    assert pack.cartridge_expiry_warning_days == 30
    assert pack.bi_due_warning_hours == 24
    assert pack.open_session_warning_hours == 4
    assert pack.min_ci_type is None
    assert pack.default_programs == (Program(name="134-3", temp_c=134.0, hold_min=3.0),)


@pytest.mark.parametrize("name", BUILTIN)
def test_a_builtin_pack_keeps_its_exact_text_and_parses_back_to_itself(name: str) -> None:
    pack = load_pack(name)
    packaged = ROOT / "sterilog" / "rulepacks" / f"{name}.toml"
    assert pack.text == packaged.read_text(encoding="utf-8")
    assert parse_pack(pack.text, "database") == pack


@pytest.mark.parametrize("name", BUILTIN)
def test_every_value_in_a_builtin_pack_has_a_comment_citing_its_source(name: str) -> None:
    lines = load_pack(name).text.splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line) and not line.startswith(("name =", "source =")):
            block: list[str] = []
            for before in reversed(lines[:number]):
                if not before.strip() or before.startswith("["):
                    break
                block.append(before)
            assert any(before.startswith("# ") for before in block), line


def test_a_builtin_pack_is_loaded_once() -> None:
    assert load_pack("default") is load_pack("default")


def test_packs_are_frozen_and_hide_their_text_from_repr() -> None:
    pack = load_pack("default")
    with pytest.raises(dataclasses.FrozenInstanceError):
        pack.bi_interval_days = 1  # type: ignore[misc]
    assert "[bi]" not in repr(pack)


# Custom packs


def test_a_custom_pack_file_round_trips(tmp_path: Path) -> None:
    text = custom_text(
        interval_days="30",
        requalify_bis="2",
        requalify_bis_after_repair="4",
        sterilizer_types='["B"]',
        shelf_life_days="182",
        min_type="5",
        bi_due_hours="48",
    )
    path = tmp_path / "custom.toml"
    path.write_text(text, encoding="utf-8")

    pack = load_pack(str(path))

    assert pack.name == "custom"
    assert pack.bi_interval_days == 30
    assert pack.requalify_bis == 2
    assert pack.requalify_bis_after_repair == 4
    assert pack.air_removal_types == frozenset({"B"})
    assert pack.pack_shelf_life_days == 182
    assert pack.min_ci_type == 5
    assert pack.bi_due_warning_hours == 48
    assert pack.text == text
    assert parse_pack(pack.text, "database") == pack
    assert load_pack(path) == pack


def test_an_empty_air_removal_list_switches_the_daily_test_off() -> None:
    pack = parse_pack(custom_text(sterilizer_types="[]"), "custom.toml")
    assert pack.air_removal_types == frozenset()


def test_a_custom_pack_file_without_toml_extension_is_still_a_path(tmp_path: Path) -> None:
    path = tmp_path / "ourpack"
    path.write_text(custom_text(), encoding="utf-8")
    assert load_pack(str(path)).name == "custom"


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + custom_text().encode())
    assert load_pack(str(path)).text == custom_text()


def test_a_copy_of_a_builtin_pack_may_keep_its_name(tmp_path: Path) -> None:
    path = tmp_path / "copy.toml"
    path.write_text(load_pack("default").text, encoding="utf-8")
    assert load_pack(str(path)) == load_pack("default")


def test_an_edited_pack_may_not_take_a_builtin_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(load_pack("default").text.replace("interval_days = 7", "interval_days = 9"))
    with pytest.raises(RulePackError, match=r"mine\.toml: pack\.name 'default' is the name of"):
        load_pack(str(path))


def test_the_example_in_the_docs_is_a_valid_pack() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1
    pack = parse_pack(blocks[0], "docs/rules.md")
    assert pack.bi_interval_days == 30
    assert pack.min_ci_type == 5


# Invalid packs


def test_an_unknown_key_is_named_with_a_suggestion() -> None:
    text = custom_text().replace("bi_due_hours = 24", "bi_due_hrs = 24")
    message = error_of(text)
    assert message == (
        "rule pack custom.toml: unknown key warnings.bi_due_hrs "
        "(did you mean warnings.bi_due_hours?); missing key warnings.bi_due_hours"
    )


@pytest.mark.parametrize(
    ("addition", "key"),
    [
        ("[retention]\nyears = 3\n", "unknown key retention"),
        ("colour = 'blue'\n", "unknown key programs[2].colour"),
    ],
)
def test_unknown_tables_and_program_keys_are_named(addition: str, key: str) -> None:
    assert key in error_of(custom_text() + addition)


def test_an_unknown_key_in_pack_table_is_named() -> None:
    text = custom_text().replace("[pack]\n", "[pack]\nversion = 2\n")
    assert "unknown key pack.version" in error_of(text)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("interval_days", "-3", "bi.interval_days must be a positive integer, got -3"),
        ("interval_days", "0", "bi.interval_days must be a positive integer, got 0"),
        ("interval_days", "7.0", "bi.interval_days must be a positive integer, got 7.0"),
        ("interval_days", '"7"', "bi.interval_days must be a positive integer, got the string"),
        ("interval_days", "true", "bi.interval_days must be a positive integer, got true"),
        ("interval_days", "100000", "bi.interval_days must be at most 3660, got 100000"),
        ("requalify_bis", "false", "bi.requalify_bis must be a positive integer, got false"),
        ("open_session_hours", "-1", "warnings.open_session_hours must be a positive integer"),
        ("cartridge_expiry_days", "nan", "warnings.cartridge_expiry_days must be a positive"),
        ("shelf_life_days", "-1", "packs.shelf_life_days must be an integer from 0 (none)"),
        ("shelf_life_days", "true", "packs.shelf_life_days must be an integer from 0 (none)"),
        ("min_type", "7", "ci.min_type must be at most 6, got 7"),
        ("min_type", "4.5", "ci.min_type must be an integer from 0 (none) to 6, got 4.5"),
        ("sterilizer_types", '["B", "X"]', "air_removal.sterilizer_types must be a list of"),
        ("sterilizer_types", '"B"', "air_removal.sterilizer_types must be a list of"),
        ("sterilizer_types", '["B", "B"]', "air_removal.sterilizer_types lists a type twice"),
        ("name", '"bad name"', "pack.name must be 1-64 letters"),
        ("source", '""', "pack.source must be non-empty text"),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(key: str, value: str, expected: str) -> None:
    message = error_of(custom_text(**{key: value}))
    assert message.startswith("rule pack custom.toml: ")
    assert expected in message


TEMP_RANGE = "programs[1].temp_c must be a temperature in °C above 100 and at most 150"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nan", f"{TEMP_RANGE}, got nan"),
        ("inf", f"{TEMP_RANGE}, got inf"),
        ("-134", "programs[1].temp_c must be a temperature in °C above 100"),
        ("true", "programs[1].temp_c must be a temperature in °C above 100"),
        ("1340", "programs[1].temp_c must be a temperature in °C above 100"),
    ],
)
def test_a_bad_program_temperature_is_refused(value: str, expected: str) -> None:
    assert expected in error_of(custom_text(temp_c=value))


@pytest.mark.parametrize("value", ["nan", "-inf", "0", "-3.5", "false", '"3.5"'])
def test_a_bad_holding_time_is_refused(value: str) -> None:
    assert "programs[1].hold_min must be a number of minutes above 0" in error_of(
        custom_text(hold_min=value)
    )


def test_program_names_must_be_unique_and_without_spaces() -> None:
    text = custom_text().replace('name = "121-20"', 'name = "134-3.5"')
    assert "programs[2].name '134-3.5' is given twice" in error_of(text)
    text = custom_text().replace('name = "121-20"', 'name = "121 20"')
    assert "programs[2].name must be 1-64 characters without spaces" in error_of(text)


def test_a_pack_must_list_a_program() -> None:
    text = custom_text().split("[[programs]]")[0]
    assert "missing [[programs]]" in error_of(text)
    assert "programs must list at least one program" in error_of("programs = []\n" + text)


def test_every_key_is_required() -> None:
    text = custom_text().replace("requalify_bis_after_repair = 3\n", "")
    assert error_of(text) == "rule pack custom.toml: missing key bi.requalify_bis_after_repair"
    text = re.sub(r"(?s)\[warnings\].*?(?=\n\[\[programs)", "", custom_text())
    assert error_of(text) == "rule pack custom.toml: missing table [warnings]"


def test_a_table_given_as_a_value_is_refused() -> None:
    text = "bi = 7\n" + re.sub(r"(?s)\[bi\].*?(?=\n\[air_removal)", "", custom_text())
    assert "bi must be a table, got 7" in error_of(text)


def test_every_problem_is_reported_at_once() -> None:
    text = custom_text(interval_days="-3", min_type="9", temp_c="nan")
    message = error_of(text)
    assert "bi.interval_days must be a positive integer, got -3" in message
    assert "ci.min_type must be at most 6, got 9" in message
    assert "programs[1].temp_c" in message


def test_repair_requalification_cannot_be_laxer_than_the_plain_one() -> None:
    message = error_of(custom_text(requalify_bis="3", requalify_bis_after_repair="1"))
    assert message == (
        "rule pack custom.toml: bi.requalify_bis_after_repair must be at least "
        "bi.requalify_bis (3), got 1"
    )


def test_invalid_toml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[bi\ninterval_days = 7\n", encoding="utf-8")
    with pytest.raises(RulePackError, match=r"rule pack .*broken\.toml: invalid TOML: "):
        load_pack(str(path))


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(RulePackError) as caught:
        load_pack(str(path))
    assert str(caught.value) == f"rule pack {path}: file not found"


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulePackError, match="is a directory"):
        load_pack(str(tmp_path) + "/")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(custom_text().replace("CDC", "C\xe9DC").encode("latin-1"))
    with pytest.raises(RulePackError, match=r"latin1\.toml: not UTF-8 text"):
        load_pack(str(path))


@pytest.mark.parametrize("name", ["uk", "Default", "htm-01-05", ""])
def test_an_unknown_builtin_name_is_refused_listing_the_builtins(name: str) -> None:
    with pytest.raises(RulePackError) as caught:
        load_pack(name)
    assert str(caught.value) == (
        f"rule pack {name!r}: no such built-in pack; give one of default, uk-htm-01-05 "
        "or a path to a .toml file"
    )


def test_rule_pack_errors_are_value_errors() -> None:
    error = RulePackError("x.toml", ("a", "b"))
    assert isinstance(error, ValueError)
    assert error.origin == "x.toml"
    assert error.problems == ("a", "b")
    assert str(error) == "rule pack x.toml: a; b"


def test_parsed_numbers_are_finite() -> None:
    for name in BUILTIN:
        for program in load_pack(name).default_programs:
            assert math.isfinite(program.temp_c)
            assert math.isfinite(program.hold_min)


# Docs that cannot rot


def test_every_field_has_a_toml_key() -> None:
    names = {item.name for item in dataclasses.fields(RulePack)}
    assert set(TOML_KEYS) == names - {"text"}


def test_every_toml_key_is_in_the_builtin_packs() -> None:
    for name in BUILTIN:
        data = tomllib.loads(load_pack(name).text)
        for dotted in TOML_KEYS.values():
            node = data
            for part in dotted.split("."):
                node = node[part]


def test_the_docs_explain_every_key_pack_and_code() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for dotted in TOML_KEYS.values():
        key = "[[programs]]" if dotted == "programs" else dotted
        assert f"`{key}`" in docs, dotted
    for key in ("name", "temp_c", "hold_min"):
        assert f"`{key}`" in docs, key
    for name in BUILTIN:
        assert f"`{name}`" in docs, name
    for code in GATE_CODES + CYCLE_CODES:
        assert f"- `{code}` — " in docs, code
    assert "sterilog init --rules" in docs


def test_importing_the_module_stays_cheap() -> None:
    code = (
        "import sys, sterilog.rulepack; "
        "print(sorted(m for m in ('sqlalchemy', 'reportlab', 'alembic', 'difflib') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


def test_terminal_idle_minutes_is_read_optional_and_checked() -> None:
    assert load_pack("default").terminal_idle_minutes == 5
    assert load_pack("uk-htm-01-05").terminal_idle_minutes == 5
    assert parse_pack(custom_text(idle_minutes="0.5"), "c").terminal_idle_minutes == 0.5
    # packs stored before the key existed have no [terminal] table: 5 minutes
    old = re.sub(r"(?s)\[terminal\].*?(?=\n\[\[programs)", "", custom_text())
    assert "[terminal]" not in old
    assert parse_pack(old, "c").terminal_idle_minutes == 5
    # like [records], an optional table's keys may be left out too (the default applies)
    assert (
        parse_pack(custom_text().replace("idle_minutes = 5\n", ""), "c").terminal_idle_minutes == 5
    )
    # but a key that is given must be a sane number
    for bad in ("0", "-1", "true", '"5"', "2000"):
        assert "terminal.idle_minutes must be a number of minutes" in error_of(
            custom_text(idle_minutes=bad)
        ), bad


def test_retention_years_is_optional_and_the_uk_pack_keeps_two_years() -> None:
    from sterilog.rulepack import load_pack

    assert load_pack("default").retention_years == 3
    assert load_pack("uk-htm-01-05").retention_years == 2
