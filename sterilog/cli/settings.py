"""`sterilog settings …`: the one group of clinic settings that can change after `init`
(managers only; each change a new audited row, never an update)."""

from __future__ import annotations

import click

from sterilog.cli.notify import settings_notify
from sterilog.cli.scanner import scanner_gs


@click.group("settings")
def settings() -> None:
    """Clinic settings that can change after `init` (managers only; each change is a new
    audited record, never an update)."""


settings.add_command(scanner_gs)
settings.add_command(settings_notify)
