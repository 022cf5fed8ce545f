"""Docs that cannot rot: generated pages match the code; every command is documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sterilog.cli import COMMANDS, main
from sterilog.docgen import all_commands

DOCS = Path(__file__).parent.parent / "docs"


@pytest.mark.parametrize("page", ["cli.md", "gate.md"])
def test_generated_pages_are_up_to_date(page: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", "--diff", str(DOCS / page)],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, (
        f"docs/{page} is stale: run `cog -r docs/{page}`\n{result.stdout}{result.stderr}"
    )


def test_every_command_of_the_spec_exists_and_is_in_the_reference() -> None:
    text = (DOCS / "cli.md").read_text()
    for name in COMMANDS:
        assert main.get_command(None, name) is not None, f"command {name} is missing"  # type: ignore[arg-type]
        assert f"## `sterilog {name}`" in text, f"docs/cli.md lacks {name}"


def test_every_command_has_help_with_an_example() -> None:
    for path, cmd in all_commands():
        if cmd.epilog is None and not getattr(cmd, "commands", None):
            pytest.fail(f"`{' '.join(path)}` has no example in its --help epilog")
        result = CliRunner().invoke(main, [*path[1:], "--help"])
        assert result.exit_code == 0, path
