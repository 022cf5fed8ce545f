"""The CLI's composition root: the only place that reads the clock, the environment and the
terminal, opens transactions and prints."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy import Engine, exc
from sqlalchemy.engine import URL

from sterilog import db
from sterilog.clock import Clock, read_clock
from sterilog.errors import DatabaseError, UserError
from sterilog.services.base import Ctx, load_clinic


class App:
    def __init__(self, db: str | None, json: bool, operator: str | None) -> None:
        self.db_option = db
        self.json = json
        self.operator = operator.strip() if operator else None
        self._url: URL | None = None
        self._engine: Engine | None = None
        self._clock: Clock | None = None
        self.emitted = False  # --json prints exactly one object, even when a command then fails

    # --- plumbing -------------------------------------------------------------------------

    @property
    def url(self) -> URL:
        if self._url is None:
            self._url = db.resolve_url(self.db_option)
        return self._url

    def engine(self, *, create: bool = False) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(self.url, create_file=create)
        return self._engine

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            self._clock = read_clock()
        return self._clock

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            db.secure_sqlite_files(self.url)

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Ctx]:
        """A read-only view. No operator needed (inspectors and anyone may read)."""
        clock = self.clock
        with db.read_session(self.engine()) as session:
            clinic = _clinic(session)
            actor = None
            if self.operator:
                from sqlalchemy import text

                from sterilog.services.base import Actor

                row = session.execute(
                    text("SELECT id, code, name, role FROM staff WHERE code = :code"),
                    {"code": self.operator},
                ).first()
                actor = Actor(int(row[0]), row[1], row[2], row[3]) if row else None
            yield Ctx(
                session=session, now=clock.now, clock=clock.source, clinic=clinic, actor=actor
            )

    @contextmanager
    def writing(self, roles: frozenset[str], what: str) -> Iterator[Ctx]:
        """One serialised write transaction as the operator, after role and PIN checks."""
        from sterilog.services import people

        clock = self.clock
        code = self.operator
        if not code:
            raise UserError(
                "every write needs an operator: pass --operator ID or set STERILOG_OPERATOR"
            )
        engine = self.engine()
        with db.read_session(engine) as session:
            _clinic(session)
            staff = people.find_staff(session, code)
            if staff is None:
                raise UserError(f"unknown operator {code!r}; `sterilog staff list` shows staff")
            if people.is_deactivated(session, staff.id):
                raise UserError(f"operator {code!r} has been deactivated and can no longer act")
            actor = people.actor_of(staff)
            people.authorize(actor, roles, what)
            pin_hash = staff.pin_hash
        if pin_hash:
            pin = self._read_pin(code)
            if pin is None or not people.verify_pin(pin, pin_hash):
                self._audit_failed_pin(code, "missing" if pin is None else "wrong")
                if pin is None:
                    raise UserError(f"{code} has a PIN: give it at the prompt or in STERILOG_PIN")
                raise UserError(f"wrong PIN for {code}; nothing was recorded")
        with db.write_session(engine) as session:
            # Checked again under the write lock: a deactivation that committed while this
            # write waited for the lock must still stop it.
            if people.is_deactivated(session, actor.id):
                raise UserError(f"operator {code!r} has been deactivated and can no longer act")
            clinic = load_clinic(session)
            yield Ctx(
                session=session, now=clock.now, clock=clock.source, clinic=clinic, actor=actor
            )

    def _read_pin(self, code: str) -> str | None:
        pin = os.environ.get("STERILOG_PIN")
        if pin:
            return pin
        if sys.stdin.isatty():
            value: str = click.prompt(f"PIN for {code}", hide_input=True, err=True)
            return value
        return None

    def _audit_failed_pin(self, code: str, kind: str) -> None:
        from sterilog import audit

        clock = self.clock
        with db.write_session(self.engine()) as session:
            audit.append_event(
                session,
                action="auth.failed",
                operator=code,
                now=clock.now,
                clock=clock.source,
                detail={"operator": code, "pin": kind},
            )

    # --- output ---------------------------------------------------------------------------

    def emit(self, data: dict[str, Any], text: str | list[str] | None = None) -> None:
        self.emitted = True
        if self.json:
            click.echo(json.dumps(data, ensure_ascii=False, default=str))
            return
        if text is None:
            return
        lines = [text] if isinstance(text, str) else text
        for line in lines:
            click.echo(line)


def _clinic(session: Any) -> Any:
    try:
        return load_clinic(session)
    except (exc.OperationalError, exc.ProgrammingError) as error:
        msg = str(error.orig if hasattr(error, "orig") else error).lower()
        if "no such table" in msg or "does not exist" in msg or "undefinedtable" in msg:
            raise DatabaseError(
                "this database is not initialised for sterilog; run `sterilog init` first"
            ) from None
        raise


pass_app = click.make_pass_decorator(App)
