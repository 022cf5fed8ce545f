"""Jurisdiction rule packs: the numbers the rules use, kept as data (TOML), never as literals.

A pack changes numbers, never rule codes. Built-in packs live in ``sterilog/rulepacks/`` and are
read with :mod:`importlib.resources`; a clinic may also give its own ``.toml`` file. Every pack,
built-in or custom, must give every value: the pack text is stored in the database, so it has to
say everything on its own, and a later sterilog release that changes a default must not change
a clinic's numbers behind its back. See ``docs/rules.md``.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

__all__ = [
    "BUILTIN",
    "STERILIZER_TYPES",
    "TOML_KEYS",
    "Program",
    "RulePack",
    "RulePackError",
    "load_pack",
    "parse_pack",
]

BUILTIN: Final = ("default", "uk-htm-01-05")

# EN 13060 small steam sterilizer types.
STERILIZER_TYPES: Final = frozenset({"B", "N", "S"})

# Where each RulePack field lives in the TOML file. docs/rules.md is tested against this.
TOML_KEYS: Final[Mapping[str, str]] = {
    "name": "pack.name",
    "source": "pack.source",
    "bi_interval_days": "bi.interval_days",
    "requalify_bis": "bi.requalify_bis",
    "requalify_bis_after_repair": "bi.requalify_bis_after_repair",
    "air_removal_types": "air_removal.sterilizer_types",
    "pack_shelf_life_days": "packs.shelf_life_days",
    "cartridge_expiry_warning_days": "warnings.cartridge_expiry_days",
    "bi_due_warning_hours": "warnings.bi_due_hours",
    "open_session_warning_hours": "warnings.open_session_hours",
    "min_ci_type": "ci.min_type",
    "late_entry_minutes": "records.late_entry_minutes",
    "pin_lockout_attempts": "records.pin_lockout_attempts",
    "retention_years": "records.retention_years",
    "terminal_idle_minutes": "terminal.idle_minutes",
    "lab_result_days": "bi_lab.lab_result_days",
    "lab_receipt_days": "bi_lab.lab_receipt_days",
    "require_bi_expiry": "bi_lab.require_bi_expiry",
    "default_programs": "programs",
}

_PROGRAM_KEYS: Final = ("name", "temp_c", "hold_min")

# Upper bounds only refuse absurd values (a typo such as 70 instead of 7 is still accepted).
_MAX_DAYS: Final = 3660
_MAX_HOURS: Final = 24 * 366
_MAX_BIS: Final = 20
_MAX_TEMP_C: Final = 150.0  # steam sterilization runs at 121-137 °C
_MIN_TEMP_C: Final = 100.0  # at or below boiling nothing is sterilized
_MAX_HOLD_MIN: Final = 24 * 60.0
_MAX_TEXT: Final = 2000

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PROGRAM_NAME_RE: Final = re.compile(r"[^\s\x00-\x1f\x7f]{1,64}")
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class RulePackError(ValueError):
    """A rule pack that cannot be used. The message names the pack and every bad key."""

    def __init__(self, origin: str, problems: tuple[str, ...]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__(f"rule pack {origin}: {'; '.join(problems)}")


@dataclass(frozen=True)
class Program:
    """A sterilizer program profile: the minimum temperature and holding time of a pass."""

    name: str
    temp_c: float
    hold_min: float


@dataclass(frozen=True)
class RulePack:
    """The numbers of one jurisdiction. Field meanings and sources: docs/rules.md."""

    name: str
    source: str
    bi_interval_days: int
    requalify_bis: int
    requalify_bis_after_repair: int
    air_removal_types: frozenset[str]
    pack_shelf_life_days: int | None
    cartridge_expiry_warning_days: int
    bi_due_warning_hours: int
    open_session_warning_hours: int
    min_ci_type: int | None
    default_programs: tuple[Program, ...]
    text: str = field(repr=False)
    # Added after packs were first stored in databases: optional, with these defaults, so a pack
    # stored by an older release still parses and keeps its meaning.
    late_entry_minutes: int = 60
    pin_lockout_attempts: int = 5
    terminal_idle_minutes: float = 5.0
    # [bi_lab] (issue 16): mail-in spore tests and the BI's expiry.
    lab_result_days: int = 10
    lab_receipt_days: int = 30
    require_bi_expiry: bool = False
    retention_years: int = 3  # how long records are kept (the monthly report says until when)


def load_pack(name_or_path: str | os.PathLike[str]) -> RulePack:
    """Load a built-in pack by name (see BUILTIN) or a custom pack from a ``.toml`` file.

    A string that is not a built-in name is a path when it names an existing file, ends in
    ``.toml`` or contains a path separator; anything else is an unknown built-in name.
    """
    if isinstance(name_or_path, str) and name_or_path in BUILTIN:
        return _load_builtin(name_or_path)
    path = os.fspath(name_or_path)
    if not _looks_like_path(path):
        names = ", ".join(BUILTIN)
        raise RulePackError(
            repr(path), (f"no such built-in pack; give one of {names} or a path to a .toml file",)
        )
    text = _read_file(path)
    pack = parse_pack(text, path)
    if pack.name in BUILTIN and text != _load_builtin(pack.name).text:
        raise RulePackError(
            path,
            (
                f"pack.name {pack.name!r} is the name of a built-in pack; "
                "give an edited pack a name of its own",
            ),
        )
    return pack


def parse_pack(text: str, origin: str) -> RulePack:
    """Parse and validate pack TOML. ``origin`` (a file name, a pack name) is used in messages.

    Every key must be present; unknown keys, wrong types (a boolean is not an integer) and
    out-of-range, NaN or infinite numbers are refused, all of them listed in one error.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulePackError(origin, (f"invalid TOML: {exc}",)) from None
    return _Validator(origin).pack(data, text)


@cache
def _load_builtin(name: str) -> RulePack:
    from importlib.resources import files

    resource = files("sterilog") / "rulepacks" / f"{name}.toml"
    try:
        text = resource.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:  # a broken installation, not a user's mistake
        raise RulePackError(name, (f"cannot read the built-in pack: {exc}",)) from None
    pack = parse_pack(text, name)
    if pack.name != name:
        raise RulePackError(name, (f"pack.name must be {name!r}, got {pack.name!r}",))
    return pack


def _looks_like_path(value: str) -> bool:
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return (
        value.lower().endswith(".toml")
        or any(sep in value for sep in separators)
        or os.path.isfile(value)
    )


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise RulePackError(path, ("file not found",)) from None
    except IsADirectoryError:
        raise RulePackError(path, ("is a directory, not a .toml file",)) from None
    except OSError as exc:
        raise RulePackError(path, (f"cannot read the file: {exc.strerror or exc}",)) from None
    try:
        # utf-8-sig: editors on Windows like to start a file with a byte-order mark.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RulePackError(path, (f"not UTF-8 text (byte {exc.start})",)) from None


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


_SECTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "pack": ("name", "source"),
    "bi": ("interval_days", "requalify_bis", "requalify_bis_after_repair"),
    "air_removal": ("sterilizer_types",),
    "packs": ("shelf_life_days",),
    "ci": ("min_type",),
    "warnings": ("cartridge_expiry_days", "bi_due_hours", "open_session_hours"),
}
TERMINAL_IDLE_DEFAULT: Final = 5.0

# Optional tables: keys that may be left out (the RulePack default applies).
_OPTIONAL_SECTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "records": ("late_entry_minutes", "pin_lockout_attempts", "retention_years"),
    "terminal": ("idle_minutes",),
    "bi_lab": ("lab_result_days", "lab_receipt_days", "require_bi_expiry"),
}


class _Validator:
    """Collects every problem of one pack, so a user fixes them all in one go."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.problems: list[str] = []

    def pack(self, data: dict[str, Any], text: str) -> RulePack:
        tables = self._tables(data)
        programs = self._programs(data.get("programs"))

        def get(key: str, check: Callable[[str, object], Any]) -> Any:
            section, _, name = key.partition(".")
            table = tables.get(section, {})
            # A missing key was reported already; its placeholder is never returned.
            return check(key, table[name]) if name in table else None

        pack = RulePack(
            name=get("pack.name", self._name),
            source=get("pack.source", self._text),
            bi_interval_days=get("bi.interval_days", self._positive(_MAX_DAYS)),
            requalify_bis=get("bi.requalify_bis", self._positive(_MAX_BIS)),
            requalify_bis_after_repair=get(
                "bi.requalify_bis_after_repair", self._positive(_MAX_BIS)
            ),
            air_removal_types=get("air_removal.sterilizer_types", self._types),
            pack_shelf_life_days=get("packs.shelf_life_days", self._zero_is_none(_MAX_DAYS)),
            cartridge_expiry_warning_days=get(
                "warnings.cartridge_expiry_days", self._positive(_MAX_DAYS)
            ),
            bi_due_warning_hours=get("warnings.bi_due_hours", self._positive(_MAX_HOURS)),
            open_session_warning_hours=get(
                "warnings.open_session_hours", self._positive(_MAX_HOURS)
            ),
            min_ci_type=get("ci.min_type", self._zero_is_none(6)),
            default_programs=programs,
            text=text,
            late_entry_minutes=get(
                "records.late_entry_minutes", self._positive(_MAX_DAYS * 24 * 60)
            )
            or 60,
            pin_lockout_attempts=get("records.pin_lockout_attempts", self._positive(100)) or 5,
            retention_years=get("records.retention_years", self._positive(100)) or 3,
            terminal_idle_minutes=get(
                "terminal.idle_minutes", self._number(0.0, 24 * 60.0, "a number of minutes")
            )
            or TERMINAL_IDLE_DEFAULT,
            lab_result_days=get("bi_lab.lab_result_days", self._positive(_MAX_DAYS)) or 10,
            lab_receipt_days=get("bi_lab.lab_receipt_days", self._positive(_MAX_DAYS)) or 30,
            require_bi_expiry=bool(get("bi_lab.require_bi_expiry", self._bool)),
        )
        if not self.problems and pack.requalify_bis_after_repair < pack.requalify_bis:
            self.problems.append(
                "bi.requalify_bis_after_repair must be at least bi.requalify_bis "
                f"({pack.requalify_bis}), got {pack.requalify_bis_after_repair}"
            )
        if self.problems:
            self._raise()
        return pack

    def _raise(self) -> None:
        raise RulePackError(self.origin, tuple(self.problems))

    def _tables(self, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
        tables: dict[str, dict[str, Any]] = {}
        for key in data:
            if key not in _SECTIONS and key not in _OPTIONAL_SECTIONS and key != "programs":
                self._unknown(key, "", (*_SECTIONS, *_OPTIONAL_SECTIONS, "programs"))
        for section, keys in _OPTIONAL_SECTIONS.items():
            table = data.get(section)
            if table is None:
                continue
            if not isinstance(table, dict):
                self.problems.append(f"{section} must be a table, got {_describe(table)}")
                continue
            for key in table:
                if key not in keys:
                    self._unknown(key, section, keys)
            tables[section] = table
        for section, keys in _SECTIONS.items():
            table = data.get(section)
            if table is None:
                self.problems.append(f"missing table [{section}]")
                continue
            if not isinstance(table, dict):
                self.problems.append(f"{section} must be a table, got {_describe(table)}")
                continue
            for key in table:
                if key not in keys:
                    self._unknown(key, section, keys)
            for key in keys:
                if key not in table:
                    self.problems.append(f"missing key {section}.{key}")
            tables[section] = table
        return tables

    def _unknown(self, key: str, section: str, known: tuple[str, ...]) -> None:
        import difflib  # only on this error path: keeps the module cheap to import

        prefix = f"{section}." if section else ""
        message = f"unknown key {prefix}{key}"
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            message += f" (did you mean {prefix}{close[0]}?)"
        self.problems.append(message)

    def _programs(self, value: object) -> tuple[Program, ...]:
        if value is None:
            self.problems.append("missing [[programs]]: give at least one program")
            return ()
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.problems.append(
                f"programs must be an array of tables ([[programs]]), got {_describe(value)}"
            )
            return ()
        if not value:
            self.problems.append("programs must list at least one program")
            return ()
        programs: list[Program] = []
        seen: set[str] = set()
        temp = self._number(_MIN_TEMP_C, _MAX_TEMP_C, "a temperature in °C")
        hold = self._number(0.0, _MAX_HOLD_MIN, "a number of minutes")
        for number, item in enumerate(value, start=1):
            where = f"programs[{number}]"
            for key in item:
                if key not in _PROGRAM_KEYS:
                    self._unknown(key, where, _PROGRAM_KEYS)
            missing = [key for key in _PROGRAM_KEYS if key not in item]
            for key in missing:
                self.problems.append(f"missing key {where}.{key}")
            if missing:
                continue
            name = self._program_name(f"{where}.name", item["name"])
            if name is not None and name in seen:
                self.problems.append(f"{where}.name {name!r} is given twice")
            elif name is not None:
                seen.add(name)
            program = Program(
                name=name or "",
                temp_c=temp(f"{where}.temp_c", item["temp_c"]),
                hold_min=hold(f"{where}.hold_min", item["hold_min"]),
            )
            programs.append(program)
        return tuple(programs)

    # Checks: each returns the value (or a placeholder after recording a problem).

    def _name(self, key: str, value: object) -> str:
        if isinstance(value, str) and _NAME_RE.fullmatch(value):
            return value
        self.problems.append(
            f"{key} must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or "
            f"digit, got {_describe(value)}"
        )
        return ""

    def _program_name(self, key: str, value: object) -> str | None:
        if isinstance(value, str) and _PROGRAM_NAME_RE.fullmatch(value):
            return value
        self.problems.append(
            f"{key} must be 1-64 characters without spaces or control characters, "
            f"got {_describe(value)}"
        )
        return None

    def _text(self, key: str, value: object) -> str:
        if (
            isinstance(value, str)
            and value.strip()
            and len(value) <= _MAX_TEXT
            and not _CONTROL_RE.search(value)
        ):
            return value
        self.problems.append(
            f"{key} must be non-empty text of at most {_MAX_TEXT} characters without control "
            f"characters, got {_describe(value)}"
        )
        return ""

    def _integer(self, key: str, value: object, low: int, high: int, what: str) -> int | None:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            self.problems.append(f"{key} must be {what}, got {_describe(value)}")
            return None
        if value > high:
            self.problems.append(f"{key} must be at most {high}, got {value}")
            return None
        return value

    def _bool(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            self.problems.append(f"{key} must be true or false, got {_describe(value)}")
            return False
        return value

    def _positive(self, high: int) -> Callable[[str, object], int]:
        def check(key: str, value: object) -> int:
            result = self._integer(key, value, 1, high, "a positive integer")
            return 0 if result is None else result

        return check

    def _zero_is_none(self, high: int) -> Callable[[str, object], int | None]:
        def check(key: str, value: object) -> int | None:
            what = f"an integer from 0 (none) to {high}"
            return self._integer(key, value, 0, high, what) or None

        return check

    def _number(self, low: float, high: float, what: str) -> Callable[[str, object], float]:
        def check(key: str, value: object) -> float:
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and low < value <= high
            ):
                return float(value)
            self.problems.append(
                f"{key} must be {what} above {low:g} and at most {high:g}, got {_describe(value)}"
            )
            return math.nan

        return check

    def _types(self, key: str, value: object) -> frozenset[str]:
        allowed = ", ".join(f'"{kind}"' for kind in sorted(STERILIZER_TYPES))
        if not isinstance(value, list) or not all(
            isinstance(item, str) and item in STERILIZER_TYPES for item in value
        ):
            self.problems.append(
                f"{key} must be a list of sterilizer types ({allowed}), got {_show_list(value)}"
            )
            return frozenset()
        if len(set(value)) != len(value):
            self.problems.append(f"{key} lists a type twice: {_show_list(value)}")
        return frozenset(value)


def _show_list(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(repr(item) for item in value) + "]"
    return _describe(value)
