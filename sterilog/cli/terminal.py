"""`sterilog terminal`: the resident, scan-first loop of a treatment-room terminal.

The practitioner identifies once (operator ID + PIN). Then, per client: scan the cartridge, the
device serial (unless fixed with --device), the pack labels (an empty line ends them), type the
needle depth (an empty line: not recorded) and the client reference, confirm. The decision is
`session start` itself: the same service (`services.gate.start`) in the same `App.writing`
transaction, so the same audit entry and the same refusal record. Nothing is cached across
clients: each decision opens a new transaction, reads the clock, the clinic settings and every
fact afresh.

Input is read line by line from the terminal's file descriptor in canonical mode (the line
discipline does the editing), with `select` for the idle timeout, so a keyboard-wedge scanner
that types a whole line (GS included) works like a keyboard.
"""

from __future__ import annotations

import os
import select
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from sterilog.cli.app import App
from sterilog.cli.verdict import no_interrupt, reason_lines
from sterilog.clock import Clock, read_clock
from sterilog.errors import SterilogError, UserError

GREEN = "\x1b[1;97;42m"
RED = "\x1b[1;97;41m"
RESET = "\x1b[0m"
_COMMANDS_HELP = "Scan the cartridge (or type: end = end this room's session, quit = leave)."


class Leave(Exception):
    """Ctrl-C, Ctrl-D or `quit`: leave the terminal cleanly."""


class Idle(Exception):
    """No input for the rule pack's idle time: lock, ask the PIN again."""


class TerminalApp(App):
    """The CLI's App for a resident loop: a fresh clock per decision and the PIN given at the
    terminal (re-checked against the stored hash by every write)."""

    def __init__(self, parent: App, operator: str) -> None:
        super().__init__(db=parent.db_option, json=False, operator=operator)
        self.parent = parent
        self.pin: str | None = None

    def engine(self, *, create: bool = False) -> Any:
        return self.parent.engine(create=create)

    def close(self) -> None:  # the parent App owns the engine
        pass

    @property
    def clock(self) -> Clock:
        return read_clock()

    def _read_pin(self, code: str, env_name: str = "STERILOG_PIN") -> str | None:
        return self.pin


class Screen:
    """Line input on the terminal with an idle timeout; output to stdout."""

    def __init__(self, idle_minutes: float) -> None:
        self.fd = sys.stdin.fileno()
        self.idle_seconds = idle_minutes * 60.0
        self.last = time.monotonic()
        self.color = not os.environ.get("NO_COLOR")

    def out(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def read(self, prompt: str, *, hidden: bool = False, idle: bool = True) -> str:
        """One line, without its end of line. Raises Leave on Ctrl-D, Idle on timeout."""
        sys.stdout.write(prompt)
        sys.stdout.flush()
        with _no_echo(self.fd) if hidden else _nothing():
            while True:
                wait = None
                if idle:
                    wait = max(0.0, self.last + self.idle_seconds - time.monotonic())
                ready, _, _ = select.select([self.fd], [], [], wait)
                if ready:
                    break
                if idle:
                    self.out("")
                    raise Idle
            data = os.read(self.fd, 65536)
        if hidden:
            self.out("")
        if not data:  # Ctrl-D at the start of a line
            self.out("")
            raise Leave
        self.last = time.monotonic()
        return data.decode("utf-8", errors="replace").rstrip("\r\n")

    def banner(self, text: str, go: bool) -> None:
        width = max(20, shutil.get_terminal_size((80, 24)).columns)
        line = f" {text} ".center(width)
        if self.color:
            self.out(f"{GREEN if go else RED}{line}{RESET}")
        else:
            self.out("=" * width)
            self.out(line.rstrip())
            self.out("=" * width)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def _no_echo(fd: int) -> Iterator[None]:
    import termios

    old = termios.tcgetattr(fd)
    new = termios.tcgetattr(fd)
    new[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSADRAIN, new)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


# --- reading the database (always a fresh transaction) -------------------------------------------


def _idle_minutes(app: App) -> float:
    with app.reading() as ctx:
        return float(ctx.clinic.rules.terminal_idle_minutes)


def _check_place(app: App, room: str, device: str | None) -> None:
    from sqlalchemy import text

    from sterilog.errors import UnknownRecord

    with app.reading() as ctx:
        q = text("SELECT id FROM rooms WHERE code = :c")
        if ctx.session.execute(q, {"c": room}).first() is None:
            raise UnknownRecord("room", room)
        if device is not None:
            q = text("SELECT id FROM devices WHERE code = :c")
            if ctx.session.execute(q, {"c": device}).first() is None:
                raise UnknownRecord("device", device)


def _login(app: App, screen: Screen, code: str | None) -> TerminalApp:
    """Operator ID (unless given) and PIN, checked as every write checks them."""
    from sterilog import db
    from sterilog.services import people

    tries = 0
    while True:
        if not code:
            code = screen.read("Operator ID: ", idle=False).strip()
            if not code:
                continue
        with db.read_session(app.engine()) as session:
            # The role and active state in force now, as every write checks them (App.writing).
            staff = people.operator(session, code)
            if staff is None:
                screen.out(f"Error: unknown operator {code!r}; `sterilog staff list` shows staff")
                code = None
                continue
            if not staff.active:
                raise UserError(f"operator {code!r} has been deactivated and can no longer act")
            people.authorize(people.actor_of(staff), people.DAILY, "start sessions")
            pin_hash = people.current_pin_hash(session, staff)
        term = TerminalApp(app, code)
        if not pin_hash:
            screen.out(f"{code} has no PIN set: anyone at this terminal can act as {code}.")
            return term
        pin = screen.read(f"PIN for {code}: ", hidden=True, idle=False)
        if _attest(term, pin):
            return term
        tries += 1
        if tries >= 3:
            raise UserError(f"wrong PIN for {code} three times; nothing was recorded")
        screen.out("Wrong PIN; try again.")


def _attest(term: TerminalApp, pin: str) -> bool:
    """The typed PIN checked exactly as every write checks it (App._check_pin: PIN events,
    the rule pack's lockout). False for a wrong PIN; a lockout ends the terminal (UserError)."""
    from sterilog import db
    from sterilog.cli.app import _clinic, _PinState
    from sterilog.services import people

    code = term.operator or ""
    with db.read_session(term.engine()) as session:
        clinic = _clinic(session)
        staff = people.find_staff(session, code)
        if staff is None:
            raise UserError(f"unknown operator {code!r}; `sterilog staff list` shows staff")
        state = _PinState.of(session, staff, clinic.rules.pin_lockout_attempts)
    term.pin = pin
    try:
        term._check_pin(people.actor_of(staff), state, "STERILOG_PIN")
    except UserError as error:
        term.pin = None
        if people.lock_message(code) in str(error):
            raise
        return False
    return True


def _pin_still_good(term: TerminalApp) -> bool:
    """Whether the PIN given at this terminal still matches the operator's stored PIN."""
    from sterilog import db
    from sterilog.services import people

    with db.read_session(term.engine()) as session:
        staff = people.find_staff(session, term.operator or "")
        pin_hash = people.current_pin_hash(session, staff) if staff is not None else None
    if not pin_hash:
        return True
    return term.pin is not None and people.verify_pin(term.pin, pin_hash)


def _unlock(term: TerminalApp, screen: Screen, minutes: float | None) -> None:
    from sterilog import db
    from sterilog.services import people

    code = term.operator or ""
    if minutes is None:
        screen.out(f"{code}: your PIN has changed; give the new one to go on.")
    else:
        screen.out(f"Locked after {minutes:g} min without input. {code}: give your PIN to go on.")
    tries = 0
    while True:
        with db.read_session(term.engine()) as session:
            staff = people.find_staff(session, code)
            pin_hash = people.current_pin_hash(session, staff) if staff is not None else None
        if not pin_hash:
            pin = screen.read(f"Press Enter to go on as {code}: ", idle=False)
            term.pin = None
            return
        pin = screen.read(f"PIN for {code}: ", hidden=True, idle=False)
        if _attest(term, pin):
            return
        tries += 1
        if tries >= 3:
            raise UserError(f"wrong PIN for {code} three times; the terminal is closed")
        screen.out("Wrong PIN; try again.")


# --- one client ----------------------------------------------------------------------------------


def _client(term: TerminalApp, screen: Screen, room: str, device: str | None) -> None:
    screen.out("")
    screen.out(f"Room {room}{f' · device {device}' if device else ''} · {term.operator}")
    screen.out(_COMMANDS_HELP)
    cartridge = ""
    while not cartridge.strip():
        cartridge = screen.read("cartridge> ")
    word = cartridge.strip().lower()
    if word in ("quit", "exit"):
        raise Leave
    if word == "end":
        _end(term, screen, room)
        return
    dev = device
    while not dev:
        dev = screen.read("device serial> ").strip()
    packs: list[str] = []
    screen.out("Scan each pack label; an empty line when done.")
    while True:
        pack = screen.read(f"pack {len(packs) + 1}> ").strip()
        if not pack:
            break
        packs.append(pack)
    depth = _depth(screen)
    client = ""
    while not client.strip():
        client = screen.read("client reference> ")
    listed = ", ".join(packs) if packs else "no pack"
    at_depth = f", {depth:g} mm deep" if depth is not None else ""
    answer = screen.read(
        f"Start for {client.strip()} on {dev} with {listed}{at_depth}? [Enter=yes, n=no] "
    )
    if answer.strip().lower() not in ("", "y", "yes"):
        screen.out("Cancelled: nothing recorded.")
        return
    _decide(term, screen, room, dev, cartridge, tuple(packs), client, depth)


def _depth(screen: Screen) -> float | None:
    """The needle depth (mm) for the practitioner's and the device's maximum-depth rules; an
    empty line: not recorded (as `session start` without --depth-mm)."""
    from sterilog.cli.params import NUMBER

    while True:
        raw = screen.read("depth mm (empty: not recorded)> ").strip()
        if not raw:
            return None
        try:
            return float(NUMBER.convert(raw, None, None))
        except UserError as error:
            screen.out(f"Error: {error.message}")


def _decide(
    term: TerminalApp,
    screen: Screen,
    room: str,
    device: str,
    cartridge: str,
    packs: tuple[str, ...],
    client: str,
    depth_mm: float | None = None,
) -> None:
    from sterilog.services import gate
    from sterilog.services.people import DAILY

    # Ctrl-C waits until the decision is recorded and shown, then leaves the terminal.
    with no_interrupt() as held:
        with term.writing(DAILY, "start sessions") as ctx:
            who = ctx.actor.code if ctx.actor else ""
            decision, started, refusal = gate.start(
                ctx,
                gate.GateRequest(
                    room=room,
                    device=device,
                    cartridge=cartridge,
                    packs=packs,
                    practitioner=who,
                    depth_mm=depth_mm,
                    client=client,
                ),
            )
            session_id = started.id if started else None
            refusal_id = refusal.id if refusal else None
        show(screen, decision, session_id, refusal_id)
    if held.pressed:
        raise Leave


def show(screen: Screen, decision: Any, session_id: int | None, refusal_id: int | None) -> None:
    if decision.go:
        screen.banner(f"GO — session {session_id} started", True)
    else:
        n = len(decision.reasons)
        screen.banner(f"BLOCKED — {n} reason{'s' if n != 1 else ''}", False)
        for line in reason_lines(decision.reasons, bullet="✗"):
            screen.out(line)
        if refusal_id is not None:
            screen.out(f"  (refusal {refusal_id} recorded; nothing was started)")
    for w in decision.warnings:
        screen.out(f"  ! warning {w.code}: {w.message}")
    if decision.go:
        screen.out("Type `end` when the client has left.")


def _end(term: TerminalApp, screen: Screen, room: str) -> None:
    from sqlalchemy import text

    from sterilog.services import gate
    from sterilog.services.people import DAILY

    with no_interrupt() as held:
        with term.writing(DAILY, "end sessions") as ctx:
            row = ctx.session.execute(
                text(
                    "SELECT s.id FROM sessions s JOIN rooms r ON r.id = s.room_id "
                    "LEFT JOIN session_ends e ON e.session_id = s.id "
                    "WHERE r.code = :room AND e.id IS NULL "
                    "ORDER BY s.started_at DESC, s.id DESC LIMIT 1"
                ),
                {"room": room},
            ).first()
            if row is not None:
                gate.end(ctx, int(row[0]), None)
        if row is None:
            screen.out(f"No open session in room {room}: nothing to end.")
        else:
            screen.out(
                f"Ended session {row[0]}. Clean the room and the device before the next client."
            )
    if held.pressed:
        raise Leave


# --- the command ---------------------------------------------------------------------------------


def run(app: App, room: str, device: str | None) -> None:
    screen = Screen(5.0)
    _check_place(app, room, device)
    screen.out(f"sterilog terminal · room {room}. Ctrl-D or `quit` leaves.")
    term = _login(app, screen, app.operator)
    minutes = _idle_minutes(term)
    screen.idle_seconds = minutes * 60.0
    screen.last = time.monotonic()
    while True:
        try:
            _client(term, screen, room, device)
        except Idle:
            _unlock(term, screen, minutes)
            screen.last = time.monotonic()
        except SterilogError as error:
            # Bad input (unknown pack, unreadable scan, wrong role ...): nothing was recorded.
            screen.out(f"Error: {error.message}")
            screen.out("Nothing was recorded for this client; start again.")
            if not _pin_still_good(term):  # the PIN was changed meanwhile: ask for it again
                _unlock(term, screen, None)
                screen.last = time.monotonic()
        minutes = _idle_minutes(term)  # the rule pack may have changed
        screen.idle_seconds = minutes * 60.0


def guard(body: Callable[[], None]) -> None:
    try:
        body()
    except (Leave, KeyboardInterrupt, EOFError):
        sys.stdout.write("\nLeft the terminal. Nothing half-entered was recorded.\n")
        sys.stdout.flush()


@click.command(
    "terminal",
    epilog="Examples:\n\n"
    "  sterilog --operator ann terminal --room R1 --device SN-1\n\n"
    "  sterilog terminal --room R2          # asks the operator ID, then the device per client",
)
@click.option("--room", required=True, help="The room this terminal stands in.")
@click.option("--device", help="A device (pen) fixed to this terminal [default: ask per client].")
@click.pass_obj
def terminal(app: App, room: str, device: str | None) -> None:
    """A resident, scan-first loop for the treatment-room terminal.

    Identify once (operator ID + PIN); then for each client scan the cartridge, the device
    serial (unless --device), the pack labels (an empty line ends them), type the needle depth
    (an empty line: not recorded) and the client reference, and confirm: the verdict fills the
    screen (GO green, BLOCKED red with what to do; plain text when NO_COLOR is set). Each
    decision is `session start`: the same checks, the same session or refusal record, the same
    audit entry, read afresh from the database. Type `end` to end the room's open session.
    After the rule pack's terminal.idle_minutes without input the PIN is asked again. Ctrl-C,
    Ctrl-D or `quit` leave. Needs an interactive terminal (exit 2 otherwise).
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        click.echo(
            "Error: `sterilog terminal` needs an interactive terminal (a TTY) on stdin and "
            "stdout; for scripts use `sterilog session start`.",
            err=True,
        )
        sys.exit(2)
    if app.json:
        raise click.UsageError("--json does not apply to the interactive terminal")
    ctrl_c_leaves()
    guard(lambda: run(app, room, device))


def ctrl_c_leaves() -> None:
    """Ctrl-C leaves the terminal whatever this process inherited: a launcher that ignores or
    blocks SIGINT (a script's background job, a kiosk starter) would otherwise leave a
    terminal that only Ctrl-D or `quit` can close."""
    import signal

    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
