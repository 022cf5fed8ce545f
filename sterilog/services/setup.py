"""`sterilog init`: clinic settings and the first manager, in one audited write."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from sterilog.errors import UserError
from sterilog.models import Setting
from sterilog.services import validate as v
from sterilog.services.base import Ctx
from sterilog.services.registers import add_staff


@dataclass(frozen=True)
class InitRequest:
    clinic: str
    tz_name: str
    rules_name: str
    rules_toml: str
    scanner_gs: str | None
    manager: str
    manager_name: str
    training: bool = False
    manager_pin: str | None = None


def check_scanner_gs(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) != 1 or value.isalnum() or value.isspace() or ord(value) < 32:
        raise UserError(
            "--scanner-gs must be one printable character that cannot occur in a GS1 field "
            "value, e.g. '|' or '~'"
        )
    if value in "()/":
        raise UserError(f"--scanner-gs {value!r} clashes with GS1 human-readable or URI syntax")
    return value


def is_initialised(conn: Connection) -> bool:
    """True when the clinic settings exist. A database that holds any record (or any audit
    entry) but no settings is damaged: `init` must never re-initialise it (exit 1)."""
    from sterilog.errors import DatabaseError
    from sterilog.models import AUDITED, AuditEntry, Base
    from sterilog.services.base import DAMAGED

    insp = inspect(conn)
    if insp.has_table("settings") and (
        conn.execute(select(Setting.id).limit(1)).first() is not None
    ):
        return True
    for model in (AuditEntry, *AUDITED):
        table = Base.metadata.tables[str(model.__tablename__)]  # type: ignore[attr-defined]
        if insp.has_table(table.name):
            key = next(iter(table.primary_key.columns))
            if conn.execute(select(key).limit(1)).first() is not None:
                raise DatabaseError(DAMAGED)
    return False


def initialise(ctx: Ctx, req: InitRequest) -> Setting:
    setting = Setting(
        clinic_name=v.name(req.clinic, "--clinic"),
        tz=req.tz_name,
        rules_name=req.rules_name,
        rules_toml=req.rules_toml,
        scanner_gs=req.scanner_gs,
        recorded_at=ctx.now,
        training=req.training,
    )
    ctx.add(setting)
    ctx.audit("init", [setting])
    if req.manager_pin is None and not req.training:
        raise UserError(
            "a live database's first manager needs a PIN: give it at the prompt or in "
            "STERILOG_NEW_PIN (or make a training database with --training)"
        )
    add_staff(
        ctx,
        req.manager,
        name=req.manager_name,
        role="manager",
        pin=req.manager_pin,
        action="init.manager",
    )
    return setting


def change_scanner_gs(ctx: Ctx, value: str) -> tuple[str | None, str | None]:
    """`settings scanner-gs CHAR|none`: a new settings row (the newest is in force), audited;
    the row before it stays as it was. Returns (before, after)."""
    current = ctx.session.execute(select(Setting).order_by(Setting.id.desc()).limit(1)).scalar_one()
    wanted = None if value.strip().lower() == "none" else check_scanner_gs(value)
    if wanted == current.scanner_gs:
        shown = "none" if wanted is None else repr(wanted)
        raise UserError(f"the scanner's GS substitute is already {shown}; nothing recorded")
    setting = Setting(
        clinic_name=current.clinic_name,
        tz=current.tz,
        rules_name=current.rules_name,
        rules_toml=current.rules_toml,
        scanner_gs=wanted,
        recorded_at=ctx.now,
        training=current.training,
    )
    ctx.add(setting)
    ctx.audit("settings.scanner-gs", [setting])
    return current.scanner_gs, wanted
