"""`audit verify`'s fast comparisons give the verdict of a straightforward implementation.

Issue 17 made `sterilog.audit.verify` faster (docs/performance.md): the entry header written
directly instead of through the JSON encoder, each row kept as a tuple in sorted-column order and
compared with the recorded content's keys and values without a dictionary per row (a dictionary
only on a mismatch), the C JSON scanner called directly. `reference_verify` below is the plain
algorithm (a dictionary per row, `json.loads`, `entry_hash` through `canonical`); on the tamper
suite's populated clinic, with every row forgery of the tables below and forged log entries, both
must report exactly the same problems, in the same order, with the same words.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Table, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from test_tamper import Forger, clinic, forger, row_cases  # noqa: F401 - fixtures

from sterilog import audit
from sterilog.models import AUDITED, Base


def reference_verify(session: Session) -> list[tuple[str, str]]:
    """The chain and every record table, the obvious way (no schema check)."""
    problems: list[tuple[str, str]] = []
    rows: dict[str, dict[int, dict[str, Any]]] = {}
    for model in AUDITED:
        table: Table = model.__table__  # type: ignore[assignment]
        names = [c.name for c in table.columns]
        converters = audit._raw_converters(session, table)
        cols = ", ".join(f'"{n}"' for n in names)
        found = {}
        for r in audit._raw_rows(session, f'SELECT {cols} FROM "{table.name}" ORDER BY id', ()):
            found[int(r[names.index("id")])] = {
                n: f(v) for n, f, v in zip(names, converters, r, strict=True)
            }
        rows[table.name] = found
    seen: dict[str, int] = {}  # the last id the log named, per table
    at_of = (
        audit._sqlite_instant if session.get_bind().dialect.name == "sqlite" else audit._pg_instant
    )
    prev, expected = audit.GENESIS, 1
    sql = "SELECT seq, at, clock, operator, action, records, prev_hash, hash FROM audit_log"
    for seq, at, clock, operator, action, records, prev_hash, stored in audit._raw_rows(
        session, sql + " ORDER BY seq", ()
    ):
        seq = int(seq)
        if seq < expected:
            problems.append((f"audit_log #{seq}", "out of sequence"))
        elif seq != expected:
            problems.append((f"audit_log #{expected}", "missing"))
        if prev_hash != prev:
            problems.append((f"audit_log #{seq}", "prev_hash"))
        header = audit.canonical(
            {"seq": seq, "at": at_of(at), "clock": clock, "operator": operator, "action": action}
        )
        if hashlib.sha256(f"{prev_hash}\n{header}\n{records}".encode()).hexdigest() != stored:
            problems.append((f"audit_log #{seq}", "hash"))
        prev, expected = stored, seq + 1
        try:
            items = json.loads(records)
        except ValueError:
            problems.append((f"audit_log #{seq}", "not JSON"))
            continue
        for item in items:
            name = item.get("table")
            if name is None:
                continue
            rid = int(item["id"])
            table_rows = rows[name]
            for skipped in sorted(i for i in table_rows if seen.get(name, -(2**64)) < i < rid):
                problems.append((f"{name} #{skipped}", "not in the log"))
            seen[name] = max(seen.get(name, -(2**64)), rid)
            current = table_rows.get(rid)
            if current is None:
                problems.append((f"{name} #{rid}", "missing"))
                continue
            if not isinstance(item["content"], dict):
                problems.append((f"{name} #{rid}", "not an object"))
            elif current != item["content"] and not audit._only_added_columns(
                name, current, item["content"]
            ):
                changed = sorted(
                    k
                    for k in set(current) | set(item["content"])
                    if current.get(k) != item["content"].get(k)
                )
                problems.append((f"{name} #{rid}", f"changed: {', '.join(changed)}"))
    for name, table_rows in rows.items():
        for rid in sorted(i for i in table_rows if i > seen.get(name, -(2**64))):
            problems.append((f"{name} #{rid}", "not in the log"))
    return problems


def _summary(problems: list[audit.Problem]) -> list[tuple[str, str]]:
    """verify's problems in the reference's short words (its messages are longer)."""
    out = []
    for p in problems:
        m = p.message
        if "changed: " in m:
            short = "changed: " + m.split("changed: ", 1)[1].rstrip(")")
        elif "not in the audit log" in m:
            short = "not in the log"
        elif "is missing (deleted)" in m or m.startswith("audit entries"):
            short = "missing"
        elif "out of sequence" in m:
            short = "out of sequence"
        elif m.startswith("prev_hash"):
            short = "prev_hash"
        elif m.startswith("hash does not match"):
            short = "hash"
        elif "is not an object" in m:
            short = "not an object"
        elif "not valid JSON" in m:
            short = "not JSON"
        else:
            short = m
        out.append((p.record, short))
    return out


def both(f: Forger, forge: Callable[[Connection], None]) -> tuple[list[Any], list[Any]]:
    conn = f.conn
    trans = conn.begin()
    try:
        if f.backend != "sqlite":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        forge(conn)
        session = Session(bind=conn)
        fast = _summary(audit.verify(session, check_schema=False).problems)
        return fast, reference_verify(session)
    finally:
        trans.rollback()


TABLES = ["settings", "staff", "sessions", "cycles", "room_cleans", "cartridge_units"]


@pytest.mark.parametrize("table", TABLES)
def test_row_forgeries_get_the_reference_verdict(forger: Forger, table: str) -> None:  # noqa: F811
    n = 0
    for case in row_cases(forger, Base.metadata.tables[table]):
        fast, reference = both(forger, case.forge)
        assert fast == reference, case.what
        assert fast, f"{case.what}: no problem found"
        n += 1
    assert n >= 5


def _rewrite_entry(conn: Connection, seq: int, change: Callable[[list[Any]], str]) -> None:
    """Replace entry `seq`'s records and re-chain every later entry (a forger with the code)."""
    log = conn.exec_driver_sql(
        "SELECT seq, at, clock, operator, action, records, prev_hash FROM audit_log"
        " WHERE seq >= ? ORDER BY seq".replace("?", "%s" if conn.dialect.name != "sqlite" else "?"),
        (seq,),
    ).all()
    at_of = audit._sqlite_instant if conn.dialect.name == "sqlite" else audit._pg_instant
    prev = None
    for s, at, clock, operator, action, records, prev_hash in log:
        if s == seq:
            records = change(json.loads(records))
        if prev is not None:
            prev_hash = prev
        digest = audit.entry_hash(prev_hash, s, at_of(at), clock, operator, action, records)
        conn.execute(
            text("UPDATE audit_log SET records = :r, prev_hash = :p, hash = :h WHERE seq = :s"),
            {"r": records, "p": prev_hash, "h": digest, "s": s},
        )
        prev = digest


def _first_entry_naming(f: Forger, table: str) -> int:
    with f.engine.connect() as c:
        for seq, records in c.exec_driver_sql("SELECT seq, records FROM audit_log ORDER BY seq"):
            if any(i.get("table") == table for i in json.loads(records)):
                return int(seq)
    raise AssertionError(table)


def _drop_triggers(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        for (name,) in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        ).all():
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    else:
        conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")


@pytest.mark.parametrize(
    "what",
    [
        "keys out of order",  # canonical text differs, the same content: no problem
        "float as int",  # 134 == 134.0 in Python: no problem, as before
        "a value changed",
        "a key added",
        "a key removed",
        "a key renamed",  # the same values in the same places, under another name
        "content not an object",
        "id as text",
    ],
)
def test_forged_log_entries_get_the_reference_verdict(forger: Forger, what: str) -> None:  # noqa: F811
    seq = _first_entry_naming(forger, "cycles")

    def change(items: list[Any]) -> str:
        item = next(i for i in items if i.get("table") == "cycles")
        content = item["content"]
        if what == "keys out of order":
            item["content"] = dict(reversed(list(content.items())))
        elif what == "float as int":
            content["temp_c"] = int(content["temp_c"])
        elif what == "a value changed":
            content["temp_c"] = 121.0
        elif what == "a key added":
            content["zz_extra"] = 1
        elif what == "a key renamed":
            item["content"] = {(k + "x" if k == "temp_c" else k): v for k, v in content.items()}
        elif what == "a key removed":
            del content["temp_c"]
        elif what == "content not an object":
            item["content"] = [1, 2]
        elif what == "id as text":
            item["id"] = str(item["id"])
        return json.dumps(items, ensure_ascii=False, separators=(",", ":"))

    def forge(conn: Connection) -> None:
        _drop_triggers(conn)
        _rewrite_entry(conn, seq, change)

    fast, reference = both(forger, forge)
    assert fast == reference
    if what in ("keys out of order", "float as int", "id as text"):
        assert fast == []
    else:
        assert fast and fast[0][0].startswith("cycles #")


@pytest.mark.parametrize(
    "fields",
    [
        ("2026-11-24T08:00:00Z", "server", "ann", "session.start"),
        ("2026-11-24T08:00:00.123456Z", "terminal", None, "pin.failed"),
        ("x", 'quo"te\\back', "Zoë ✓ 𝄞", "tab\tnew\nline\r\b\f"),
        ("\x00\x01\x1f\x7f", "\u2028\u2029", "", "ctrl\x19end"),
    ],
)
def test_the_header_written_directly_hashes_as_entry_hash(fields: tuple[Any, ...]) -> None:
    at, clock, operator, action = fields
    for seq in (1, 406656, 2**63 - 1):
        records = '[{"content":{"a":"é"},"id":1,"table":"t"}]'
        expected = audit.entry_hash("ab" * 32, seq, at, clock, operator, action, records)
        assert audit._header_hash("ab" * 32, seq, at, clock, operator, action, records) == expected
