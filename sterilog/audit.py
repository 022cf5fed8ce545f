"""The audit chain (SPEC §7): append inside the write lock; verify by streaming.

Entry hash (documented in docs/architecture.md so an inspector's script can recompute it):

    hash = sha256( prev_hash + "\\n" + header + "\\n" + records )

where `header` is the canonical JSON (sorted keys, no spaces, UTF-8) of
{"seq", "at" (UTC ISO with Z), "clock", "operator", "action"} and `records` is the stored text
of the `records` column: the canonical JSON list of {"table", "id", "content"} for every row the
write inserted, `content` being the row's full column values as read back from the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from sterilog.models import AUDITED, AuditEntry, Base

GENESIS = "0" * 64
BATCH = 5000
DIGEST_BATCH = 4


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# One encoder object: json.dumps with non-default options builds a new encoder on every call,
# which would dominate `audit verify`'s per-entry cost.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(obj: Any) -> str:
    return _ENCODER.encode(obj)


# Secrets are recorded as a digest: the log proves the value never changed without carrying it
# (an export of the log must not hand out PIN hashes to brute-force).
SECRET_COLUMNS = {("staff", "pin_hash"), ("pin_events", "pin_hash")}


def _secret(value: Any) -> Any:
    if value is None:
        return None
    return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()


# Binary columns are recorded as the SHA-256 of their bytes: an attachment of 20 MB must not be
# copied into the log, and verify hashes the stored bytes, so a changed byte is still found.
DIGEST_COLUMNS = {("attachments", "data")}


def _digest(value: Any) -> Any:
    if value is None:
        return None
    return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()


def row_content(table: Table, row: Any) -> dict[str, Any]:
    mapping = row._mapping
    return {
        c.name: (
            _secret(mapping[c])
            if (table.name, c.name) in SECRET_COLUMNS
            else _digest(mapping[c])
            if (table.name, c.name) in DIGEST_COLUMNS
            else _jsonable(mapping[c])
        )
        for c in table.columns
    }


def entry_hash(
    prev_hash: str,
    seq: int,
    at: dt.datetime | str,
    clock: str,
    operator: str | None,
    action: str,
    records: str,
) -> str:
    header = canonical(
        {
            "seq": seq,
            "at": at if isinstance(at, str) else _jsonable(at),
            "clock": clock,
            "operator": operator,
            "action": action,
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{header}\n{records}".encode()).hexdigest()


_esc = json.encoder.encode_basestring  # json's own (C) quoting


def _header_hash(
    prev_hash: str, seq: int, at: str, clock: str, operator: str | None, action: str, records: str
) -> str:
    """entry_hash for str fields and an int seq, the header written directly: the same bytes
    as canonical() (sorted keys, compact, ensure_ascii=False) without the encoder's dict walk
    (tests/test_audit_verify_reference.py checks that both agree)."""
    op = "null" if operator is None else _esc(operator)
    header = (
        f'{{"action":{_esc(action)},"at":{_esc(at)},"clock":{_esc(clock)},'
        f'"operator":{op},"seq":{seq}}}'
    )
    return hashlib.sha256(f"{prev_hash}\n{header}\n{records}".encode()).hexdigest()


def head(session: Session) -> tuple[int, str]:
    row = session.execute(
        select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    if row is None:
        return 0, GENESIS
    return int(row[0]), str(row[1])


def append(
    session: Session,
    *,
    action: str,
    operator: str | None,
    now: dt.datetime,
    clock: str,
    objects: Sequence[Base] = (),
) -> AuditEntry:
    """Flush `objects`, read them back as stored, and chain one entry recording them.

    Must run inside db.write_session (the write lock makes `head` + insert atomic).
    """
    session.flush()
    records: list[dict[str, Any]] = []
    by_table: dict[str, list[Base]] = {}
    for obj in objects:
        by_table.setdefault(obj.__tablename__, []).append(obj)
    contents: dict[tuple[str, int], dict[str, Any]] = {}
    for name, objs in by_table.items():
        table = Base.metadata.tables[name]
        pk = table.c.id
        ids = [int(o.id) for o in objs]  # type: ignore[attr-defined]
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            for row in session.execute(select(table).where(pk.in_(chunk))):
                contents[(name, int(row._mapping[pk]))] = row_content(table, row)
    for obj in objects:
        key = (obj.__tablename__, int(obj.id))  # type: ignore[attr-defined]
        records.append({"table": key[0], "id": key[1], "content": contents[key]})
    return _append_raw(session, action, operator, now, clock, canonical(records))


def append_event(
    session: Session,
    *,
    action: str,
    operator: str | None,
    now: dt.datetime,
    clock: str,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """An entry with no record rows (e.g. a failed PIN attempt)."""
    payload: list[dict[str, Any]] = []
    if detail:
        payload.append({"table": None, "id": None, "content": detail})
    return _append_raw(session, action, operator, now, clock, canonical(payload))


def _append_raw(
    session: Session, action: str, operator: str | None, now: dt.datetime, clock: str, records: str
) -> AuditEntry:
    last_seq, last_hash = head(session)
    seq = last_seq + 1
    at = now.astimezone(dt.UTC)
    entry = AuditEntry(
        seq=seq,
        at=at,
        clock=clock,
        operator=operator,
        action=action,
        records=records,
        prev_hash=last_hash,
        hash=entry_hash(last_hash, seq, at, clock, operator, action, records),
    )
    session.add(entry)
    session.flush()
    return entry


# --- verification ------------------------------------------------------------------------------


@dataclass
class Problem:
    record: str
    message: str


@dataclass
class Verification:
    entries: int = 0
    head: str = f"0:{GENESIS}"
    problems: list[Problem] = field(default_factory=list)
    anchor_ok: bool | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


MAX_PROBLEMS = 1000


def _raw_converters(session: Session, table: Table) -> list[Callable[[Any], Any]]:
    """Per column: driver value -> the JSON value `row_content` records.

    Verify reads through the driver's own cursor: SQLAlchemy's result processing and ORM rows
    cost more than the hashing itself (SPEC §10 asks for >= 50 000 entries per second). The
    output must equal `row_content` exactly; tests/test_foundation.py checks both ways agree.
    """
    from sqlalchemy import Boolean, Date

    from sterilog.sqltypes import UTCDateTime

    sqlite = session.get_bind().dialect.name == "sqlite"
    out: list[Callable[[Any], Any]] = []
    for col in table.columns:
        if (table.name, col.name) in SECRET_COLUMNS:
            out.append(_secret)
        elif (table.name, col.name) in DIGEST_COLUMNS:
            out.append(_digest)
        elif isinstance(col.type, UTCDateTime):
            out.append(_sqlite_instant if sqlite else _pg_instant)
        elif isinstance(col.type, Date):
            out.append(_identity if sqlite else _pg_date)
        elif isinstance(col.type, Boolean):
            out.append(_bool)
        else:
            out.append(_identity)
    return out


def _identity(value: Any) -> Any:
    return value


class NonCanonical(str):
    """A stored value in a form sterilog never writes. It equals nothing an entry recorded (a
    recorded value is JSON: never this type's marker text), so the row is named as changed."""

    __slots__ = ()


def _noncanonical(value: Any) -> NonCanonical:
    return NonCanonical(f"<non-canonical stored form {value!r}>")


def _bool(value: Any) -> Any:
    # Exactly one stored form: 0/1 on SQLite, boolean on PostgreSQL (2 or '1' also read as true).
    if value is None or value is True or value is False:
        return value
    if type(value) is int and (value == 0 or value == 1):
        return value == 1
    return _noncanonical(value)


def _pg_date(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is not dt.date:
        return _noncanonical(value)
    return value.isoformat()


def _pg_instant(value: Any) -> Any:
    # One type: `timestamp without time zone` holding UTC. An aware value means the column's
    # type was changed (timestamptz reads depend on the session's time zone).
    if value is None:
        return None
    if type(value) is not dt.datetime or value.tzinfo is not None:
        return _noncanonical(value)
    return _jsonable(value)


# The one stored form of an instant on SQLite (what SQLAlchemy's DateTime writes).
_CANONICAL_INSTANT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", re.ASCII).fullmatch


def _sqlite_instant(value: Any) -> Any:
    """SQLite text -> the recorded ISO form, for the ONE stored form sterilog writes:
    "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, naive). Any other text, even for the same instant
    ('2026-11-28T08:45:00+00:45'), is a non-canonical value: the gate and the reports would read
    it differently from what the audit entry recorded."""
    if value is None:
        return None
    if type(value) is str and _CANONICAL_INSTANT(value):
        frac = value[20:]
        return f"{value[:10]}T{value[11:19]}{'' if frac == '000000' else '.' + frac}Z"
    return _noncanonical(value)


def _raw_rows(session: Session, sql: str, params: tuple[Any, ...]) -> list[Any]:
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        if session.get_bind().dialect.name != "sqlite":
            sql = sql.replace("?", "%s")
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _batch_converter(
    width: int, id_index: int, special: list[tuple[int, str, Callable[[Any], Any]]]
) -> Callable[[list[Any]], list[tuple[int, tuple[Any, ...]]]]:
    """rows -> [(id, converted values)], as one list comprehension written for the table (a
    loop over the converters per row costs more than the conversions themselves)."""
    if not special:
        return lambda rows: [(int(r[id_index]), tuple(r)) for r in rows]
    funcs = {i: f"f{i}" for i, _, _ in special}
    values = ", ".join(f"{funcs[i]}(r[{i}])" if i in funcs else f"r[{i}]" for i in range(width))
    env: dict[str, Any] = {f"f{i}": f for i, _, f in special}
    code = f"lambda rows: [(int(r[{id_index}]), ({values},)) for r in rows]"
    return eval(code, env)  # type: ignore[no-any-return]  # built from column indexes only


class _Cursor:
    """Keyset-paginated stream of one record table's rows, in id order.

    A row is (id, values): its converted values as a tuple, columns in sorted-name order (the
    order canonical JSON records a content's keys in), so that a recorded content compares
    with it without building a dictionary per row; `content(values)` is the dictionary.
    """

    def __init__(self, session: Session, table: Table) -> None:
        self.session = session
        self.names = sorted(c.name for c in table.columns)
        self.keys = tuple(self.names)
        self.id_index = self.names.index("id")
        converters = dict(
            zip((c.name for c in table.columns), _raw_converters(session, table), strict=True)
        )
        self.special = [
            (i, name, converters[name])
            for i, name in enumerate(self.names)
            if converters[name] is not _identity
        ]
        # Tables holding documents (up to 20 MB a row) are read a few rows at a time, so memory
        # stays bounded by a few documents, not by BATCH of them.
        self.batch = (
            DIGEST_BATCH if any((table.name, n) in DIGEST_COLUMNS for n in self.names) else BATCH
        )
        self.convert = _batch_converter(len(self.names), self.id_index, self.special)
        cols = ", ".join(f'"{n}"' for n in self.names)
        # EVERY row, whatever its key: the first batch has no lower bound (ids <= 0 included).
        self.first_sql = f'SELECT {cols} FROM "{table.name}" ORDER BY id LIMIT ?'
        self.sql = f'SELECT {cols} FROM "{table.name}" WHERE id > ? ORDER BY id LIMIT ?'
        self.last_id: int | None = None
        self.buffer: list[tuple[int, tuple[Any, ...]]] = []
        self.pos = 0
        self.done = False
        self._fill()

    def content(self, values: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(self.names, values, strict=True))

    def _fill(self) -> None:
        if self.last_id is None:
            rows = _raw_rows(self.session, self.first_sql, (self.batch,))
        else:
            rows = _raw_rows(self.session, self.sql, (self.last_id, self.batch))
        buffer = self.convert(rows)
        self.buffer = buffer
        self.pos = 0
        if rows:
            self.last_id = self.buffer[-1][0]
        else:
            self.done = True

    def peek(self) -> tuple[int, tuple[Any, ...]] | None:
        if self.pos >= len(self.buffer):
            if self.done:
                return None
            self._fill()
            if not self.buffer:
                return None
        return self.buffer[self.pos]

    def advance(self) -> None:
        self.pos += 1


_ENTRIES_COLS = "SELECT seq, at, clock, operator, action, records, prev_hash, hash FROM audit_log "
_ENTRY_COLUMNS = {"seq", "at", "clock", "operator", "action", "records", "prev_hash", "hash"}
_ENTRIES_SQL = _ENTRIES_COLS + "WHERE seq > ? ORDER BY seq LIMIT ?"
_FIRST_ENTRIES_SQL = _ENTRIES_COLS + "ORDER BY seq LIMIT ?"


def _entry_batches(session: Session) -> Iterator[list[Any]]:
    """Audit entries in order, a batch at a time, as the driver returns them."""
    # The first batch has no lower bound: an entry forged with seq <= 0 is read too.
    rows = _raw_rows(session, _FIRST_ENTRIES_SQL, (BATCH,))
    while rows:
        yield rows
        rows = _raw_rows(session, _ENTRIES_SQL, (int(rows[-1][0]), BATCH))


def _add(problems: list[Problem], p: Problem) -> None:
    if len(problems) < MAX_PROBLEMS:
        problems.append(p)


# Columns added by a later migration, with the value they take on rows written before it. An
# entry recorded before the column existed does not name it; the row then holds this value.
ADDED_COLUMNS: dict[tuple[str, str], Any] = {
    ("settings", "training"): False,
    ("signatures", "digest"): None,
    ("signatures", "marks"): None,
    ("incidents", "room_id"): None,
    ("incidents", "device_id"): None,
    ("incidents", "staff_id"): None,
}


def _only_added_columns(table: str, current: dict[str, Any], recorded: dict[str, Any]) -> bool:
    """True when the row differs from its entry only by columns added after it was recorded."""
    extra = set(current) - set(recorded)
    if not extra or any(
        (table, k) not in ADDED_COLUMNS or current[k] != ADDED_COLUMNS[(table, k)] for k in extra
    ):
        return False
    return all(current[k] == v for k, v in recorded.items())


def verify(
    session: Session,
    anchor: tuple[int, str] | None = None,
    tables: Iterable[type[Base]] = AUDITED,
    progress: Callable[[int], None] | None = None,
    *,
    check_schema: bool = True,
) -> Verification:
    """Recompute the chain and compare every record table with what the log recorded.

    One pass over the log, with one keyset cursor per table: memory stays bounded by the batch
    size whatever the history. Ids grow with the log (they are allocated under the write lock),
    so a row the log skips was inserted behind the tool's back, and a logged id the table skips
    was deleted.
    """
    result = Verification()
    if check_schema:
        from sterilog import schema

        # The schema first: a planted trigger or a retyped column makes every later comparison
        # meaningless, and must be named even when every row still matches.
        for name, message in schema.compare(session.connection()):
            if len(result.problems) < MAX_PROBLEMS:
                result.problems.append(Problem(name, message))
    problems = result.problems
    from sterilog.schema import live_columns

    # A table or column that is gone is a problem to name, not a query to crash on: such a table
    # is named once and not streamed (its logged rows are not listed one by one).
    live = live_columns(session.connection())
    cursors: dict[str, _Cursor] = {}
    for model in tables:
        table: Table = model.__table__  # type: ignore[assignment]
        lacking = sorted({c.name for c in table.columns} - live.get(table.name, set()))
        if table.name not in live:
            _add(problems, Problem(table.name, "record table is missing (dropped)"))
        elif lacking:
            _add(
                problems,
                Problem(
                    table.name,
                    f"record table lacks column(s) {', '.join(lacking)}: its rows cannot be "
                    "compared",
                ),
            )
        else:
            cursors[table.name] = _Cursor(session, table)

    def problem(record: str, message: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(Problem(record, message))

    scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    prev = GENESIS
    expected_seq = 1
    count = 0
    anchor_seen = False
    skipped = {m.__tablename__ for m in tables} - set(cursors)
    log_lacks = sorted(_ENTRY_COLUMNS - live.get("audit_log", set()))
    batches = _entry_batches(session) if not log_lacks else iter(())
    # `at` in its hashed (ISO, Z) form
    at_of = _sqlite_instant if session.get_bind().dialect.name == "sqlite" else _pg_instant
    if "audit_log" not in live:
        problem("audit_log", "the audit log table is missing (dropped)")
    elif log_lacks:
        problem("audit_log", f"the audit log lacks column(s) {', '.join(log_lacks)}")
    for seq, at, clock, operator, action, records, prev_hash, stored_hash in (
        entry for batch in batches for entry in batch
    ):
        count += 1
        seq = int(seq)
        at = at_of(at)
        if seq < expected_seq:
            problem(f"audit_log #{seq}", "entry out of sequence (inserted behind the tool's back)")
        elif seq != expected_seq:
            problem(
                f"audit_log #{expected_seq}", f"audit entries {expected_seq}..{seq - 1} are missing"
            )
        if prev_hash != prev:
            problem(f"audit_log #{seq}", "prev_hash does not match the previous entry's hash")
        if (
            type(at) is str
            and type(clock) is str
            and type(action) is str
            and (operator is None or type(operator) is str)
            and type(prev_hash) is str
            and type(records) is str
        ):
            computed = _header_hash(prev_hash, seq, at, clock, operator, action, records)
        else:
            computed = entry_hash(prev_hash, seq, at, clock, operator, action, records)
        if computed != stored_hash:
            problem(f"audit_log #{seq}", "hash does not match the entry's content (entry altered)")
        if anchor is not None and seq == anchor[0]:
            anchor_seen = True
            if stored_hash != anchor[1]:
                problem(f"audit_log #{seq}", "does not match the anchor printed earlier")
        prev = stored_hash
        expected_seq = seq + 1
        # json.loads without its Python wrapper: the C scanner; json.loads itself for anything
        # but one document filling the whole text (it raises, allows spaces, or takes bytes).
        try:
            items, end = scan(records, 0)
        except (StopIteration, ValueError, TypeError):
            end = -1
        if end == -1 or end != len(records):
            try:
                items = json.loads(records)
            except ValueError:
                problem(f"audit_log #{seq}", "records column is not valid JSON")
                continue
        for item in items:
            name = item.get("table")
            if name is None:
                continue
            rid = item["id"]
            if type(rid) is not int:
                rid = int(rid)
            cursor = cursors.get(name)
            if cursor is None:
                if name not in skipped:
                    problem(f"{name} #{rid}", f"audit entry {seq} names an unknown table")
                continue
            # The common case first: the next row is the recorded one and its values, in the
            # canonical key order, are the recorded values (equal tuples: equal dictionaries).
            buffer = cursor.buffer
            pos = cursor.pos
            if pos < len(buffer) and buffer[pos][0] == rid:
                recorded = item["content"]
                if (
                    type(recorded) is dict
                    and tuple(recorded) == cursor.keys
                    and tuple(recorded.values()) == buffer[pos][1]
                ):
                    cursor.pos = pos + 1
                    continue
            current = cursor.peek()
            while current is not None and current[0] < rid:
                problem(
                    f"{name} #{current[0]}",
                    "row is not in the audit log (inserted behind the tool's back)",
                )
                cursor.advance()
                current = cursor.peek()
            if current is None or current[0] > rid:
                problem(f"{name} #{rid}", f"row recorded by audit entry {seq} is missing (deleted)")
                continue
            row = cursor.content(current[1])
            recorded = item["content"]
            if not isinstance(recorded, dict):  # a forged entry: name it, do not crash on it
                problem(
                    f"{name} #{rid}",
                    f"row differs from audit entry {seq} (the recorded content is not an object)",
                )
            elif row != recorded and not _only_added_columns(name, row, recorded):
                changed = sorted(
                    k for k in set(row) | set(recorded) if row.get(k) != recorded.get(k)
                )
                problem(
                    f"{name} #{rid}",
                    f"row differs from audit entry {seq} (changed: {', '.join(changed)})",
                )
            cursor.advance()
        if progress is not None and count % BATCH == 0:
            progress(count)
    for name, cursor in cursors.items():
        current = cursor.peek()
        while current is not None:
            problem(
                f"{name} #{current[0]}",
                "row is not in the audit log (inserted behind the tool's back)",
            )
            cursor.advance()
            current = cursor.peek()
    if anchor is not None:
        result.anchor_ok = anchor_seen and not any(
            p.message.startswith("does not match the anchor") for p in problems
        )
        if not anchor_seen:
            problem(
                f"audit_log #{anchor[0]}",
                "the anchored entry is not in the log (the log was cut back or replaced)",
            )
    result.entries = count
    result.head = f"{expected_seq - 1}:{prev}"
    return result


# --- clock anomalies ---------------------------------------------------------------------------

CLOCK_TOLERANCE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ClockAnomaly:
    seq: int
    at: str  # UTC ISO with Z, as hashed
    message: str


def clock_anomalies(
    session: Session, now: dt.datetime, limit: int = MAX_PROBLEMS
) -> list[ClockAnomaly]:
    """Entries more than 5 minutes earlier than the entry before them, or more than 5 minutes
    later than `now` (the verifier's clock). They do not break the chain: a terminal's clock
    moved back or forward shows here. A separate pass over (seq, at) only, on naive UTC
    datetimes (the cheapest comparison)."""
    out: list[ClockAnomaly] = []
    previous: dt.datetime | None = None
    limit_future = now.astimezone(dt.UTC).replace(tzinfo=None) + CLOCK_TOLERANCE
    for seq, moment in _stream_times(session):
        if moment > limit_future:
            at = _jsonable(moment)
            message = (
                f"recorded at {at}, more than 5 minutes after the verifier's clock "
                f"({_jsonable(now)})"
            )
            out.append(ClockAnomaly(seq, at, message))
        elif previous is not None and moment < previous - CLOCK_TOLERANCE:
            at = _jsonable(moment)
            message = (
                f"recorded at {at}, more than 5 minutes before the entry before it "
                f"({_jsonable(previous)}): a clock was moved back"
            )
            out.append(ClockAnomaly(seq, at, message))
        previous = moment
        if len(out) >= limit:
            break
    return out


def _stream_times(session: Session) -> Iterator[tuple[int, dt.datetime]]:
    """(seq, at as naive UTC) of every entry, in order."""
    parse = dt.datetime.fromisoformat
    last = 0
    sql = "SELECT seq, at FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
    while True:
        rows = _raw_rows(session, sql, (last, BATCH))
        if not rows:
            return
        for seq, at in rows:
            moment = parse(at) if isinstance(at, str) else at  # SQLite: text; PostgreSQL: aware
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
            yield seq, moment
        last = int(rows[-1][0])
