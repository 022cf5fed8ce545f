"""Generators for docs/cli.md and docs/gate.md (run by cog; checked by tests/test_docs.py).

Regenerate with: cog -r docs/cli.md docs/gate.md
"""

from __future__ import annotations

import click


def _walk(cmd: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd, info_name=path[-1])
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += _walk(sub, [*path, name])
    return out


def all_commands() -> list[tuple[list[str], click.Command]]:
    from sterilog.cli import main

    return _walk(main, ["sterilog"])


def cli_markdown() -> str:
    from click.testing import CliRunner

    from sterilog.cli import main

    parts = []
    for path, _cmd in all_commands():
        result = CliRunner().invoke(
            main, [*path[1:], "--help"], terminal_width=100, env={"COLUMNS": "100"}
        )
        title = " ".join(path)
        parts.append(f"## `{title}`\n\n```\n{result.output.rstrip()}\n```\n")
    return "\n".join(parts)


_SCOPE_TITLES = {
    "gate": ("Gate rules (`check`, `session start`)", "Blocks when"),
    "cycle": ("Cycle rules (`cycle record`)", "Blocks when"),
    "gap": ("Monthly report gaps (`report monthly`)", "Gap when"),
    "status": ("Status items (`status`)", "Listed when"),
    "warning": ("Gate warnings (never block)", "Warns when"),
}


def gate_markdown() -> str:
    from sterilog.compliance.table import RULES, SCOPES

    parts = []
    for scope in SCOPES:
        title, when = _SCOPE_TITLES[scope]
        parts.append(f"### {title}\n")
        for r in RULES:
            if r.scope != scope:
                continue
            same = f"- **Same test as:** `{r.same_as}`\n" if r.same_as else ""
            parts.append(
                f"#### `{r.code}`\n\n"
                f"- **{when}:** {r.blocks_when}.\n"
                f"{same}"
                f"- **Why:** {r.why}\n"
                f"- **What to do:** {r.what_to_do}\n"
            )
    return "\n".join(parts)
