"""Many terminals and killed processes (SPEC §10): real `python -m sterilog` processes against
one SQLite file or one PostgreSQL server.

CI runs bounded versions. The long soak variants are marked `soak` and only run when asked:
`python -m pytest tests/test_reliability.py -m soak` (or STERILOG_SOAK=1).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from clinic import hri
from conftest import Cli
from sqlalchemy import text

BASE = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
PROCESS_TIMEOUT = 120  # seconds; far above the 60 s SQLite busy timeout




def at(minutes: float) -> str:
    return (BASE + dt.timedelta(minutes=minutes)).isoformat()


# --- real processes ------------------------------------------------------------------------------


@dataclass
class Done:
    argv: Sequence[str]
    code: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return (
            f"{' '.join(self.argv)}\nexit {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"
        )


def env_for(cli: Cli, operator: str, now: str | None) -> dict[str, str]:
    return {
        **os.environ,
        "STERILOG_DB": cli.url,
        "STERILOG_OPERATOR": operator,
        "STERILOG_NOW": now or cli.now,
        "STERILOG_PIN": "",
        "STERILOG_NEW_PIN": "",
    }


def spawn(
    cli: Cli, *args: str, operator: str = "ann", now: str | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sterilog", *args],
        env=env_for(cli, operator, now),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
    )


def run(cli: Cli, *args: str, operator: str = "ann", now: str | None = None) -> Done:
    proc = spawn(cli, *args, operator=operator, now=now)
    out, err = proc.communicate(timeout=PROCESS_TIMEOUT)
    return Done(args, proc.returncode, out, err)


def assert_clean_stderr(done: Done) -> None:
    """No traceback and no raw lock error ever reaches the user."""
    low = done.stderr.lower()
    assert "traceback" not in low, done.explain()
    assert "database is locked" not in low, done.explain()
    assert "deadlock" not in low, done.explain()


def scalar(cli: Cli, sql: str) -> int:
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def verify_ok(cli: Cli) -> dict[str, object]:
    done = run(cli, "--json", "audit", "verify")
    assert done.code == 0, done.explain()
    out: dict[str, object] = json.loads(done.stdout)
    assert out["ok"] is True and out["problems"] == [], out
    assert out["entries"] == cli.audit_count()
    return out


def sqlite_integrity(cli: Cli) -> None:
    if cli.backend != "sqlite":
        return
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
            assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
    finally:
        engine.dispose()


def base_clinic(cli: Cli, terminals: int) -> None:
    """A practitioner, a disinfectant and one room + device per terminal (R1/SN-1, ...)."""
    cli.ok("staff", "add", "ann", "--name", "Ann", "--role", "practitioner")
    cli.ok("disinfectant", "add", "Clinell", "--contact-min", "1")
    for k in range(1, terminals + 1):
        cli.ok("room", "add", f"R{k}")
        cli.ok("device", "add", f"SN-{k}", "--model", "Pen 4")


# --- many terminals racing for one unit ----------------------------------------------------------


def race_for_one_unit(cli: Cli, terminals: int) -> None:
    base_clinic(cli, 1)
    cli.ok("cartridge", "receive", hri("LOTA", "0001"))
    cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell")
    cli.ok("clean", "device", "SN-1", "--disinfectant", "Clinell")
    before = cli.audit_count()
    procs = [
        spawn(
            cli,
            "--json",
            "session",
            "start",
            "--room",
            "R1",
            "--device",
            "SN-1",
            "--cartridge",
            hri("LOTA", "0001"),
            "--client",
            f"C-{i}",
        )
        for i in range(terminals)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=PROCESS_TIMEOUT)
        results.append(Done(p.args, p.returncode, out, err))  # type: ignore[arg-type]
    for done in results:
        assert_clean_stderr(done)
    assert sorted(d.code for d in results) == [0] + [3] * (terminals - 1), [
        d.explain() for d in results
    ]
    outs = [json.loads(d.stdout) for d in results]
    winners = [o for o in outs if o["decision"] == "go"]
    assert len(winners) == 1 and winners[0]["session_id"] == 1
    for o in outs:
        if o["decision"] == "blocked":
            # The losers see the unit taken (and, the session being open, room and device busy).
            assert "cartridge-used" in [r["code"] for r in o["reasons"]], o
            assert o["session_id"] is None and o["refusal_id"] >= 1
    assert scalar(cli, "SELECT count(*) FROM sessions") == 1
    assert scalar(cli, "SELECT count(*) FROM refusals") == terminals - 1
    assert cli.audit_count() == before + terminals  # one entry per terminal, none lost
    verify_ok(cli)


def test_eight_terminals_racing_for_one_unit_record_one_session_and_seven_refusals(
    cli: Cli,
) -> None:
    race_for_one_unit(cli, 8)


@pytest.mark.soak
def test_soak_twenty_terminals_racing_for_one_unit(cli: Cli) -> None:
    race_for_one_unit(cli, 20)


# --- many terminals doing whole client turnovers -------------------------------------------------


# One terminal = one process that runs a whole day of commands through the real CLI entry point
# (`sterilog.cli.main`, exactly what `python -m sterilog` runs), one after another with no
# interpreter start-up between them. Without the 0.35 s start-up per command the terminals hit
# the write lock far more often than people at keyboards would: the harder test, and it fits CI.
TERMINAL = r"""
import contextlib, io, json, os, sys, traceback
from sterilog.cli import main

def run(argv, now):
    os.environ["STERILOG_NOW"] = now
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main.main(args=argv, prog_name="sterilog", standalone_mode=True)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 99
    result = {"argv": argv, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
    print(json.dumps(result), flush=True)
    return result

last_session = None
for line in sys.stdin:
    step = json.loads(line)
    argv = step["argv"]
    if step.get("session_end_of") is not None:
        if last_session is None:  # the start failed; say so instead of guessing an ID
            print(json.dumps({"argv": ["session", "end", "?"], "code": 98, "stdout": "",
                              "stderr": "no session to end: its start failed"}), flush=True)
            continue
        argv = ["session", "end", str(last_session)]
        last_session = None
    result = run(argv, step["now"])
    if argv[:3] == ["--json", "session", "start"] and result["code"] == 0:
        last_session = json.loads(result["stdout"])["session_id"]
"""


def turnover_steps(terminal: int, rounds: int) -> list[dict[str, object]]:
    """One terminal's day: clean room + clean device + session start + session end, N times.

    Each terminal has its own room, device and serialized units, so every start must be GO.
    """
    room, device = f"R{terminal}", f"SN-{terminal}"
    steps: list[dict[str, object]] = []
    for i in range(rounds):
        t = i * 20 + terminal * 0.25  # minutes after 09:00; terminals interleave in time
        steps += [
            {
                "argv": [
                    "clean",
                    "room",
                    room,
                    "--kind",
                    "between-clients",
                    "--disinfectant",
                    "Clinell",
                ],
                "now": at(t),
            },
            {"argv": ["clean", "device", device, "--disinfectant", "Clinell"], "now": at(t)},
            {
                "argv": [
                    "--json",
                    "session",
                    "start",
                    "--room",
                    room,
                    "--device",
                    device,
                    "--cartridge",
                    hri("LOTT", f"{terminal}-{i}"),
                    "--client",
                    f"C-{terminal}-{i}",
                ],
                "now": at(t + 1),
            },
            {"argv": [], "session_end_of": i, "now": at(t + 15)},
        ]
    return steps


def terminal_day(cli: Cli, terminal: int, rounds: int, one_process_per_command: bool) -> list[Done]:
    steps = turnover_steps(terminal, rounds)
    if one_process_per_command:
        done: list[Done] = []
        session_id = None
        for step in steps:
            argv = [str(a) for a in step["argv"]]  # type: ignore[attr-defined]
            if "session_end_of" in step:
                argv = ["session", "end", str(session_id)]
            d = run(cli, *argv, now=str(step["now"]))
            done.append(d)
            if argv[:3] == ["--json", "session", "start"] and d.code == 0:
                session_id = json.loads(d.stdout)["session_id"]
        return done
    proc = subprocess.Popen(
        [sys.executable, "-c", TERMINAL],
        env=env_for(cli, "ann", None),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent,
    )
    out, err = proc.communicate(
        "".join(json.dumps(s) + "\n" for s in steps), timeout=PROCESS_TIMEOUT
    )
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    results = [json.loads(line) for line in out.splitlines()]
    return [Done(r["argv"], r["code"], r["stdout"], r["stderr"]) for r in results]


def many_turnovers(
    cli: Cli, terminals: int, rounds: int, one_process_per_command: bool = False
) -> None:
    base_clinic(cli, terminals)
    cli.ok(
        "cartridge",
        "receive",
        *(hri("LOTT", f"{k}-{i}") for k in range(1, terminals + 1) for i in range(rounds)),
    )
    before = cli.audit_count()
    with ThreadPoolExecutor(max_workers=terminals) as pool:
        days = list(
            pool.map(
                lambda k: terminal_day(cli, k, rounds, one_process_per_command),
                range(1, terminals + 1),
            )
        )
    for day in days:
        for d in day:
            assert_clean_stderr(d)
            assert d.code == 0, d.explain()
        assert len(day) == 4 * rounds
    expected = terminals * rounds
    for table in ("sessions", "session_ends", "room_cleans", "device_cleans"):
        assert scalar(cli, f"SELECT count(*) FROM {table}") == expected, table
    assert scalar(cli, "SELECT count(*) FROM refusals") == 0
    for k in range(1, terminals + 1):
        assert (
            scalar(
                cli,
                "SELECT count(*) FROM sessions s JOIN rooms r ON r.id = s.room_id "
                f"WHERE r.code = 'R{k}'",
            )
            == rounds
        )
    assert scalar(cli, "SELECT count(DISTINCT unit_id) FROM sessions") == expected
    assert cli.audit_count() == before + 4 * expected
    verify_ok(cli)


@pytest.mark.slow
def test_six_terminals_doing_client_turnovers_at_once_keep_every_record(cli: Cli) -> None:
    many_turnovers(cli, terminals=6, rounds=3)


@pytest.mark.soak
def test_soak_twelve_terminals_doing_many_turnovers(cli: Cli) -> None:
    many_turnovers(cli, terminals=12, rounds=40)


@pytest.mark.soak
def test_soak_six_terminals_one_process_per_command(cli: Cli) -> None:
    """As at a clinic: every command its own `python -m sterilog` process (start-up dominates,
    so this is slow for the contention it produces; CI relies on the in-process terminals)."""
    many_turnovers(cli, terminals=6, rounds=4, one_process_per_command=True)


# --- readers while terminals write ---------------------------------------------------------------

ROOM_ADDER = r"""
import sys
from sterilog.cli import main

for i in range(int(sys.argv[1])):
    try:
        main.main(args=["room", "add", f"W{sys.argv[2]}-{i}"], standalone_mode=True)
    except SystemExit as stop:
        if stop.code:
            sys.exit(stop.code)
"""


@pytest.mark.slow
def test_audit_verify_while_terminals_write_never_reports_false_tampering(cli: Cli) -> None:
    """A manager may run `audit verify` in the middle of a busy day: it must see one consistent
    moment of the database, never half of a write that committed while it was reading."""
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", ROOM_ADDER, "40", str(k)],
            env=env_for(cli, "boss", None),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent,
        )
        for k in range(3)
    ]
    verified = 0
    try:
        while any(w.poll() is None for w in writers) or verified < 3:
            r = cli.run("--json", "audit", "verify")
            out = json.loads(r.stdout)
            assert r.exit_code == 0 and out["ok"] is True, out["problems"][:3]
            verified += 1
    finally:
        for w in writers:
            _, err = w.communicate(timeout=PROCESS_TIMEOUT)
            assert w.returncode == 0, err
    assert scalar(cli, "SELECT count(*) FROM rooms WHERE code LIKE 'W%'") == 120
    verify_ok(cli)


def test_a_write_that_waits_for_another_terminal_succeeds_instead_of_failing(cli: Cli) -> None:
    """Another terminal holds the write lock for a while (a slow disk, a big receipt): a second
    write waits its turn; no 'database is locked' reaches the user."""
    engine = cli.engine()
    try:
        with engine.connect() as conn:
            if cli.backend == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                from sterilog.db import PG_WRITE_LOCK_KEY

                conn.exec_driver_sql("BEGIN")
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITE_LOCK_KEY})")
            waiting = spawn(cli, "room", "add", "R-WAIT", operator="boss")
            time.sleep(1.2)
            assert waiting.poll() is None, "the write did not wait for the lock"
            conn.exec_driver_sql("COMMIT")
    finally:
        engine.dispose()
    out, err = waiting.communicate(timeout=PROCESS_TIMEOUT)
    done = Done(waiting.args, waiting.returncode, out, err)  # type: ignore[arg-type]
    assert_clean_stderr(done)
    assert done.code == 0, done.explain()
    assert "R-WAIT" in {r["id"] for r in cli.json("room", "list")["rooms"]}
    verify_ok(cli)


# --- killed processes ----------------------------------------------------------------------------


class LockWatch:
    """Tells whether some terminal holds the write lock right now, without taking it for long:
    SQLite `BEGIN IMMEDIATE` with no wait (then rolled back), PostgreSQL `pg_locks`."""

    def __init__(self, cli: Cli) -> None:
        self.cli = cli
        if cli.backend == "sqlite":
            import sqlite3

            path = cli.url.removeprefix("sqlite:///")
            self.sqlite = sqlite3.connect(path, timeout=0, isolation_level=None)
        else:
            self.engine = cli.engine()
            self.conn = self.engine.connect()

    def held(self) -> bool:
        if self.cli.backend == "sqlite":
            import sqlite3

            try:
                self.sqlite.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return True
            self.sqlite.execute("ROLLBACK")
            return False
        n = self.conn.execute(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
        ).scalar_one()
        self.conn.rollback()
        return bool(n)

    def close(self) -> None:
        if self.cli.backend == "sqlite":
            self.sqlite.close()
        else:
            self.conn.close()
            self.engine.dispose()


def kill_inside_the_transaction(cli: Cli, rng: random.Random, lot: str, now: str) -> bool:
    """Start one big receipt alone and SIGKILL it once it holds the write lock (plus 0-40 ms).
    Returns whether the lock was seen held before the kill."""
    watch = LockWatch(cli)
    try:
        proc = spawn(cli, "cartridge", "receive", hri(lot), "--quantity", "3000", now=now)
        deadline = time.monotonic() + PROCESS_TIMEOUT
        seen = False
        while proc.poll() is None and time.monotonic() < deadline:
            if watch.held():
                seen = True
                time.sleep(rng.uniform(0.0, 0.04))
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.003)
        proc.communicate(timeout=PROCESS_TIMEOUT)
        return seen and proc.returncode == -signal.SIGKILL
    finally:
        watch.close()


def kill_writers(cli: Cli, kills: int, seed: int) -> None:
    """SIGKILL writers at random moments (start-up, inside the write transaction, at commit,
    at close), `kills` times. Every write is all-or-nothing, and nothing a process finished is
    lost. A third of the kills are aimed inside a write transaction of 3000 rows."""
    rng = random.Random(seed)
    base_clinic(cli, 2)
    cli.ok("cartridge", "receive", *(hri("LOTK", f"{i}") for i in range(kills * 2)))
    cli.ok("clean", "room", "R1", "--kind", "between-clients", "--disinfectant", "Clinell")
    cli.ok("clean", "device", "SN-1", "--disinfectant", "Clinell")
    # Calibrate: how long does a big receipt take here, now?
    t0 = time.monotonic()
    calib = run(cli, "cartridge", "receive", hri("CALIB"), "--quantity", "3000")
    assert calib.code == 0, calib.explain()
    life = time.monotonic() - t0
    finished: list[tuple[str, int]] = []
    was_killed: list[tuple[str, int]] = []
    inside: list[int] = []
    n = 0
    minute = 1.0
    while len(was_killed) < kills:
        n += 1
        minute += 1
        now = at(minute)
        if n % 3 == 0:
            if kill_inside_the_transaction(cli, rng, f"BIG{n}", now):
                inside.append(n)
                was_killed.append(("receive", n))
            continue
        # Two writers: the big receipt, and a room or a session start in turn; kill one or both.
        writers = {
            # A big unserialized receipt: thousands of rows in one transaction.
            "receive": spawn(
                cli, "cartridge", "receive", hri(f"BIG{n}"), "--quantity", "3000", now=now
            ),
        }
        if n % 2:
            writers["room"] = spawn(cli, "room", "add", f"K{n}", operator="boss", now=now)
        else:
            writers["session"] = spawn(
                cli, "session", "start", "--room", "R1", "--device", "SN-1",
                "--cartridge", hri("LOTK", str(n)), "--client", f"C-{n}", now=now,
            )  # fmt: skip
        victims = rng.sample(sorted(writers), rng.randint(1, 2))
        start = time.monotonic()
        delays = sorted((rng.uniform(0.2, 1.0) * life, name) for name in victims)
        for delay, name in delays:
            time.sleep(max(0.0, start + delay - time.monotonic()))
            proc = writers[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for name, proc in writers.items():
            out, err = proc.communicate(timeout=PROCESS_TIMEOUT)
            if proc.returncode == -signal.SIGKILL:
                was_killed.append((name, n))
                continue
            done = Done(proc.args, proc.returncode, out, err)  # type: ignore[arg-type]
            assert_clean_stderr(done)
            assert done.code in (0, 3), done.explain()
            finished.append((name, n))

    def kept(name: str, k: int) -> int:
        """How many rows the write of writer `name` in round `k` left."""
        if name == "room":
            return scalar(cli, f"SELECT count(*) FROM rooms WHERE code = 'K{k}'")
        if name == "receive":
            return scalar(
                cli,
                "SELECT count(*) FROM cartridge_units u JOIN cartridge_lots l ON l.id = u.lot_id "
                f"WHERE l.lot = 'BIG{k}'",
            )
        return scalar(cli, f"SELECT count(*) FROM sessions WHERE client = 'C-{k}'") + scalar(
            cli, f"SELECT count(*) FROM refusals WHERE client = 'C-{k}'"
        )

    full = {"room": 1, "receive": 3000, "session": 1}
    for name, k in finished:  # nothing a finished process did is lost
        assert kept(name, k) == full[name], (name, k)
    for name, k in was_killed:  # a killed write is all there or not there at all
        assert kept(name, k) in (0, full[name]), (name, k, kept(name, k))
    # The aimed kills really landed inside transactions: rolled back, not committed.
    assert inside, "no kill landed while a write held the lock"
    assert any(kept("receive", k) == 0 for k in inside), "every aimed kill came after commit"
    verify_ok(cli)
    sqlite_integrity(cli)
    # Later writes work: a new room, and a whole turnover in it.
    later = at(minute + 1)
    cli.ok("room", "add", "AFTER", now=later)
    cli.ok("device", "add", "SN-AFTER", "--model", "Pen 4", now=later)
    cli.ok("cartridge", "receive", hri("LOTZ", "1"), now=later)
    cli.ok("clean", "room", "AFTER", "--kind", "between-clients", "--disinfectant", "Clinell",
           now=later)  # fmt: skip
    cli.ok("clean", "device", "SN-AFTER", "--disinfectant", "Clinell", now=later)
    d = run(cli, "--json", "session", "start", "--room", "AFTER", "--device", "SN-AFTER",
            "--cartridge", hri("LOTZ", "1"), "--client", "C-after", now=later)  # fmt: skip
    assert d.code == 0 and json.loads(d.stdout)["decision"] == "go", d.explain()
    verify_ok(cli)
    sqlite_integrity(cli)


@pytest.mark.slow
def test_writers_killed_at_random_moments_leave_a_database_that_verifies(cli: Cli) -> None:
    kill_writers(cli, kills=15 if cli.backend == "sqlite" else 8, seed=20261124)


@pytest.mark.soak
def test_soak_writers_killed_many_times(cli: Cli) -> None:
    kill_writers(cli, kills=200, seed=6)


# --- database files ------------------------------------------------------------------------------


def test_sqlite_files_stay_owner_only_after_writes_from_many_processes(tmp_path: Path) -> None:
    import sqlite3
    import stat

    path = tmp_path / "clinic.db"
    c = Cli(url=str(path), backend="sqlite")
    env = {**os.environ, "STERILOG_NOW": c.now, "STERILOG_DB": str(path)}
    old = os.umask(0o022)
    reader = None
    try:
        argv = [sys.executable, "-m", "sterilog", "init", "--training", "--manager", "boss"]
        init = subprocess.run(
            [*argv, "--name", "B"],
            env=env,
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
            check=False,
        )
        assert init.returncode == 0, init.stderr
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        procs = [spawn(c, "room", "add", f"R{i}", operator="boss") for i in range(3)]
        for p in procs:
            p.communicate(timeout=PROCESS_TIMEOUT)
            assert p.returncode == 0
        # A terminal that stays open keeps the WAL and SHM files in place: check them too.
        reader = sqlite3.connect(path)
        reader.execute("SELECT count(*) FROM rooms").fetchone()
        more = run(c, "room", "add", "R9", operator="boss")
        assert more.code == 0, more.explain()
        files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("clinic.db"))
        assert files == ["clinic.db", "clinic.db-shm", "clinic.db-wal"]
        for name in files:
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode == 0o600, (name, oct(mode))
    finally:
        if reader is not None:
            reader.close()
        os.umask(old)


# --- a first setup killed half-way ---------------------------------------------------------------


def kill_init(url: str, backend: str, delays: list[float]) -> None:
    """`init` killed at each delay (a power cut during first setup); then `init` again works and
    the new database verifies."""
    c = Cli(url=url, backend=backend)
    argv = [sys.executable, "-m", "sterilog", "init", "--training", "--manager", "boss",
            "--name", "Boss"]
    for delay in delays:
        proc = subprocess.Popen(argv, env=env_for(c, "", None), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=PROCESS_TIMEOUT)
        again = subprocess.run(argv, env=env_for(c, "", None), capture_output=True, text=True,
                               timeout=PROCESS_TIMEOUT, check=False)  # fmt: skip
        done = Done(argv, again.returncode, again.stdout, again.stderr)
        assert_clean_stderr(done)
        assert done.code == 0, done.explain()
        verify_ok(c)
        assert [s["id"] for s in c.json("staff", "list")["staff"]] == ["boss"]


def test_an_init_killed_half_way_can_simply_be_run_again(empty_url: str, backend: str) -> None:
    kill_init(empty_url, backend, [0.55])


@pytest.mark.soak
def test_soak_init_killed_at_many_moments(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from conftest import fresh_url

    pg = None if backend == "sqlite" else request.getfixturevalue("pg_server")
    for i in range(12):
        url = fresh_url(backend, tmp_path, pg, template=None)
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'init{i}.db'}"
        kill_init(url, backend, [0.3 + 0.05 * i])
