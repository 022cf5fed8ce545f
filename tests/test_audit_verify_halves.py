"""`audit verify` in two halves at once (issue 17, part 4): the second half of a long log is
verified by a forked process while this one verifies the first; only a clean, exactly joined
result is taken from the halves, anything else is verified again in one pass. So on every
forgery below the two-halves call reports exactly what the one-pass call reports, and on a
clean log both give the same entries and head. Both backends; forgeries are committed (the
second half reads the database through a connection of its own)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Cli
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool
from test_gate import clean, hri, setup_clinic, start

from sterilog import audit, db

ONE_PASS = 10**12  # parallel_from: never in halves


@pytest.fixture
def clinic(cli: Cli) -> Cli:
    """A clinic with about 40 entries: the registers early, sessions late."""
    setup_clinic(cli)
    for i in range(1, 4):
        sid = start(cli, scan=hri("LOTA", f"000{i}"), client=f"C-{i}")["session_id"]
        cli.ok("session", "end", str(sid), operator="ann")
        clean(cli, "R1", "SN-1")
    return cli


def verify(cli: Cli, parallel_from: int) -> audit.Verification:
    engine = db.make_engine(make_url(cli.url))
    try:
        with db.read_session(engine) as session:
            return audit.verify(session, parallel_from=parallel_from, check_schema=False)
    finally:
        engine.dispose()


def forge(cli: Cli, change: Callable[[Connection], None]) -> None:
    """Commit a change behind the tool's back (triggers out of the way, as a forger would)."""
    engine = create_engine(cli.url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            if cli.backend == "sqlite":
                for (name,) in conn.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                ).all():
                    conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
            else:
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            change(conn)
    finally:
        engine.dispose()


def _top(conn: Connection) -> int:
    return int(conn.execute(text("SELECT max(seq) FROM audit_log")).scalar_one())


def _rechain(conn: Connection, seq: int, prev_hash: str) -> None:
    """Give entry `seq` another prev_hash and re-hash it and every later entry (a forger with
    the code rewriting the second half so that it is consistent in itself)."""
    at_of = audit._sqlite_instant if conn.dialect.name == "sqlite" else audit._pg_instant
    rows = conn.execute(
        text(
            "SELECT seq, at, clock, operator, action, records FROM audit_log "
            "WHERE seq >= :s ORDER BY seq"
        ),
        {"s": seq},
    ).all()
    prev = prev_hash
    for s, at, clock, operator, action, records in rows:
        digest = audit.entry_hash(prev, s, at_of(at), clock, operator, action, records)
        conn.execute(
            text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"),
            {"p": prev, "h": digest, "s": s},
        )
        prev = digest


def _second_half_row(conn: Connection) -> int:
    """The id of a session_ends row recorded in the second half of the log."""
    return int(conn.execute(text("SELECT max(id) FROM session_ends")).scalar_one())


FORGERIES: dict[str, Callable[[Connection], None]] = {
    # a row of a table only the first half names, inserted after its last row: only the seam
    # check sees it (the second half never opens that table)
    "room inserted": lambda c: c.execute(
        text(
            "INSERT INTO rooms (id, code, name, recorded_at) SELECT max(id) + 1, 'RX', 'X', "
            "max(recorded_at) FROM rooms"
        )
    ),
    "second-half row changed": lambda c: c.execute(
        text("UPDATE session_ends SET note = 'forged' WHERE id = :i"), {"i": _second_half_row(c)}
    ),
    "second-half row deleted": lambda c: c.execute(
        text("DELETE FROM session_ends WHERE id = :i"), {"i": _second_half_row(c)}
    ),
    "first-half row changed": lambda c: c.execute(
        text("UPDATE staff SET name = 'Mallory' WHERE code = 'ann'")
    ),
    "second-half row inserted": lambda c: c.execute(
        text(
            "INSERT INTO session_ends (id, session_id, note, at, recorded_at) "
            "SELECT id + 100, session_id + 100, note, at, recorded_at FROM session_ends "
            "WHERE id = (SELECT max(id) FROM session_ends)"
        )
    ),
    "entry at the seam deleted": lambda c: c.execute(
        text("DELETE FROM audit_log WHERE seq = :s"), {"s": _top(c) // 2 + 1}
    ),
    "last entry of the first half deleted": lambda c: c.execute(
        text("DELETE FROM audit_log WHERE seq = :s"), {"s": _top(c) // 2}
    ),
    "second half re-chained from another head": lambda c: _rechain(c, _top(c) // 2 + 1, "0" * 64),
    "last entry deleted": lambda c: c.execute(
        text("DELETE FROM audit_log WHERE seq = :s"), {"s": _top(c)}
    ),
}


def test_a_clean_log_verified_in_halves_gives_the_one_pass_result(clinic: Cli) -> None:
    halves, one = verify(clinic, 1), verify(clinic, ONE_PASS)
    assert one.ok and not one.halves
    assert halves.halves, "the clean log was not verified in halves"
    assert (halves.ok, halves.entries, halves.head, halves.problems) == (
        True,
        one.entries,
        one.head,
        [],
    )
    assert halves.entries >= 30


@pytest.mark.parametrize("what", list(FORGERIES))
def test_a_forgery_is_reported_exactly_as_the_one_pass_reports_it(clinic: Cli, what: str) -> None:
    forge(clinic, FORGERIES[what])
    halves, one = verify(clinic, 1), verify(clinic, ONE_PASS)
    assert not one.ok, f"{what}: the one pass found nothing"
    assert not halves.halves
    assert (halves.ok, halves.entries, halves.head, halves.problems) == (
        one.ok,
        one.entries,
        one.head,
        one.problems,
    )


def test_the_one_pass_is_what_a_short_log_gets(clinic: Cli) -> None:
    result: Any = verify(clinic, audit.PARALLEL_FROM)
    assert result.ok and not result.halves


def _set_at(conn: Connection, seq: int, moment: dt.datetime | str) -> None:
    """Store `moment` as entry `seq`'s at: a naive UTC datetime in the stored form sterilog
    writes, or a text as it is (SQLite: a non-canonical form)."""
    value: Any = moment
    if isinstance(moment, dt.datetime) and conn.dialect.name == "sqlite":
        value = moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    conn.execute(text("UPDATE audit_log SET at = :a WHERE seq = :s"), {"a": value, "s": seq})


def _stored_at(conn: Connection, seq: int) -> dt.datetime:
    raw = conn.execute(text("SELECT at FROM audit_log WHERE seq = :s"), {"s": seq}).scalar_one()
    moment = audit._moment(raw)
    assert moment is not None
    return moment


def _moved_clocks(conn: Connection) -> None:
    """Clocks moved back and forward around the seam (entry split+1 compares with entry split,
    which the other process read) and in the first half; one move of only 4 minutes (not an
    anomaly); on SQLite, an entry after one in a non-canonical text form (text order is not time
    order there), so only the rule itself can judge it. Then
    the log is re-chained, so that it is clean and verified in halves."""
    top = _top(conn)
    split = top // 2
    ten = dt.timedelta(minutes=10)
    _set_at(conn, split + 1, _stored_at(conn, split) - ten)  # back, right at the seam
    _set_at(conn, split + 3, _stored_at(conn, split + 2) + dt.timedelta(days=400))  # future
    _set_at(conn, 5, _stored_at(conn, 4) - dt.timedelta(minutes=4))  # within the tolerance
    _set_at(conn, 8, _stored_at(conn, 7) - ten)  # back, first half
    if conn.dialect.name == "sqlite":
        # entry top-1 in a non-canonical text (the same instant as top-2, at UTC-5: its text
        # sorts BEFORE the canonical text of an earlier instant), entry top 10 minutes before it
        moment = _stored_at(conn, top - 2)
        local = (moment - dt.timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S") + "-05:00"
        _set_at(conn, top - 1, local)
        _set_at(conn, top, moment - ten)
    prev = conn.execute(text("SELECT hash FROM audit_log WHERE seq = 4")).scalar_one()
    _rechain(conn, 5, prev)


@pytest.mark.parametrize("parallel_from", [ONE_PASS, 1])
def test_verify_finds_the_clock_anomalies_the_pass_over_the_log_finds(
    clinic: Cli, parallel_from: int
) -> None:
    forge(clinic, _moved_clocks)
    now = dt.datetime.now(dt.UTC)
    engine = db.make_engine(make_url(clinic.url))
    try:
        with db.read_session(engine) as session:
            result = audit.verify(session, parallel_from=parallel_from, check_schema=False, now=now)
            separate = audit.clock_anomalies(session, now)
            top = _top(session.connection())
    finally:
        engine.dispose()
    assert result.ok, result.problems
    assert result.halves == (parallel_from == 1)
    split = top // 2
    # the entry after the one from the future is more than 5 minutes before it: moved back too
    expected = [8, split + 1, split + 3, split + 4]
    if clinic.backend == "sqlite":
        expected.append(top)
    assert [a.seq for a in separate] == expected
    assert "after the verifier's clock" in separate[2].message
    assert [(a.seq, a.at, a.message) for a in result.clock_anomalies] == [
        (a.seq, a.at, a.message) for a in separate
    ]


def _anomalies_both_ways(cli: Cli) -> tuple[audit.Verification, list[audit.ClockAnomaly]]:
    now = dt.datetime.now(dt.UTC)
    engine = db.make_engine(make_url(cli.url))
    try:
        with db.read_session(engine) as session:
            result = audit.verify(session, parallel_from=1, now=now)
            return result, audit.clock_anomalies(session, now)
    finally:
        engine.dispose()


def _future_entry_at_seq_zero(conn: Connection) -> None:
    conn.execute(
        text(
            "INSERT INTO audit_log (seq, at, clock, operator, action, records, prev_hash, hash) "
            "SELECT 0, :at, clock, operator, action, records, prev_hash, :h FROM audit_log "
            "WHERE seq = 1"
        ),
        {
            "at": "2999-01-01 00:00:00.000000"
            if conn.dialect.name == "sqlite"
            else dt.datetime(2999, 1, 1, tzinfo=dt.UTC).replace(tzinfo=None),
            "h": "f" * 64,
        },
    )


def _clock_column_dropped(conn: Connection) -> None:
    _moved_clocks(conn)
    conn.execute(text("ALTER TABLE audit_log DROP COLUMN clock"))


@pytest.mark.parametrize("what", ["entry at seq 0", "log lacks a column"])
def test_a_damaged_log_gets_the_same_clock_anomalies_from_verify_and_the_pass(
    clinic: Cli, what: str
) -> None:
    """Verify reads every entry (seq <= 0 too) and so does the pass; a log verify cannot walk
    (a column dropped) still gets the pass's list."""
    forge(clinic, _future_entry_at_seq_zero if what == "entry at seq 0" else _clock_column_dropped)
    result, separate = _anomalies_both_ways(clinic)
    assert not result.ok
    assert separate, "the forgery made no clock anomaly"
    if what == "entry at seq 0":
        assert separate[0].seq == 0
    assert [(a.seq, a.at, a.message) for a in result.clock_anomalies] == [
        (a.seq, a.at, a.message) for a in separate
    ]


def test_an_instant_column_holding_other_values_is_reported_not_a_crash(clinic: Cli) -> None:
    """PostgreSQL: the column retyped (it hands over arrays); SQLite: a BLOB stored in it.
    Verify names the damage; neither it nor the clock pass stops on an unreadable `at`."""
    if clinic.backend == "postgresql":
        sql = "ALTER TABLE audit_log ALTER COLUMN at TYPE timestamp[] USING ARRAY[at]"
    else:
        sql = "UPDATE audit_log SET at = X'00' WHERE seq = 3"
    forge(clinic, lambda c: c.execute(text(sql)))
    result, separate = _anomalies_both_ways(clinic)
    assert not result.ok
    assert any(p.record.startswith("audit_log") for p in result.problems)
    assert result.clock_anomalies == separate == []


@pytest.mark.parametrize("enabled", [True, False])
def test_verify_leaves_the_garbage_collector_as_it_found_it(clinic: Cli, enabled: bool) -> None:
    """verify pauses the cyclic collector for its walk (docs/performance.md); afterwards the
    caller's setting is back, on a clean log and when the walk raises."""
    import gc

    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        for parallel_from in (1, ONE_PASS):
            assert verify(clinic, parallel_from).ok
            assert gc.isenabled() is enabled
        engine = db.make_engine(make_url(clinic.url))
        try:
            # not a mapped class: _check_tables raises
            with db.read_session(engine) as session, pytest.raises(AttributeError):
                audit.verify(session, tables=[object()], check_schema=False)  # type: ignore[list-item]
        finally:
            engine.dispose()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
