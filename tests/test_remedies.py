"""docs/gate.md's "what to do" lines work as written (issue 14): every command a remedy names is
a real `sterilog` command with real options, and gives everything the command requires (with
placeholders such as ID, or `...` where more options follow); a few are run as written."""

from __future__ import annotations

import re

import click
import pytest
from clinic import hri
from conftest import Cli
from test_gate import clean, codes, setup_clinic, start

from sterilog.cli import main
from sterilog.compliance.table import RULES

CTX = click.Context(main)
NAMED = re.compile(r"^(?:[A-Z][A-Z_]*|\.\.\.)$")  # a named placeholder
PLACEHOLDER = re.compile(r"^(?:[A-Z][A-Z_]*|\.\.\.|[a-z-]+(?:\|[a-z-]+)+)$")


def snippets() -> list[tuple[str, str]]:
    return [(r.code, s) for r in RULES for s in re.findall(r"`([^`]+)`", r.what_to_do)]


def every_option() -> set[str]:
    found: set[str] = set()

    def walk(cmd: click.Command) -> None:
        for p in cmd.params:
            found.update(o for o in p.opts if o.startswith("--"))
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(CTX):
                sub = cmd.get_command(CTX, name)
                if sub is not None:
                    walk(sub)

    walk(main)
    return found


def _argument(arguments: list[click.Argument], n: int) -> click.Argument | None:
    """The argument the `n`th positional value fills (a nargs=-1 one takes all the rest)."""
    for a in arguments:
        if a.nargs == -1:
            return a
        if n == 0:
            return a
        n -= 1
    return None


def problems(text: str) -> list[str]:
    """What is wrong with one remedy snippet run as `sterilog <text>` (empty: nothing)."""
    tokens = text.split()
    if tokens[0] == "sterilog":
        tokens = tokens[1:]
    if tokens[0].startswith("--"):  # an option on its own: some command has it
        return [] if tokens[0] in every_option() else [f"no command has option {tokens[0]}"]
    cmd: click.Command = main
    path = ["sterilog"]
    while isinstance(cmd, click.Group):
        if not tokens:
            return [f"`{' '.join(path)}` is a group, not a command"]
        sub = cmd.get_command(CTX, tokens[0])
        if sub is None:
            return [f"`{' '.join(path)}` has no command {tokens[0]!r}"]
        cmd, path, tokens = sub, [*path, tokens.pop(0)], tokens
    found: list[str] = []
    arguments = [p for p in cmd.params if isinstance(p, click.Argument)]
    opts = {o: p for p in cmd.params for o in p.opts}
    given: set[str] = set()
    positional = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("--"):
            name = tok.split("=", 1)[0]
            param = opts.get(name)
            if param is None:
                found.append(f"`{' '.join(path)}` has no option {name}")
            else:
                given.add(param.name or "")
                takes_value = isinstance(param, click.Option) and not param.is_flag
                if takes_value and "=" not in tok and i + 1 < len(tokens):
                    i += 1  # its value (a placeholder such as DATE or pass|fail)
                    value = tokens[i].strip("`,")
                    value = value if value == "..." else value.rstrip(".")
                    if isinstance(param.type, click.Choice) and not NAMED.match(value):
                        # a fixed choice: every alternative written (a|b) must be one of them
                        found += [
                            f"`{' '.join(path)}` {name}: {alt!r} is not one of its choices"
                            for alt in value.split("|")
                            if alt not in param.type.choices
                        ]
        elif tok != "...":
            arg = _argument(arguments, positional)
            positional += 1
            if arg is None:
                found.append(f"`{' '.join(path)}` takes fewer arguments than {text!r} gives")
            elif not PLACEHOLDER.match(tok) and not (
                isinstance(arg.type, click.Choice) and tok in arg.type.choices
            ):
                found.append(f"`{' '.join(path)}`: {tok!r} is not a value its {arg.name} takes")
        i += 1
    if "..." not in tokens:  # it must run as written (`...`: more options follow)
        for p in cmd.params:
            if isinstance(p, click.Option) and p.required and p.name not in given:
                found.append(f"{text!r} lacks {p.opts[0]}, which `{' '.join(path)}` requires")
        if positional < sum(1 for a in arguments if a.required):
            found.append(f"{text!r} lacks an argument `{' '.join(path)}` requires")
    return found


def test_the_remedies_name_commands_at_all() -> None:
    named = [s for _, s in snippets() if s.startswith("sterilog ")]
    assert len(named) >= 15, named  # the extraction below is not vacuous


@pytest.mark.parametrize(("code", "snippet"), snippets())
def test_each_remedy_names_a_real_command_with_its_required_options(
    code: str, snippet: str
) -> None:
    first = snippet.split()[0]
    if first != "sterilog" and not first.startswith("--") and first not in main.list_commands(CTX):
        pytest.skip(f"{snippet!r} is not a command")  # e.g. a rule pack key
    assert problems(snippet) == [], code


def test_the_checker_catches_what_does_not_run() -> None:
    assert problems("sterilog void bi-skip ID") != []  # --reason is required
    assert problems("sterilog staff renew ID") != []  # no such command
    assert problems("sterilog staff update ID --licence DATE") != []  # no such option
    assert problems("--no-such-option") != []
    assert problems("sterilog void bi-skip ID --reason TEXT") == []
    assert problems("sterilog clean device SERIAL --disinfectant ...") == []
    assert problems("sterilog void no-such-kind ID --reason TEXT") != []
    assert problems("sterilog device reinstate SERIAL EXTRA") != []


# --- the remedies run as written, on a scratch clinic (both backends) ---------------------------

LATER = "2026-11-24T10:00:00+00:00"


def _remedy(code: str) -> list[str]:
    """The command line of `code`'s remedy, as docs/gate.md prints it."""
    from sterilog.compliance.table import BY_CODE

    lines = [s for s in re.findall(r"`([^`]+)`", BY_CODE[code].what_to_do)
             if s.startswith("sterilog ")]  # fmt: skip
    return lines[0].split()[1:]  # the first one the line names


def _fill(args: list[str], values: dict[str, list[str]]) -> list[str]:
    return [v for a in args for v in values.get(a, [a])]


@pytest.mark.parametrize(
    "code",
    ["device-retired", "device-not-reprocessed", "room-not-cleaned", "practitioner-not-licensed"],
)
def test_a_blocked_start_goes_after_its_remedy_run_as_written(cli: Cli, code: str) -> None:
    setup_clinic(cli)
    who = "ann"
    values: dict[str, list[str]] = {"SERIAL": ["SN-1"], "ROOM": ["R1"]}
    if code == "device-retired":
        cli.ok("device", "retire", "SN-1", "--reason", "by mistake")
    elif code in ("device-not-reprocessed", "room-not-cleaned"):
        sid = start(cli, packs=("P1",))["session_id"]
        cli.ok("session", "end", str(sid), operator="ann")
        if code == "device-not-reprocessed":
            clean(cli, "R1", None, now=LATER)
            values["..."] = ["Clinell"]  # --disinfectant ...
        else:
            clean(cli, None, "SN-1", now=LATER)
            values["..."] = ["--disinfectant", "Clinell"]
    else:
        cli.ok("staff", "add", "carl", "--name", "Carl", "--role", "practitioner",
               "--license", "L-1", "--license-expires", "2026-11-01")
        who = "carl"
        values.update({"ID": ["carl"], "DATE": ["2028-01-01"]})
    scan = hri("LOTA", "0002")
    blocked = start(cli, scan=scan, client="C-2", operator=who, now=LATER, expect=3)
    assert code in codes(blocked)
    cli.ok(*_fill(_remedy(code), values), now=LATER)
    after = start(cli, scan=scan, client="C-2", operator=who, now=LATER, expect=0)
    assert after["decision"] == "go", after
