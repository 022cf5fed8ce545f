"""The command line: root group, lazy subcommands, and the one place errors become exit codes.

Subcommands are imported only when used, so `sterilog check` never pays for ReportLab or
Alembic (SPEC §10).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from typing import Any

import click

from sterilog.errors import Blocked, SterilogError

# name -> "module:attribute". A module that does not exist (yet) is simply not offered.
COMMANDS: dict[str, str] = {
    "init": "sterilog.cli.setup:init_cmd",
    "settings": "sterilog.cli.settings:settings",
    "scanner": "sterilog.cli.scanner:scanner",
    "db": "sterilog.cli.setup:db_group",
    "staff": "sterilog.cli.registers:staff",
    "room": "sterilog.cli.registers:room",
    "device": "sterilog.cli.registers:device",
    "sterilizer": "sterilog.cli.registers:sterilizer",
    "pack": "sterilog.cli.registers:pack",
    "disinfectant": "sterilog.cli.registers:disinfectant",
    "cartridge": "sterilog.cli.cartridge:cartridge",
    "cycle": "sterilog.cli.sterilization:cycle",
    "air-removal": "sterilog.cli.sterilization:air_removal",
    "bi": "sterilog.cli.sterilization:bi",
    "clean": "sterilog.cli.cleaning:clean",
    "check": "sterilog.cli.gate:check",
    "session": "sterilog.cli.gate:session",
    "terminal": "sterilog.cli.terminal:terminal",
    "incident": "sterilog.cli.gate:incident",
    "exposure": "sterilog.cli.exposure:exposure",
    "trace": "sterilog.cli.trace:trace",
    "status": "sterilog.cli.status:status",
    "audit": "sterilog.cli.audit:audit_group",
    "void": "sterilog.cli.records:void",
    "sign": "sterilog.cli.records:sign",
    "export": "sterilog.cli.records:export",
    "backup": "sterilog.cli.records:backup",
    "report": "sterilog.cli.report:report",
    "label": "sterilog.cli.report:label",
    "demo": "sterilog.cli.demo:demo",
    "attach": "sterilog.cli.attachments:attach",
    "attachment": "sterilog.cli.attachments:attachment",
    "notify": "sterilog.cli.notify:notify",
}


def _available(name: str) -> bool:
    module = COMMANDS[name].split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _load(name: str) -> click.Command | None:
    module_name, attr = COMMANDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise
    command = getattr(module, attr, None)
    return command if isinstance(command, click.Command) else None


def fail(message: str, code: int = 1) -> None:
    """Print `Error: ...` (and a JSON error object in --json mode) and exit with `code`."""
    ctx = click.get_current_context(silent=True)
    as_json = bool(ctx and ctx.find_root().params.get("json_output"))
    already = bool(ctx and getattr(ctx.find_root().obj, "emitted", False))
    if as_json and not already:
        click.echo(json.dumps({"error": message, "exit_code": code}))
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _has_undecodable(value: str) -> bool:
    """Bytes that were not UTF-8 arrive as lone surrogates (Python's surrogateescape)."""
    return any("\udc80" <= c <= "\udcff" for c in value)


def _nfc_arg(value: str) -> str:
    """An argument in NFC (`Zoe` + combining diaeresis and `Zoë` are one client), except the
    name of a file that exists on disk exactly as typed (it must still be found)."""
    import os
    import unicodedata

    normal = unicodedata.normalize("NFC", value)
    if normal != value and os.path.lexists(value):
        return value
    return normal


def clean_args(args: list[str]) -> list[str]:
    """Refuse non-UTF-8 arguments (exit 1, no traceback) and NFC-normalise the rest."""
    for n, arg in enumerate(args, 1):
        if _has_undecodable(arg):
            fail(
                f"argument {n} is not valid UTF-8 text (a Latin-1 terminal or scanner?); "
                "set the terminal or scanner to UTF-8 and type it again"
            )
    return [_nfc_arg(a) for a in args]


class Root(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, clean_args(list(args)))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return _load(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        from sqlalchemy import exc as sa_exc

        try:
            return super().invoke(ctx)
        except Blocked as blocked:
            _print_blocked(ctx, blocked)
            sys.exit(blocked.exit_code)
        except SterilogError as error:
            fail(error.message, error.exit_code)
        except sa_exc.SQLAlchemyError as error:
            from sterilog.db import friendly

            app = ctx.obj
            fail(friendly(error, getattr(app, "url", None)).message, 1)
        except BrokenPipeError:
            # The reader went away (`sterilog ... | head`): nothing to report, nothing to flush.
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(1)
        except OSError as error:
            fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), 1)
        except OverflowError:
            # A number too large for the database's 64-bit integers or a date past year 9999.
            fail("a number or date given is out of range", 1)
        except ValueError as error:
            if "null byte" not in str(error):
                raise
            fail("a path or value contains a NUL character", 1)
        return None


def _print_blocked(ctx: click.Context, blocked: Blocked) -> None:
    from sterilog.cli.verdict import headline, reason_lines, use_color

    reasons = [{"code": r.code, "message": r.message} for r in blocked.reasons]
    if ctx.params.get("json_output"):
        click.echo(json.dumps({"decision": "blocked", "reasons": reasons, "warnings": []}))
        click.echo(f"Error: {blocked.message}", err=True)
        return
    click.echo(headline("BLOCKED", False, use_color()))
    for line in reason_lines(blocked.reasons):
        click.echo(line)
    n = len(blocked.reasons)
    # The reasons are printed once, above; the error line only says so.
    what = blocked.message.split(":", 1)[0]
    click.echo(f"Error: {what}: {n} reason{'s' if n != 1 else ''} (listed above)", err=True)


@click.group(
    cls=Root,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: sterilog --db clinic.db --operator alice status",
)
@click.option(
    "--db",
    "db",
    envvar="STERILOG_DB",
    metavar="URL|PATH",
    help="SQLAlchemy URL or SQLite file path [env STERILOG_DB; default: the user data dir].",
)
@click.option("--json", "json_output", is_flag=True, help="Machine output: one JSON object.")
@click.option(
    "--operator",
    envvar="STERILOG_OPERATOR",
    metavar="ID",
    help="Acting staff ID [env STERILOG_OPERATOR]; every write needs one.",
)
@click.version_option(package_name="sterilog")
@click.pass_context
def main(ctx: click.Context, db: str | None, json_output: bool, operator: str | None) -> None:
    """sterilog: sterilization and equipment compliance log for microneedling clinics.

    Records every client session, or refuses it when anything is unsterile, expired, reused,
    recalled or uncleaned. STERILOG_NOW (ISO 8601 with offset) replaces the clock.
    """
    from sterilog.cli.app import App

    ctx.obj = App(db=db, json=json_output, operator=operator)
    ctx.call_on_close(ctx.obj.close)
