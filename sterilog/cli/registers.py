"""Registers: staff, room, device, sterilizer, pack, disinfectant (SPEC §6.1)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from sterilog.cli.app import App, pass_app
from sterilog.cli.params import NUMBER
from sterilog.clock import parse_at, parse_date
from sterilog.compliance.vocab import ROLES
from sterilog.errors import UserError
from sterilog.services import registers as reg
from sterilog.services import validate as v
from sterilog.services.people import DAILY, MANAGER


def _table(rows: list[dict[str, Any]], cols: list[str]) -> list[str]:
    if not rows:
        return ["(none)"]
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in cols}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in cols).rstrip()]
    for r in rows:
        lines.append("  ".join(_cell(r.get(c)).ljust(widths[c]) for c in cols).rstrip())
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


# --- staff -------------------------------------------------------------------------------------


@click.group()
def staff() -> None:
    """Staff register: practitioners, managers, inspectors."""


@staff.command(
    "add",
    epilog="Example: sterilog --operator alice staff add bob --name 'Bob Jones' "
    "--role practitioner --license PR-1234 --license-expires 2027-06-30 --max-depth-mm 1.5",
)
@click.argument("staff_id")
@click.option("--name", required=True, help="Full name as printed on reports.")
@click.option("--role", required=True, type=click.Choice(list(ROLES)))
@click.option("--license", "license_no", help="Licence number.")
@click.option("--license-expires", help="Licence expiry date (YYYY-MM-DD).")
@click.option("--max-depth-mm", type=NUMBER, help="Deepest needle depth this person may use.")
@click.option(
    "--pin", is_flag=True, help="Set a PIN: asked at a terminal, else read from STERILOG_NEW_PIN."
)
@pass_app
def staff_add(
    app: App,
    staff_id: str,
    name: str,
    role: str,
    license_no: str | None,
    license_expires: str | None,
    max_depth_mm: float | None,
    pin: bool,
) -> None:
    """Add a staff member (managers only). On a live database a manager needs --pin."""
    expires = (
        parse_date(license_expires, "--license-expires") if license_expires is not None else None
    )
    new_pin = _new_pin(staff_id) if pin else None
    if new_pin is not None:
        from sterilog.services.people import check_pin_format

        check_pin_format(new_pin)
    with app.writing(MANAGER, "add staff") as ctx:
        row = reg.add_staff(
            ctx,
            staff_id,
            name=name,
            role=role,
            license_no=license_no,
            license_expires=expires,
            max_depth_mm=max_depth_mm,
            pin=new_pin,
        )
        data = {"id": row.code, "name": row.name, "role": row.role}
    app.emit(data, f"Added {data['role']} {data['id']} ({data['name']}).")


def _new_pin(staff_id: str) -> str:
    env = os.environ.get("STERILOG_NEW_PIN")
    if env:
        return env
    if not sys.stdin.isatty():
        raise UserError("a new PIN needs a terminal to ask for it, or STERILOG_NEW_PIN")
    value: str = click.prompt(
        f"New PIN for {staff_id}", hide_input=True, confirmation_prompt=True, err=True
    )
    return value


@staff.command(
    "pin",
    epilog="Examples: sterilog --operator ann staff pin ann   (your own: old PIN, then the new "
    "one)\n\nsterilog --operator alice staff pin ann   (a manager resets Ann's PIN)",
)
@click.argument("staff_id")
@pass_app
def staff_pin(app: App, staff_id: str) -> None:
    """Set or change a PIN. Your own: your current PIN first (STERILOG_PIN or the prompt), then
    the new one (STERILOG_NEW_PIN or a hidden prompt). A manager may reset another's PIN, which
    also lifts a lockout. Audited; the PIN itself is never shown or stored in the clear."""
    from sterilog.services import people

    code = v.ident(staff_id, "staff ID")
    new_pin: list[str] = []

    def ask() -> None:
        new_pin.append(_new_pin(code))
        people.check_pin_format(new_pin[0])

    own = code == app.operator
    roles, what = (frozenset(people.ROLES), "set PINs") if own else (MANAGER, "set another's PIN")
    with app.writing(roles, what, after_auth=ask) as ctx:
        people.set_pin(ctx, code, new_pin[0], None)
    app.emit({"id": code, "pin_set": True}, f"PIN set for {code}.")


@staff.command(
    "unlock",
    epilog="Example: sterilog --operator alice staff unlock ann",
)
@click.argument("staff_id")
@pass_app
def staff_unlock(app: App, staff_id: str) -> None:
    """Lift a lockout after too many wrong PINs (managers only). Audited."""
    from sterilog.services import people

    code = v.ident(staff_id, "staff ID")
    with app.writing(MANAGER, "unlock staff") as ctx:
        people.unlock(ctx, code)
    app.emit({"id": code, "locked": False}, f"Unlocked {code}; the wrong-PIN count restarts.")


@staff.command(
    "deactivate",
    epilog="Example: sterilog --operator alice staff deactivate bob --reason 'left the clinic'",
)
@click.argument("staff_id")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@pass_app
def staff_deactivate(app: App, staff_id: str, reason: str) -> None:
    """Deactivate someone who left: they can no longer act; their records stay theirs."""
    with app.writing(MANAGER, "deactivate staff") as ctx:
        reg.deactivate_staff(ctx, staff_id, reason=reason)
    app.emit({"id": staff_id, "active": False}, f"Deactivated {staff_id}.")


@staff.command(
    "update",
    epilog="Examples:\n\n  sterilog --operator alice staff update bob --license PR-1234 "
    "--license-expires 2028-06-30   (a renewed licence)\n\n"
    "  sterilog --operator alice staff update bob --name 'Bob Smith' --max-depth-mm 2.0",
)
@click.argument("staff_id")
@click.option("--name", help="Full name as printed on reports.")
@click.option("--license", "license_no", help="Licence number.")
@click.option("--license-expires", help="Licence expiry date (YYYY-MM-DD).")
@click.option("--max-depth-mm", type=NUMBER, help="Deepest needle depth this person may use.")
@click.option("--role", type=click.Choice(list(ROLES)))
@pass_app
def staff_update(
    app: App,
    staff_id: str,
    name: str | None,
    license_no: str | None,
    license_expires: str | None,
    max_depth_mm: float | None,
    role: str | None,
) -> None:
    """Correct or renew a staff member's entry (managers only): recorded as a new dated
    change; the gate uses it from now on, while reports and trace-back show what was in force
    at each session's time. A PIN is changed with `staff pin`."""
    from sterilog.services import corrections

    expires = (
        parse_date(license_expires, "--license-expires") if license_expires is not None else None
    )
    with app.writing(MANAGER, "correct staff") as ctx:
        change = corrections.update_staff(
            ctx,
            staff_id,
            name=name,
            role=role,
            license_no=license_no,
            license_expires=expires,
            max_depth_mm=max_depth_mm,
        )
        row = next(r for r in reg.list_staff(ctx.session) if r["id"] == staff_id)
    app.emit(
        {**row, "change_id": change.id},
        f"Updated {staff_id} (change {change.id}): {row['name']}, licence "
        f"{row['license'] or '-'} until {row['license_expires'] or '-'}, "
        f"max depth {row['max_depth_mm'] or '-'} mm, role {row['role']}.",
    )


@staff.command("reinstate", epilog="Example: sterilog --operator alice staff reinstate bob")
@click.argument("staff_id")
@pass_app
def staff_reinstate(app: App, staff_id: str) -> None:
    """Undo a deactivation (managers only): they may act again from now on; the deactivation
    stays on record."""
    from sterilog.services import corrections

    with app.writing(MANAGER, "reinstate staff") as ctx:
        change = corrections.reinstate_staff(ctx, staff_id)
    app.emit(
        {"id": staff_id, "active": True, "change_id": change.id},
        f"Reinstated {staff_id} (change {change.id}).",
    )


@staff.command("list", epilog="Example: sterilog --json staff list")
@pass_app
def staff_list(app: App) -> None:
    """List staff."""
    with app.reading() as ctx:
        rows = reg.list_staff(ctx.session)
    app.emit(
        {"staff": rows},
        _table(
            rows, ["id", "name", "role", "license", "license_expires", "max_depth_mm", "active"]
        ),
    )


# --- rooms -------------------------------------------------------------------------------------


@click.group()
def room() -> None:
    """Treatment rooms."""


@room.command("add", epilog="Example: sterilog --operator alice room add R1 --name 'Room 1'")
@click.argument("room_id")
@click.option("--name", help="Display name.")
@pass_app
def room_add(app: App, room_id: str, name: str | None) -> None:
    """Add a treatment room (managers only)."""
    with app.writing(MANAGER, "add rooms") as ctx:
        row = reg.add_room(ctx, room_id, name=name)
        data = {"id": row.code, "name": row.name}
    app.emit(data, f"Added room {data['id']}.")


@room.command("list", epilog="Example: sterilog room list")
@pass_app
def room_list(app: App) -> None:
    """List rooms."""
    with app.reading() as ctx:
        rows = reg.list_rooms(ctx.session)
    app.emit({"rooms": rows}, _table(rows, ["id", "name"]))


# --- devices -----------------------------------------------------------------------------------


@click.group()
def device() -> None:
    """Microneedling pens (handpieces), by serial."""


@device.command(
    "add",
    epilog="Example: sterilog --operator alice device add SN-001 "
    "--model 'DermaPen 4' --max-depth-mm 2.5",
)
@click.argument("serial")
@click.option("--model", required=True, help="Make and model.")
@click.option("--max-depth-mm", type=NUMBER, help="Labelled maximum needle depth.")
@pass_app
def device_add(app: App, serial: str, model: str, max_depth_mm: float | None) -> None:
    """Add a device (managers only)."""
    with app.writing(MANAGER, "add devices") as ctx:
        row = reg.add_device(ctx, serial, model=model, max_depth_mm=max_depth_mm)
        data = {"id": row.code, "model": row.model, "max_depth_mm": row.max_depth_mm}
    app.emit(data, f"Added device {data['id']} ({data['model']}).")


@device.command(
    "retire",
    epilog="Example: sterilog --operator alice device retire SN-001 --reason 'motor failure'",
)
@click.argument("serial")
@click.option("--reason", required=True, help="Why it is taken out of use.")
@pass_app
def device_retire(app: App, serial: str, reason: str) -> None:
    """Retire a device: the gate refuses it from now on (managers only)."""
    with app.writing(MANAGER, "retire devices") as ctx:
        reg.retire_device(ctx, serial, reason=reason)
    app.emit({"id": serial, "retired": True}, f"Retired device {serial}.")


@device.command(
    "update",
    epilog="Example: sterilog --operator alice device update SN-001 --max-depth-mm 2.0",
)
@click.argument("serial")
@click.option("--max-depth-mm", type=NUMBER, help="Labelled maximum needle depth.")
@click.option("--model", help="Make and model.")
@pass_app
def device_update(app: App, serial: str, max_depth_mm: float | None, model: str | None) -> None:
    """Correct a device's entry (managers only), as a new dated change in force from now."""
    from sterilog.services import corrections

    with app.writing(MANAGER, "correct devices") as ctx:
        change = corrections.update_device(ctx, serial, model=model, max_depth_mm=max_depth_mm)
        row = next(r for r in reg.list_devices(ctx.session) if r["id"] == serial)
    app.emit(
        {**row, "change_id": change.id},
        f"Updated device {serial} (change {change.id}): {row['model']}, max depth "
        f"{row['max_depth_mm'] or '-'} mm.",
    )


@device.command("reinstate", epilog="Example: sterilog --operator alice device reinstate SN-001")
@click.argument("serial")
@pass_app
def device_reinstate(app: App, serial: str) -> None:
    """Put a retired device back in service (managers only): the gate accepts it again from
    now on; the retirement stays on record."""
    from sterilog.services import corrections

    with app.writing(MANAGER, "reinstate devices") as ctx:
        change = corrections.reinstate_device(ctx, serial)
    app.emit(
        {"id": serial, "retired": False, "change_id": change.id},
        f"Reinstated device {serial} (change {change.id}); clean it before its next client.",
    )


@device.command("list", epilog="Example: sterilog device list")
@pass_app
def device_list(app: App) -> None:
    """List devices."""
    with app.reading() as ctx:
        rows = reg.list_devices(ctx.session)
    app.emit({"devices": rows}, _table(rows, ["id", "model", "max_depth_mm", "retired"]))


# --- sterilizers -------------------------------------------------------------------------------


@click.group()
def sterilizer() -> None:
    """Tabletop steam sterilizers, their programs and service log."""


@sterilizer.command(
    "add",
    epilog="Example: sterilog --operator alice sterilizer add AC1 "
    "--model 'Melag Vacuklav 23B+' --type B --serial 2301-77",
)
@click.argument("sterilizer_id")
@click.option("--model", required=True, help="Make and model.")
@click.option(
    "--type", "type_", required=True, type=click.Choice(["B", "N", "S"]), help="EN 13060 type."
)
@click.option("--serial", help="Manufacturer serial number.")
@pass_app
def sterilizer_add(
    app: App, sterilizer_id: str, model: str, type_: str, serial: str | None
) -> None:
    """Add a sterilizer, with the rule pack's default programs (managers only)."""
    with app.writing(MANAGER, "add sterilizers") as ctx:
        row = reg.add_sterilizer(ctx, sterilizer_id, model=model, type_=type_, serial=serial)
        data = {"id": row.code, "model": row.model, "type": row.type}
        progs = [p.name for p in ctx.clinic.rules.default_programs]
    app.emit(
        data,
        f"Added sterilizer {data['id']} (type {data['type']}); programs: "
        + (", ".join(progs) or "none"),
    )


@sterilizer.command(
    "update",
    epilog="Example: sterilog --operator alice sterilizer update AC1 --serial 601362",
)
@click.argument("sterilizer_id")
@click.option(
    "--serial",
    required=True,
    help="Manufacturer serial, as the device prints it in its cycle records.",
)
@pass_app
def sterilizer_update(app: App, sterilizer_id: str, serial: str) -> None:
    """Set a sterilizer's serial (managers only). The old value stays in the record; `cycle
    import` matches the device's records against the serial in force."""
    from sterilog.services import device_import

    with app.writing(MANAGER, "update sterilizers") as ctx:
        row = device_import.update_serial(ctx, sterilizer_id, serial)
        data = {"id": sterilizer_id, "serial": row.serial}
    app.emit(data, f"Sterilizer {sterilizer_id}'s serial is now {row.serial}.")


@sterilizer.command(
    "program",
    epilog="Example: sterilog --operator alice sterilizer program "
    "AC1 wrapped-134 --temp-c 134 --hold-min 3.5",
)
@click.argument("sterilizer_id")
@click.argument("name")
@click.option("--temp-c", type=NUMBER, required=True, help="Minimum temperature (°C).")
@click.option("--hold-min", type=NUMBER, required=True, help="Minimum holding time (minutes).")
@pass_app
def sterilizer_program(
    app: App, sterilizer_id: str, name: str, temp_c: float, hold_min: float
) -> None:
    """Add a program profile to a sterilizer (managers only)."""
    with app.writing(MANAGER, "add sterilizer programs") as ctx:
        p = reg.add_program(ctx, sterilizer_id, name, temp_c=temp_c, hold_min=hold_min)
        data = {
            "sterilizer": sterilizer_id,
            "name": p.name,
            "temp_c": p.temp_c,
            "hold_min": p.hold_min,
        }
    app.emit(
        data,
        f"Added program {name} to {sterilizer_id}: "
        f"{data['temp_c']:g} °C / {data['hold_min']:g} min.",
    )


@sterilizer.command(
    "service",
    epilog="Example: sterilog --operator alice sterilizer service "
    "AC1 --note 'door seal replaced' --repair",
)
@click.argument("sterilizer_id")
@click.option("--note", required=True, help="What was done.")
@click.option(
    "--repair", is_flag=True, help="A major repair: the sterilizer needs requalification BIs."
)
@click.option("--at", "at_raw", help="When it happened (ISO 8601), if earlier than now.")
@pass_app
def sterilizer_service(
    app: App, sterilizer_id: str, note: str, repair: bool, at_raw: str | None
) -> None:
    """Log maintenance or a repair."""
    with app.writing(DAILY, "log sterilizer service") as ctx:
        at = parse_at(at_raw, ctx.clinic.tz) if at_raw is not None else None
        row = reg.service_sterilizer(ctx, sterilizer_id, note=note, repair=repair, at=at)
        data = {"id": row.id, "service_id": row.id, "sterilizer": sterilizer_id, "repair": repair}
    msg = f"Logged service {row.id} of {sterilizer_id}."
    if repair:
        msg += " Repair: requalification BIs are needed before it is released."
    app.emit(data, msg)


@sterilizer.command("list", epilog="Example: sterilog sterilizer list")
@pass_app
def sterilizer_list(app: App) -> None:
    """List sterilizers and their programs."""
    with app.reading() as ctx:
        rows = reg.list_sterilizers(ctx.session)
    shown = [
        {
            **r,
            "programs": [
                f"{p['name']} {p['temp_c']:g}°C/{p['hold_min']:g}min" for p in r["programs"]
            ],
        }
        for r in rows
    ]
    app.emit({"sterilizers": rows}, _table(shown, ["id", "model", "type", "serial", "programs"]))


# --- packs -------------------------------------------------------------------------------------


@click.group()
def pack() -> None:
    """Instrument packs (sets sterilized together), by pack ID."""


@pack.command(
    "add", epilog="Example: sterilog --operator alice pack add P-001 --contents 'tweezers, bowl'"
)
@click.argument("pack_id")
@click.option("--contents", required=True, help="What is in the pack.")
@pass_app
def pack_add(app: App, pack_id: str, contents: str) -> None:
    """Register a pack."""
    with app.writing(DAILY, "add packs") as ctx:
        row = reg.add_pack(ctx, pack_id, contents=contents)
        data = {"id": row.code, "contents": row.contents}
    app.emit(data, f"Added pack {data['id']}.")


@pack.command("list", epilog="Example: sterilog pack list")
@pass_app
def pack_list(app: App) -> None:
    """List packs."""
    with app.reading() as ctx:
        rows = reg.list_packs(ctx.session)
    app.emit({"packs": rows}, _table(rows, ["id", "contents"]))


# --- disinfectants -----------------------------------------------------------------------------


@click.group()
def disinfectant() -> None:
    """Registered disinfectants and their label contact times."""


@disinfectant.command(
    "add",
    epilog="Example: sterilog --operator alice disinfectant add "
    "'Clinell Universal' --contact-min 1 --reg-no 12345 --level intermediate",
)
@click.argument("name")
@click.option("--contact-min", type=NUMBER, required=True, help="Label contact (wet) time, min.")
@click.option("--reg-no", help="Registration number (e.g. EPA Reg. No.).")
@click.option("--level", type=click.Choice(["low", "intermediate", "high"]))
@pass_app
def disinfectant_add(
    app: App, name: str, contact_min: float, reg_no: str | None, level: str | None
) -> None:
    """Register a disinfectant product."""
    with app.writing(DAILY, "add disinfectants") as ctx:
        row = reg.add_disinfectant(ctx, name, contact_min=contact_min, reg_no=reg_no, level=level)
        data = {"id": row.code, "name": row.code, "contact_min": row.contact_min}
    app.emit(data, f"Added disinfectant {data['name']} ({data['contact_min']:g} min contact).")


@disinfectant.command(
    "update",
    epilog="Example: sterilog --operator alice disinfectant update 'Clinell Universal' "
    "--contact-min 2",
)
@click.argument("name")
@click.option("--contact-min", type=NUMBER, help="Label contact (wet) time, min.")
@click.option("--reg-no", help="Registration number.")
@click.option("--level", type=click.Choice(["low", "intermediate", "high"]))
@pass_app
def disinfectant_update(
    app: App, name: str, contact_min: float | None, reg_no: str | None, level: str | None
) -> None:
    """Correct a product's entry (managers only), as a new dated change in force from now."""
    from sterilog.services import corrections

    with app.writing(MANAGER, "correct disinfectants") as ctx:
        change = corrections.update_disinfectant(
            ctx, name, contact_min=contact_min, reg_no=reg_no, level=level
        )
    app.emit(
        {"name": name, "change_id": change.id, "contact_min": change.contact_min},
        f"Updated disinfectant {name} (change {change.id}).",
    )


@disinfectant.command("list", epilog="Example: sterilog disinfectant list")
@pass_app
def disinfectant_list(app: App) -> None:
    """List disinfectants."""
    with app.reading() as ctx:
        rows = reg.list_disinfectants(ctx.session)
    app.emit({"disinfectants": rows}, _table(rows, ["id", "contact_min", "reg_no", "level"]))
