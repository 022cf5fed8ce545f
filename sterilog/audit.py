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
import gc
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session

from sterilog import tables as core

if TYPE_CHECKING:
    from sterilog.models import Base

# The write side (`append`, `append_rows`, `head`) imports no mapped class: the per-client
# writes (`session start`, `session end`) insert with Core on sterilog/tables.py and chain their
# entry here without loading sterilog.models (issue 17). `verify` imports the models' list of
# audited tables when it is asked for it.

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
    if not isinstance(value, (bytes, bytearray, memoryview)):
        # text or a number where bytes belong (bytes(10**12) would allocate a terabyte)
        return NonCanonical(f"<non-canonical stored form: {type(value).__name__}, not bytes>")
    return "sha256:" + hashlib.sha256(value).hexdigest()


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


class Entry(NamedTuple):
    """The audit entry a write chained (its sequence number and hash)."""

    seq: int
    hash: str


_HEAD = text("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")


def head(session: Session) -> tuple[int, str]:
    row = session.execute(_HEAD).first()
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
) -> Entry:
    """Flush `objects`, read them back as stored, and chain one entry recording them.

    Must run inside db.write_session (the write lock makes `head` + insert atomic).
    """
    session.flush()
    rows: list[tuple[Table, int]] = [
        (obj.__table__, int(obj.id))  # type: ignore[attr-defined, misc]
        for obj in objects
    ]
    return append_rows(session, action=action, operator=operator, now=now, clock=clock, rows=rows)


def append_rows(
    session: Session,
    *,
    action: str,
    operator: str | None,
    now: dt.datetime,
    clock: str,
    rows: Sequence[tuple[Table, int]] = (),
) -> Entry:
    """Read the rows (table, id) a write inserted back as stored, and chain one entry recording
    them, in the order given. The Core path of `append` (rows inserted with `insert()`, no ORM
    objects); both record what the database holds, never what the caller meant to write.

    Must run inside db.write_session (the write lock makes `head` + insert atomic).
    """
    by_table: dict[Table, list[int]] = {}
    for table, rid in rows:
        by_table.setdefault(table, []).append(rid)
    contents: dict[tuple[str, int], dict[str, Any]] = {}
    for table, ids in by_table.items():
        pk = table.c.id
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            for row in session.execute(select(table).where(pk.in_(chunk))):
                contents[(table.name, int(row._mapping[pk]))] = row_content(table, row)
    records = [
        {"table": table.name, "id": rid, "content": contents[(table.name, rid)]}
        for table, rid in rows
    ]
    return _append_raw(session, action, operator, now, clock, canonical(records))


def append_event(
    session: Session,
    *,
    action: str,
    operator: str | None,
    now: dt.datetime,
    clock: str,
    detail: dict[str, Any] | None = None,
) -> Entry:
    """An entry with no record rows (e.g. a failed PIN attempt)."""
    payload: list[dict[str, Any]] = []
    if detail:
        payload.append({"table": None, "id": None, "content": detail})
    return _append_raw(session, action, operator, now, clock, canonical(payload))


_INSERT_ENTRY = insert(core.audit_log)


def _append_raw(
    session: Session, action: str, operator: str | None, now: dt.datetime, clock: str, records: str
) -> Entry:
    last_seq, last_hash = head(session)
    seq = last_seq + 1
    at = now.astimezone(dt.UTC)
    digest = entry_hash(last_hash, seq, at, clock, operator, action, records)
    session.execute(
        _INSERT_ENTRY,
        {
            "seq": seq,
            "at": at,
            "clock": clock,
            "operator": operator,
            "action": action,
            "records": records,
            "prev_hash": last_hash,
            "hash": digest,
        },
    )
    return Entry(seq, digest)


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
    halves: bool = False  # verified in two halves at once (a clean result only)
    # with verify(now=): what clock_anomalies(now) finds, found during the same walk
    clock_anomalies: list[ClockAnomaly] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


MAX_PROBLEMS = 1000


# --- the database file itself (SQLite) ---------------------------------------------------------

# `PRAGMA integrity_check` reads every page and checks every index against its table: an index
# swapped for another b-tree (writable_schema) or edited in the file hides rows from every query
# that uses it (the gate's single-use check, `trace client`), while the tables, the schema's
# text and the log all still match. Only this check sees it. PostgreSQL: the server's own
# concern (data checksums, amcheck); its files are not writable by a sterilog login.
FILE = "database file"


def _integrity_rows(conn: Any) -> list[Problem]:
    rows = conn.execute(f"PRAGMA integrity_check({MAX_PROBLEMS})").fetchall()
    found = [str(r[0]) for r in rows]
    if found == ["ok"]:
        return []
    return [Problem(FILE, f"SQLite integrity check: {m}") for m in found[:MAX_PROBLEMS]]


def file_problems(session: Session) -> list[Problem]:
    """The database file's own integrity (SQLite; nothing on PostgreSQL), on this connection."""
    if session.get_bind().dialect.name != "sqlite":
        return []
    dbapi = session.connection().connection.driver_connection
    try:
        return _integrity_rows(dbapi)
    except Exception as error:  # a file too damaged to check: that is the finding
        return [Problem(FILE, f"SQLite integrity check could not run: {error}")]


class _FileCheck:
    """`file_problems` alongside the walk: on a read-only connection of its own, in a thread
    (SQLite works without Python's lock, so it uses the core the walk leaves idle). Started
    after the second half's process is forked (`start` is idempotent): a fork while another
    thread is inside SQLite could copy a held lock into the child."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        self.path = ""
        if self.sqlite:
            for _seq, name, path in _raw_rows(session, "PRAGMA database_list", ()):
                if name == "main":
                    self.path = str(path or "")
        self.found: list[Problem] | None = None
        self.thread: Any = None

    def _run(self) -> None:
        import sqlite3
        from urllib.parse import quote

        try:
            conn = sqlite3.connect(f"file:{quote(self.path)}?mode=ro", uri=True)
            try:
                self.found = _integrity_rows(conn)
            finally:
                conn.close()
        except Exception as error:
            self.found = [Problem(FILE, f"SQLite integrity check could not run: {error}")]

    def start(self) -> None:
        if not self.sqlite or not self.path or self.thread is not None:
            return
        import threading

        self.thread = threading.Thread(target=self._run, name="sterilog-integrity", daemon=True)
        self.thread.start()

    def problems(self) -> list[Problem]:
        if not self.sqlite:
            return []
        if self.thread is None:  # in memory, or never started: here, on the session's own
            return file_problems(self.session)
        self.thread.join()
        return self.found or []


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
    """A stored value in a form sterilog never writes. It equals nothing at all (not even a
    recorded text that happens to read like its marker), so the row is named as changed."""

    __slots__ = ()

    # Python asks a str subclass first when it is compared with a str, whichever side it is on.
    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


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


# Converted instants by stored text: a log repeats the same few minutes many times (an entry's
# `at`, its rows' `at` and `recorded_at`), and the conversion is a pure function of the text.
_INSTANTS: dict[str, Any] = {}
_INSTANTS_MAX = 1 << 14


def _nothing(value: Any) -> None:
    return None


def _sqlite_instant(value: Any) -> Any:
    """SQLite text -> the recorded ISO form, for the ONE stored form sterilog writes:
    "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, naive). Any other text, even for the same instant
    ('2026-11-28T08:45:00+00:45'), is a non-canonical value: the gate and the reports would read
    it differently from what the audit entry recorded."""
    if type(value) is str:
        out = _INSTANTS.get(value)
        if out is not None:
            return out
        if _CANONICAL_INSTANT(value):
            frac = value[20:]
            out = f"{value[:10]}T{value[11:19]}{'' if frac == '000000' else '.' + frac}Z"
        else:
            out = _noncanonical(value)
        if len(value) == 26:  # the canonical length: a huge forged text is not kept
            if len(_INSTANTS) >= _INSTANTS_MAX:
                _INSTANTS.clear()
            _INSTANTS[value] = out
        return out
    if value is None:
        return None
    return _noncanonical(value)


def _raw_rows(session: Session, sql: str, params: tuple[Any, ...]) -> list[Any]:
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    sqlite = session.get_bind().dialect.name == "sqlite"
    if not sqlite:
        sql = sql.replace("?", "%s")
    try:
        return _fetch(dbapi, sql, params)
    except Exception as error:
        # SQLite stores whatever bytes it is given as text; sterilog only ever writes UTF-8.
        # Read again with such a text as a non-canonical value, so the row or the entry that
        # holds it is named rather than the whole verification failing.
        if not sqlite or "UTF-8" not in str(error):
            raise
        dbapi.text_factory = _lenient_text
        try:
            return _fetch(dbapi, sql, params)
        finally:
            dbapi.text_factory = str


def _fetch(dbapi: Any, sql: str, params: tuple[Any, ...]) -> list[Any]:
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _lenient_text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return NonCanonical(f"<non-canonical stored form: text that is not UTF-8 {raw!r}>")


_CONVERTERS: dict[tuple[Any, ...], Callable[[list[Any]], list[tuple[int, tuple[Any, ...]]]]] = {}


def _batch_converter(
    width: int, id_index: int, special: list[tuple[int, str, Callable[[Any], Any]]]
) -> Callable[[list[Any]], list[tuple[int, tuple[Any, ...]]]]:
    """rows -> [(id, converted values)], as one list comprehension written for the table (a
    loop over the converters per row costs more than the conversions themselves). Built once
    per shape and kept: compiling ~46 of them took most of a small database's verify."""
    key = (width, id_index, tuple((i, f) for i, _, f in special))
    converter = _CONVERTERS.get(key)
    if converter is None:
        converter = _CONVERTERS[key] = _build_converter(width, id_index, special)
    return converter


def _build_converter(
    width: int, id_index: int, special: list[tuple[int, str, Callable[[Any], Any]]]
) -> Callable[[list[Any]], list[tuple[int, tuple[Any, ...]]]]:
    if not special:
        return lambda rows: [(int(r[id_index]), tuple(r)) for r in rows]
    # an instant is looked up in the conversions already made first (no call when it is there)
    funcs = {
        i: f"(cached(r[{i}]) or f{i}(r[{i}]))" if f is _sqlite_instant else f"f{i}(r[{i}])"
        for i, _, f in special
    }
    values = ", ".join(funcs.get(i, f"r[{i}]") for i in range(width))
    env: dict[str, Any] = {f"f{i}": f for i, _, f in special}
    env["cached"] = _INSTANTS.get
    code = f"lambda rows: [(int(r[{id_index}]), ({values},)) for r in rows]"
    return eval(code, env)  # type: ignore[no-any-return]  # built from column indexes only


class _Cursor:
    """Keyset-paginated stream of one record table's rows, in id order.

    A row is (id, values): its converted values as a tuple, columns in sorted-name order (the
    order canonical JSON records a content's keys in), so that a recorded content compares
    with it without building a dictionary per row; `content(values)` is the dictionary.
    `start`: begin at the first row whose id is >= start (the second half of a parallel verify)
    instead of at the very first row.
    """

    def __init__(self, session: Session, table: Table, start: int | None = None) -> None:
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
        self.first_params: tuple[Any, ...] = (self.batch,)
        if start is not None:
            self.first_sql = f'SELECT {cols} FROM "{table.name}" WHERE id >= ? ORDER BY id LIMIT ?'
            self.first_params = (start, self.batch)
        self.sql = f'SELECT {cols} FROM "{table.name}" WHERE id > ? ORDER BY id LIMIT ?'
        self.last_id: int | None = None
        self.before: int | None = None  # the last id of the batches already passed
        self.buffer: list[tuple[int, tuple[Any, ...]]] = []
        self.pos = 0
        self.done = False
        self._fill()

    def content(self, values: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(self.names, values, strict=True))

    def _fill(self) -> None:
        if self.buffer:
            self.before = self.buffer[-1][0]
        if self.last_id is None:
            rows = _raw_rows(self.session, self.first_sql, self.first_params)
        else:
            rows = _raw_rows(self.session, self.sql, (self.last_id, self.batch))
        buffer = self.convert(rows)
        self.buffer = buffer
        self.pos = 0
        if rows:
            self.last_id = self.buffer[-1][0]
        # Fewer rows than asked for: the table ends here, so the end is known without asking
        # again. Every caller verifies inside one snapshot (`db.read_session`, or a backup
        # copy that nothing writes), where a later read could not find more rows anyway.
        if len(rows) < self.batch:
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

    def consumed(self) -> int | None:
        """The id of the last row passed (matched or named as a problem), None: none yet."""
        return self.buffer[self.pos - 1][0] if self.pos else self.before


_ENTRIES_COLS = "SELECT seq, at, clock, operator, action, records, prev_hash, hash FROM audit_log "
_ENTRY_COLUMNS = {"seq", "at", "clock", "operator", "action", "records", "prev_hash", "hash"}
_ENTRIES_SQL = _ENTRIES_COLS + "WHERE seq > ? ORDER BY seq LIMIT ?"
_FIRST_ENTRIES_SQL = _ENTRIES_COLS + "ORDER BY seq LIMIT ?"


def _entry_batches(
    session: Session, after: int | None = None, upto: int | None = None
) -> Iterator[list[Any]]:
    """Audit entries in order, a batch at a time, as the driver returns them: all of them, or
    those with after < seq <= upto."""
    # The first batch has no lower bound: an entry forged with seq <= 0 is read too.
    if after is None:
        rows = _raw_rows(session, _FIRST_ENTRIES_SQL, (BATCH,))
    else:
        rows = _raw_rows(session, _ENTRIES_SQL, (after, BATCH))
    while rows:
        if upto is not None and int(rows[-1][0]) > upto:
            rows = [r for r in rows if int(r[0]) <= upto]
            if rows:
                yield rows
            return
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


def _check_tables(
    session: Session, tables: Sequence[type[Base]], problems: list[Problem]
) -> tuple[list[Table], bool]:
    """The record tables that can be streamed, and whether the log can be; a dropped table or
    a missing column is named."""
    from sterilog.schema import live_columns

    # A table or column that is gone is a problem to name, not a query to crash on: such a table
    # is named once and not streamed (its logged rows are not listed one by one).
    live = live_columns(session.connection())
    out: list[Table] = []
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
            out.append(table)
    log_lacks = sorted(_ENTRY_COLUMNS - live.get("audit_log", set()))
    if "audit_log" not in live:
        _add(problems, Problem("audit_log", "the audit log table is missing (dropped)"))
    elif log_lacks:
        _add(
            problems,
            Problem("audit_log", f"the audit log lacks column(s) {', '.join(log_lacks)}"),
        )
    return out, not log_lacks


def _times_readable(session: Session) -> bool:
    from sterilog.schema import live_columns

    return {"seq", "at"} <= live_columns(session.connection()).get("audit_log", set())


@dataclass
class _Span:
    """What one walk over a stretch of the log saw (for joining two halves)."""

    count: int = 0
    first_seq: int | None = None
    first_prev: str | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    anchor_seen: bool = False


def _walk(
    session: Session,
    batches: Iterable[list[Any]],
    cursors: dict[str, _Cursor],
    problems: list[Problem],
    *,
    skipped: set[str],
    anchor: tuple[int, str] | None = None,
    progress: Callable[[int], None] | None = None,
    first: tuple[int, str] | None = (1, GENESIS),
    lazy: dict[str, Table] | None = None,
    watch: _ClockWatch | None = None,
) -> _Span:
    """Recompute the chain over `batches` and compare every row the entries name with the next
    row of its table's cursor. `first`: the seq and prev_hash the first entry must have (None:
    whatever it has, recorded in the span, for a second half). `lazy`: tables whose cursor is
    opened at the first id an entry names (a second half). `watch`: look for clock anomalies
    too."""
    span = _Span()

    def problem(record: str, message: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append(Problem(record, message))

    scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    import orjson  # here, not at the top: the per-client writes import this module

    loads = orjson.loads
    orjson_error = orjson.JSONDecodeError
    if first is None:
        expected_seq: int | None = None
        prev = ""
    else:
        expected_seq, prev = first
    count = 0
    # `at` in its hashed (ISO, Z) form
    sqlite = session.get_bind().dialect.name == "sqlite"
    at_of = _sqlite_instant if sqlite else _pg_instant
    # PostgreSQL: no cache (a retyped column may hand over unhashable values)
    cached: Callable[[Any], Any] = _INSTANTS.get if sqlite else _nothing
    see = watch.see if watch is not None else None
    for batch in batches:
        for seq, at_raw, clock, operator, action, records, prev_hash, stored_hash in batch:
            count += 1
            seq = int(seq)
            at = cached(at_raw) or at_of(at_raw)
            if see is not None:
                see(seq, at_raw, at)
            if expected_seq is None:  # the first entry of a second half: joined by the caller
                span.first_seq, span.first_prev = seq, prev_hash
                expected_seq, prev = seq, prev_hash
            if seq != expected_seq:
                if seq < expected_seq:
                    problem(
                        f"audit_log #{seq}",
                        "entry out of sequence (inserted behind the tool's back)",
                    )
                else:
                    problem(
                        f"audit_log #{expected_seq}",
                        f"audit entries {expected_seq}..{seq - 1} are missing",
                    )
            if prev_hash != prev:
                problem(f"audit_log #{seq}", "prev_hash does not match the previous entry's hash")
            try:  # _header_hash takes text fields only (json's C quoting raises on anything else)
                computed = _header_hash(prev_hash, seq, at, clock, operator, action, records)
            except TypeError:
                try:
                    computed = entry_hash(prev_hash, seq, at, clock, operator, action, records)
                except (TypeError, ValueError):  # bytes, or text that is not UTF-8: not hashable
                    computed = None  # as sterilog hashes: this entry was not written by it
            if computed != stored_hash:
                problem(
                    f"audit_log #{seq}", "hash does not match the entry's content (entry altered)"
                )
            if anchor is not None and seq == anchor[0]:
                span.anchor_seen = True
                if stored_hash != anchor[1]:
                    problem(f"audit_log #{seq}", "does not match the anchor printed earlier")
            prev = stored_hash
            expected_seq = seq + 1
            # orjson first (about twice as fast as the json module here). Both read a text sterilog
            # wrote (json.dumps of values read back from the database) into the same values; where
            # they could differ (an integer literal beyond 64 bits: orjson gives a float), orjson
            # fails, or the text was not written by sterilog: then the entry's hash no longer
            # matches unless the log was re-chained, which only an anchor can reveal anyway.
            try:
                items = loads(records)
            except (orjson_error, TypeError):
                # json.loads without its Python wrapper: the C scanner; json.loads itself for
                # anything but one document filling the whole text (it raises, or allows spaces).
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
            # A records text of a shape sterilog never writes (not a list of objects with a
            # table and an integer id) is named, not crashed on; its hash no longer matches.
            try:
                for item in items:
                    name = item.get("table")
                    if name is None:
                        continue
                    rid = item["id"]
                    if type(rid) is not int:
                        rid = int(rid)
                    cursor = cursors.get(name)
                    if cursor is None:
                        if lazy is not None and name in lazy:
                            cursor = cursors[name] = _Cursor(session, lazy.pop(name), start=rid)
                        else:
                            if name not in skipped:
                                problem(
                                    f"{name} #{rid}", f"audit entry {seq} names an unknown table"
                                )
                            continue
                    # The common case first: the next row is the recorded one and its values, in
                    # the canonical key order, are the recorded values (equal tuples: equal
                    # dictionaries).
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
                        problem(
                            f"{name} #{rid}",
                            f"row recorded by audit entry {seq} is missing (deleted)",
                        )
                        continue
                    row = cursor.content(current[1])
                    recorded = item["content"]
                    # a forged entry: name it, do not crash on it
                    if not isinstance(recorded, dict):
                        problem(
                            f"{name} #{rid}",
                            f"row differs from audit entry {seq} "
                            "(the recorded content is not an object)",
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
            except (AttributeError, KeyError, TypeError, ValueError):
                problem(
                    f"audit_log #{seq}",
                    "records column is not a list of recorded rows (a shape sterilog never writes)",
                )
            if progress is not None and count % BATCH == 0:
                progress(count)
    span.count = count
    if count:
        span.last_seq, span.last_hash = expected_seq - 1 if expected_seq else None, prev
    return span


def _drain(cursors: dict[str, _Cursor], problems: list[Problem]) -> None:
    """Rows after the last one the log names: inserted behind the tool's back."""
    for name, cursor in cursors.items():
        current = cursor.peek()
        while current is not None:
            _add(
                problems,
                Problem(
                    f"{name} #{current[0]}",
                    "row is not in the audit log (inserted behind the tool's back)",
                ),
            )
            cursor.advance()
            current = cursor.peek()


def verify(
    session: Session,
    anchor: tuple[int, str] | None = None,
    tables: Iterable[type[Base]] | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    check_schema: bool = True,
    parallel_from: int | None = None,
    now: dt.datetime | None = None,
) -> Verification:
    """Recompute the chain and compare every record table with what the log recorded.

    One pass over the log, with one keyset cursor per table: memory stays bounded by the batch
    size whatever the history. Ids grow with the log (they are allocated under the write lock),
    so a row the log skips was inserted behind the tool's back, and a logged id the table skips
    was deleted.

    A log of `parallel_from` entries or more (default PARALLEL_FROM; on a machine with two or
    more processors) is verified in two halves at once, the second by a forked process with
    its own connection (`_verify_in_halves`). Only a clean result is taken from the halves: on
    any problem, any doubt at the seam, or any failure of the second process, the log is
    verified again in one pass, so what is reported is exactly what the one pass reports.

    `now` (the verifier's clock): also find the clock anomalies (`clock_anomalies`) during
    the same walk, into `clock_anomalies` of the result.
    """
    # The cyclic garbage collector is paused during the walk: the walk makes no reference
    # cycles (every object it builds is freed by its reference count), yet its millions of
    # short-lived dictionaries and tuples set off a collection every few hundred allocations,
    # each one traversing the objects still alive (6% of the walk's time).
    paused = gc.isenabled()
    gc.disable()
    try:
        return _verify(
            session,
            anchor,
            tables,
            progress,
            check_schema=check_schema,
            parallel_from=parallel_from,
            now=now,
        )
    finally:
        if paused:
            gc.enable()


def _verify(
    session: Session,
    anchor: tuple[int, str] | None,
    tables: Iterable[type[Base]] | None,
    progress: Callable[[int], None] | None,
    *,
    check_schema: bool,
    parallel_from: int | None,
    now: dt.datetime | None,
) -> Verification:
    if tables is None:
        from sterilog.models import AUDITED

        tables = AUDITED
    models = list(tables)
    result = Verification()
    if check_schema:
        from sterilog import schema

        # The schema first: a planted trigger or a retyped column makes every later comparison
        # meaningless, and must be named even when every row still matches.
        for name, message in schema.compare(session.connection()):
            if len(result.problems) < MAX_PROBLEMS:
                result.problems.append(Problem(name, message))
    problems = result.problems
    streamed, log_ok = _check_tables(session, models, problems)
    file_check = _FileCheck(session)
    if not problems and anchor is None:
        threshold = PARALLEL_FROM if parallel_from is None else parallel_from
        halves = _verify_in_halves(
            session, models, streamed, threshold, progress, now, file_check.start
        )
        if halves is not None:
            halves.problems = file_check.problems()
            return halves
    file_check.start()
    sqlite = session.get_bind().dialect.name == "sqlite"
    watch = _ClockWatch(now, sqlite) if now is not None else None
    cursors = {table.name: _Cursor(session, table) for table in streamed}
    skipped = {m.__tablename__ for m in models} - set(cursors)
    span = _walk(
        session,
        _entry_batches(session) if log_ok else iter(()),
        cursors,
        problems,
        skipped=skipped,
        anchor=anchor,
        progress=progress,
        watch=watch,
    )
    _drain(cursors, problems)
    for p in file_check.problems():
        _add(problems, p)
    if watch is not None and now is not None:
        result.clock_anomalies = watch.found
        if not log_ok and _times_readable(session):  # not walked: the pass over (seq, at)
            result.clock_anomalies = clock_anomalies(session, now)
    if anchor is not None:
        result.anchor_ok = span.anchor_seen and not any(
            p.message.startswith("does not match the anchor") for p in problems
        )
        if not span.anchor_seen:
            _add(
                problems,
                Problem(
                    f"audit_log #{anchor[0]}",
                    "the anchored entry is not in the log (the log was cut back or replaced)",
                ),
            )
    result.entries = span.count
    result.head = f"{span.last_seq or 0}:{span.last_hash or GENESIS}"
    return result


# --- verifying in two halves at once -----------------------------------------------------------

# From this many entries a log is verified in two halves at once (below it, the start-up of the
# second process costs more than it saves).
PARALLEL_FROM = 50_000
_MAX_SEQ = "SELECT max(seq) FROM audit_log"


def _verify_in_halves(
    session: Session,
    models: list[type[Base]],
    streamed: list[Table],
    threshold: int,
    progress: Callable[[int], None] | None,
    now: dt.datetime | None = None,
    forked: Callable[[], None] | None = None,
) -> Verification | None:
    """Entries 1..split here, split+1..top in a forked process, at the same time; then the seam.

    The result is taken only when both halves are clean and they join exactly: the second
    half's first entry is seq split+1 and chains to this half's last hash, and for every table
    the second half's first named row comes after this half's last row with no row between
    them (nor after this half's last row, for a table the second half never names). That is
    exactly what the one pass checks at the same place. Anything else returns None (the caller
    then verifies in one pass and reports what it finds).
    """
    import multiprocessing
    import os

    if threshold <= 0:
        threshold = 1
    if (os.cpu_count() or 1) < 2 or len(streamed) != len(models):
        return None
    top_row = _raw_rows(session, _MAX_SEQ, ())
    top = top_row[0][0] if top_row else None
    if top is None or int(top) < threshold:
        return None
    top = int(top)
    split = top // 2
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform
        return None
    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    # PostgreSQL: the second half reads this transaction's snapshot, so both halves see the
    # same database. SQLite cannot share a snapshot: the second half reads entries up to `top`
    # as they are when it starts; a write committed in between shows as rows after the last
    # entry, which makes the caller verify in one pass.
    snapshot = None
    if session.get_bind().dialect.name == "postgresql":
        snapshot = str(_raw_rows(session, "SELECT pg_export_snapshot()", ())[0][0])
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(
        target=_second_half,
        args=(url, [m.__tablename__ for m in models], split, top, snapshot, send, now),
    )
    worker.start()
    send.close()
    if forked is not None:
        forked()  # what may run in a thread of this process from now on
    try:
        problems: list[Problem] = []
        cursors = {table.name: _Cursor(session, table) for table in streamed}
        sqlite = session.get_bind().dialect.name == "sqlite"
        watch = _ClockWatch(now, sqlite) if now is not None else None
        span = _walk(
            session,
            _entry_batches(session, None, split),
            cursors,
            problems,
            skipped=set(),
            progress=progress,
            watch=watch,
        )
        last = {name: cursor.consumed() for name, cursor in cursors.items()}
        try:
            other = receive.recv() if not problems else None
        except (EOFError, OSError):
            other = None
    finally:
        receive.close()
        worker.join(timeout=None if not problems else 0)
        if worker.is_alive():
            worker.terminate()
            worker.join()
    if other is None or problems or other["problems"] or span.count == 0:
        return None
    if other["count"] == 0 or (other["first_seq"], other["first_prev"]) != (
        split + 1,
        span.last_hash,
    ):
        return None
    if span.last_seq != split or other["last_seq"] != top:
        return None
    for table in streamed:
        low, high = last[table.name], other["first_ids"].get(table.name)
        if low is not None and high is not None and high <= low:
            return None
        if _rows_between(session, table.name, low, high):
            return None
    anomalies: list[ClockAnomaly] = []
    if watch is not None:
        anomalies = watch.found + [ClockAnomaly(*a) for a in other["clock_anomalies"]]
    return Verification(
        entries=span.count + other["count"],
        head=f"{other['last_seq']}:{other['last_hash']}",
        halves=True,
        clock_anomalies=anomalies[:MAX_PROBLEMS],
    )


def _rows_between(session: Session, table: str, low: int | None, high: int | None) -> bool:
    """Whether `table` has a row with low < id < high (None: unbounded)."""
    where = []
    params: list[Any] = []
    if low is not None:
        where.append("id > ?")
        params.append(low)
    if high is not None:
        where.append("id < ?")
        params.append(high)
    sql = f'SELECT 1 FROM "{table}"' + (f" WHERE {' AND '.join(where)}" if where else "")
    return bool(_raw_rows(session, sql + " LIMIT 1", tuple(params)))


def _second_half(
    url: str,
    names: list[str],
    split: int,
    top: int,
    snapshot: str | None,
    send: Any,
    now: dt.datetime | None = None,
) -> None:
    """In the forked process: entries split+1..top on a connection of its own; the result goes
    back through `send` (never the parent's connection: it is not used here)."""
    out: dict[str, Any] | None = None
    try:
        from sqlalchemy.engine import make_url

        from sterilog import db
        from sterilog.models import Base

        engine = db.make_engine(make_url(url))
        try:
            with db.read_session(engine) as session:
                if snapshot is not None:
                    if not re.fullmatch(r"[0-9A-Fa-f-]+", snapshot):
                        raise ValueError(snapshot)
                    session.connection().exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                tables = {name: Base.metadata.tables[name] for name in names}
                problems: list[Problem] = []
                cursors: dict[str, _Cursor] = {}
                watch = None
                if now is not None:
                    # the entry before this half's first (the halves are joined only when they
                    # meet exactly: then this is the entry the one pass compares with)
                    before = _raw_rows(session, "SELECT at FROM audit_log WHERE seq = ?", (split,))
                    sqlite = session.get_bind().dialect.name == "sqlite"
                    watch = _ClockWatch(now, sqlite, before[0][0] if before else None)
                span = _walk(
                    session,
                    _entry_batches(session, split, top),
                    cursors,
                    problems,
                    skipped=set(),
                    first=None,
                    lazy=dict(tables),
                    watch=watch,
                )
                first_ids = {name: c.first_params[0] for name, c in cursors.items()}
                _drain(cursors, problems)
                out = {
                    "problems": [(p.record, p.message) for p in problems[:10]],
                    "count": span.count,
                    "first_seq": span.first_seq,
                    "first_prev": span.first_prev,
                    "last_seq": span.last_seq,
                    "last_hash": span.last_hash,
                    "first_ids": first_ids,
                    "clock_anomalies": [
                        (a.seq, a.at, a.message) for a in (watch.found if watch else [])
                    ],
                }
        finally:
            engine.dispose()
    except BaseException:  # any failure, Ctrl-C included: the parent verifies in one pass
        out = None
    try:
        send.send(out)
    except BaseException:  # the parent has gone or stopped listening: nothing to tell
        pass
    finally:
        send.close()


# --- clock anomalies ---------------------------------------------------------------------------

CLOCK_TOLERANCE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ClockAnomaly:
    seq: int
    at: str  # UTC ISO with Z, as hashed
    message: str


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def _latest(now: dt.datetime) -> dt.datetime:
    """The latest `at` that is not in the future of the verifier's clock: now + 5 minutes,
    naive UTC (a naive `now` is local time)."""
    return now.astimezone(dt.UTC).replace(tzinfo=None) + CLOCK_TOLERANCE


def _clock_anomaly(
    seq: int, moment: dt.datetime, previous: dt.datetime | None, now: dt.datetime
) -> ClockAnomaly | None:
    """THE rule (one home): an entry more than 5 minutes later than the verifier's clock `now`,
    or more than 5 minutes earlier than the entry before it. Instants are naive UTC."""
    if moment > _latest(now):
        at = _jsonable(moment)
        message = (
            f"recorded at {at}, more than 5 minutes after the verifier's clock ({_jsonable(now)})"
        )
        return ClockAnomaly(seq, at, message)
    if previous is not None and moment < previous - CLOCK_TOLERANCE:
        at = _jsonable(moment)
        message = (
            f"recorded at {at}, more than 5 minutes before the entry before it "
            f"({_jsonable(previous)}): a clock was moved back"
        )
        return ClockAnomaly(seq, at, message)
    return None


def _moment(at: Any) -> dt.datetime | None:
    """A stored `at` as naive UTC (SQLite: text; PostgreSQL: datetime); None: not an instant
    (the entry after such an entry is not compared with it)."""
    if isinstance(at, str):
        try:
            at = dt.datetime.fromisoformat(at)
        except ValueError:
            return None
    if not isinstance(at, dt.datetime):
        return None
    return _naive_utc(at)


class _ClockWatch:
    """Applies the rule to every entry, in order, at the cost of two comparisons for nearly all
    of them: a stored canonical instant (fixed-width text on SQLite, a naive datetime on
    PostgreSQL) not earlier than the canonical one before it and not later than the limit
    cannot be an anomaly; any other entry is judged by the rule itself (`_clock_anomaly`).
    Used by both `clock_anomalies` and `verify`'s walk, so that both find the same entries.

    `see(seq, at, iso)`: `at` as stored, `iso` its conversion (`_sqlite_instant` or
    `_pg_instant`: a plain str only for the canonical stored form). `previous`: the stored
    `at` of the entry before the first one seen (the second half of a verify)."""

    def __init__(
        self, now: dt.datetime, sqlite: bool, previous: Any = None, limit: int = MAX_PROBLEMS
    ) -> None:
        self.now = now
        latest = _latest(now)
        # the canonical stored form (zero-padded, microseconds): text order is time order
        self.latest: Any = latest.isoformat(" ", "microseconds") if sqlite else latest
        self.previous = previous
        iso = (_sqlite_instant if sqlite else _pg_instant)(previous)
        self.previous_plain = previous is not None and type(iso) is str
        self.limit = limit
        self.found: list[ClockAnomaly] = []

    def see(self, seq: int, at: Any, iso: Any) -> None:
        previous = self.previous
        plain = type(iso) is str
        if not (plain and self.previous_plain and previous <= at <= self.latest):
            moment = _moment(at)
            if moment is not None and len(self.found) < self.limit:
                before = None if previous is None else _moment(previous)
                found = _clock_anomaly(seq, moment, before, self.now)
                if found is not None:
                    self.found.append(found)
        self.previous = at
        self.previous_plain = plain

    @property
    def full(self) -> bool:
        return len(self.found) >= self.limit


def clock_anomalies(
    session: Session, now: dt.datetime, limit: int = MAX_PROBLEMS
) -> list[ClockAnomaly]:
    """Entries more than 5 minutes earlier than the entry before them, or more than 5 minutes
    later than `now` (the verifier's clock). They do not break the chain: a terminal's clock
    moved back or forward shows here. A pass over (seq, at) only; `audit verify` finds the same
    entries during its own walk (`verify(..., now=)`), with the same `_ClockWatch`."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    at_of = _sqlite_instant if sqlite else _pg_instant
    cached: Callable[[Any], Any] = _INSTANTS.get if sqlite else _nothing
    watch = _ClockWatch(now, sqlite, limit=limit)
    see = watch.see
    # every entry, as verify reads them: the first batch has no lower bound (seq <= 0 too)
    rows = _raw_rows(session, "SELECT seq, at FROM audit_log ORDER BY seq LIMIT ?", (BATCH,))
    sql = "SELECT seq, at FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
    while rows and not watch.full:
        for seq, at in rows:
            see(int(seq), at, cached(at) or at_of(at))
        rows = _raw_rows(session, sql, (int(rows[-1][0]), BATCH))
    return watch.found[:limit]
