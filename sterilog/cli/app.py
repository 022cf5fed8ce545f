"""The CLI's composition root: the only place that reads the clock, the environment and the
terminal, opens transactions and prints."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from sqlalchemy import Engine, exc
from sqlalchemy.engine import URL

from sterilog import db
from sterilog.clock import Clock, read_clock
from sterilog.errors import DatabaseError, UserError
from sterilog.services.base import Actor, Ctx, load_clinic

LIVE_CLOCK_MESSAGE = (
    "this is a live clinic database whose clock cannot be replaced: unset STERILOG_NOW. "
    "Drills and training use a training database: sterilog --db drill.db init --training ..."
)


class App:
    def __init__(self, db: str | None, json: bool, operator: str | None) -> None:
        self.last_write: Ctx | None = None
        self.db_option = db
        self.json = json
        if operator:
            from sterilog.cli import clean_args

            operator = clean_args([operator])[0]  # --operator or STERILOG_OPERATOR
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
            engine = db.make_engine(self.url, create_file=create)
            self._engine = engine
            if os.environ.get("STERILOG_NOW"):
                self._refuse_substituted_clock_on_live(engine)
        return self._engine

    def _refuse_substituted_clock_on_live(self, engine: Engine) -> None:
        """STERILOG_NOW replaces the clock of record: only a training database accepts it."""
        if db.is_training(engine) is False:
            raise UserError(LIVE_CLOCK_MESSAGE)

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            self._clock = read_clock()
        return self._clock

    def record_clock(self, session: Any) -> Clock:
        """The clock of record for a transaction: PostgreSQL's server clock read inside it (a
        terminal with a wrong clock cannot misdate anything); SQLite: the system clock. On a
        training database STERILOG_NOW stays in charge (drills replay a day)."""
        clock = self.clock
        if clock.source == "STERILOG_NOW" or db.is_sqlite(session.get_bind()):
            return clock
        return Clock(db.server_now(session), "database")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            db.secure_sqlite_files(self.url)

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[Ctx]:
        """A read-only view. No operator needed (inspectors and anyone may read)."""
        with db.read_session(self.engine()) as session:
            clinic = _clinic(session)
            clock = self.record_clock(session)
            actor = None
            if self.operator:
                from sterilog.services import people

                # as in force now (name and role corrected by `staff update`), as writes see it
                staff = people.operator(session, self.operator)
                actor = people.actor_of(staff) if staff is not None else None
            yield Ctx(
                session=session, now=clock.now, clock=clock.source, clinic=clinic, actor=actor
            )

    @contextmanager
    def writing(
        self,
        roles: frozenset[str],
        what: str,
        after_auth: Callable[[], None] | None = None,
    ) -> Iterator[Ctx]:
        """One serialised write transaction as the operator, after role, lock and PIN checks.

        The operator's role and active state are those in force now (the staff row with its
        dated corrections: `staff update --role`, `deactivate`, `reinstate`), read in plain SQL
        (`people.operator`): the per-client writes import no mapped class for this."""
        from sterilog.services import people

        code = self.operator
        if not code:
            raise UserError(
                "every write needs an operator: pass --operator ID or set STERILOG_OPERATOR"
            )
        engine = self.engine()
        with db.read_session(engine) as session:
            clinic = _clinic(session)
            staff = people.operator(session, code)
            if staff is None:
                raise UserError(f"unknown operator {code!r}; `sterilog staff list` shows staff")
            if not staff.active:
                raise UserError(f"operator {code!r} has been deactivated and can no longer act")
            actor = people.actor_of(staff)
            people.authorize(actor, roles, what)
            pin = _PinState.of(session, staff, clinic.rules.pin_lockout_attempts)
        self._check_pin(actor, pin, "STERILOG_PIN")
        if after_auth is not None:
            after_auth()  # e.g. ask for a new PIN: after the old one, before taking the lock
        with db.write_session(engine) as session:
            # Checked again under the write lock: a deactivation that committed while this
            # write waited for the lock must still stop it.
            if people.is_deactivated(session, actor.id):
                raise UserError(f"operator {code!r} has been deactivated and can no longer act")
            clinic = load_clinic(session)
            clock = self.record_clock(session)
            ctx = Ctx(
                session=session, now=clock.now, clock=clock.source, clinic=clinic, actor=actor
            )
            self.last_write = ctx
            yield ctx

    def _check_pin(self, person: Actor, state: _PinState, env_name: str) -> None:
        """`person` must give their PIN when they have one; a lockout stops them either way.

        A wrong PIN is recorded (a `failed` PIN event); the rule pack's `pin_lockout_attempts`
        consecutive ones lock the person until a manager runs `staff unlock`. A right PIN after
        failures is recorded too (`ok`), which restarts the count.
        """
        from sterilog.services import people

        if state.pin_hash is None:
            return
        if state.failures >= state.attempts:
            raise UserError(people.lock_message(person.code))
        pin = self._read_pin(person.code, env_name)
        if pin is None:
            self._audit_failed_pin(person.code, "missing")
            raise UserError(f"{person.code} has a PIN: give it at the prompt or in {env_name}")
        if not people.verify_pin(pin, state.pin_hash):
            self._pin_event(person, "failed", "auth.failed")
            if state.failures + 1 >= state.attempts:
                raise UserError(
                    f"wrong PIN for {person.code}; nothing was recorded. "
                    + people.lock_message(person.code)
                )
            raise UserError(f"wrong PIN for {person.code}; nothing was recorded")
        if state.failures:
            self._pin_event(person, "ok", "auth.ok")

    def attest(self, code: str) -> None:
        """Someone other than the operator vouches (session start --practitioner): their PIN
        when they have one. An unknown code is left to the command to report."""
        from sterilog.services import people

        with db.read_session(self.engine()) as session:
            clinic = _clinic(session)
            staff = people.operator(session, code)
            if staff is None:
                return
            person = people.actor_of(staff)
            state = _PinState.of(session, staff, clinic.rules.pin_lockout_attempts)
        self._check_pin(person, state, "STERILOG_PRACTITIONER_PIN")

    def _pin_event(self, person: Actor, kind: str, action: str) -> None:
        from sterilog.services import people

        with db.write_session(self.engine()) as session:
            clock = self.record_clock(session)
            ctx = Ctx(
                session=session,
                now=clock.now,
                clock=clock.source,
                clinic=load_clinic(session),
                actor=person,
            )
            staff = people.find_staff(session, person.code)
            assert staff is not None
            people.pin_event(ctx, staff, kind, action=action)

    def _read_pin(self, code: str, env_name: str = "STERILOG_PIN") -> str | None:
        pin = os.environ.get(env_name)
        if pin:
            return pin
        if sys.stdin.isatty():
            value: str = click.prompt(f"PIN for {code}", hide_input=True, err=True)
            return value
        return None

    def _audit_failed_pin(self, code: str, kind: str) -> None:
        from sterilog import audit

        with db.write_session(self.engine()) as session:
            clock = self.record_clock(session)
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
        late = self.last_write.late if self.last_write is not None else []
        if late:
            # A late entry says so (sterilog.lateness): the event time and the time of record.
            from sterilog.clock import fmt_local, iso

            assert self.last_write is not None
            now, tz = self.last_write.now, self.last_write.clinic.tz
            data = {**data, "late": True, "recorded_at": iso(now)}
            lines = [] if text is None else [text] if isinstance(text, str) else list(text)
            lines.append(
                f"Late entry: happened {fmt_local(min(late), tz)}, entered {fmt_local(now, tz)} "
                f"(more than {self.last_write.clinic.rules.late_entry_minutes} min later); "
                "reports show it as entered late."
            )
            text = lines
        if self.json:
            click.echo(json.dumps(data, ensure_ascii=False, default=str))
            return
        if text is None:
            return
        lines = [text] if isinstance(text, str) else text
        for line in lines:
            click.echo(line)


@dataclass(frozen=True)
class _PinState:
    pin_hash: str | None
    failures: int
    attempts: int

    @classmethod
    def of(cls, session: Any, staff: Any, attempts: int) -> _PinState:
        from sterilog.services import people

        pin_hash = people.current_pin_hash(session, staff)
        failures = people.consecutive_failures(session, staff.id, attempts) if pin_hash else 0
        return cls(pin_hash, failures, attempts)


def _clinic(session: Any) -> Any:
    try:
        return load_clinic(session)
    except (exc.OperationalError, exc.ProgrammingError) as error:
        msg = str(error.orig if hasattr(error, "orig") else error).lower()
        if "no such column" in msg or ("column" in msg and "does not exist" in msg):
            raise DatabaseError(
                "this database's schema is older than this sterilog; run `sterilog db upgrade`"
            ) from None
        if "no such table" in msg or "does not exist" in msg or "undefinedtable" in msg:
            raise DatabaseError(
                "this database is not initialised for sterilog; run `sterilog init` first"
            ) from None
        raise


pass_app = click.make_pass_decorator(App)
