"""The one error hierarchy. The CLI root turns these into exit codes (SPEC §6) in one place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class SterilogError(Exception):
    """A failure the user can fix. Exit 1 unless a subclass says otherwise."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(SterilogError):
    """Bad input, a record that may not be made, a refused permission: exit 1."""


class UnknownRecord(UserError):
    def __init__(self, kind: str, ident: object) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(
            f"unknown {kind} {ident!r}; check the ID (`sterilog {kind} list` shows them)"
            if kind in {"staff", "room", "device", "sterilizer", "pack", "disinfectant"}
            else f"unknown {kind} {ident!r}; check the ID"
        )


class DuplicateRecord(UserError):
    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident!r} already exists; IDs are unique")


class PermissionDenied(UserError):
    pass


class DatabaseError(UserError):
    """The database cannot be opened or reached."""


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


class Blocked(SterilogError):
    """A compliance rule blocks the act: exit 3 with every reason."""

    exit_code = 3

    def __init__(self, reasons: Sequence[Reason], what: str = "blocked") -> None:
        self.reasons = list(reasons)
        super().__init__(f"{what}: " + "; ".join(f"{r.code}: {r.message}" for r in self.reasons))


class IntegrityFailure(SterilogError):
    exit_code = 4
