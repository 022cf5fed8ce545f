"""A clinic built through the real CLI, shared by the test modules that need the same one, and
the cartridge barcodes they scan."""

from __future__ import annotations

from conftest import Cli

GTIN = "09506000134352"


def hri(
    lot: str, serial: str | int | None = None, expiry: str = "271231", gtin: str = GTIN
) -> str:
    """A cartridge's GS1 barcode in human-readable form; an int serial is zero-padded (0007)."""
    if isinstance(serial, int):
        serial = f"{serial:04d}"
    return f"(01){gtin}(17){expiry}(10){lot}" + (f"(21){serial}" if serial else "")


def registers(
    cli: Cli,
    *,
    packs: tuple[str, ...] = ("P1", "P2", "P3"),
    serials: int = 5,
    now: str | None = None,
) -> None:
    """The registers of a one-room clinic: practitioner ann, room R1, pen SN-1, sterilizer AC1
    (type B), the packs (tweezers), disinfectant Clinell (1 min) and serialized cartridges
    LOTA 0001..`serials`."""
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner", now=now)
    cli.ok("room", "add", "R1", now=now)
    cli.ok("device", "add", "SN-1", "--model", "Pen", now=now)
    cli.ok("sterilizer", "add", "AC1", "--model", "Vacuklav", "--type", "B", now=now)
    for p in packs:
        cli.ok("pack", "add", p, "--contents", "tweezers", now=now)
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "1", now=now)
    cli.ok("cartridge", "receive", *(hri("LOTA", i) for i in range(1, serials + 1)), now=now)
