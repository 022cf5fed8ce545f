"""The tamper suite (SPEC §7, issue 10): every forgery of every table is named by `audit verify`.

The cases are generated from the models' metadata, so a new table is covered without editing
this file: for EVERY record table, an insert with an unusual key (negative, zero, the largest
the column holds), an update of each column (and, for timestamps, same-instant rewrites in
another text form), a delete, and a swap of two rows' contents; plus schema edits (new trigger,
dropped trigger, changed column type, new column, new table, dropped index, changed default,
and on PostgreSQL rules, policies, disabled triggers, replaced functions).

Speed: a populated clinic is built once per backend. Each case runs as its own transaction on
that database: the forgery, then the same `audit.verify` the CLI runs (schema check included),
then ROLLBACK, so the next case starts from the untouched database. On PostgreSQL the forger
works with foreign-key triggers off (`session_replication_role = replica`, what a superuser or
owner with a dump can do), so no case is skipped for referential reasons. A representative case
of every kind also runs through the real CLI on a copied database: exit 4, the object named.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clinic import GTIN, hri
from conftest import Cli, fresh_url
from sqlalchemy import Boolean, Date, Float, Integer, LargeBinary, String, Table, Text, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from sterilog import audit, db
from sterilog.models import AUDITED, Base
from sterilog.schema import NOT_RECORDS
from sterilog.sqltypes import UTCDateTime


def record_days(cli: Cli) -> None:
    """Two clinic days through the real CLI: at least one row in every record table and two
    in every table that can have more than one (settings has exactly one)."""
    cli.ok("staff", "add", "ivy", "--name", "Ivy", "--role", "inspector")
    for k, day in (("1", "2026-11-22"), ("2", "2026-11-23")):
        t = lambda hm, day=day: f"{day}T{hm}:00+00:00"  # noqa: E731
        p = f"ann{k}"
        cli.ok("staff", "add", p, "--name", f"Ann {k}", "--role", "practitioner")
        cli.ok("staff", "add", f"tmp{k}", "--name", f"Temp {k}", "--role", "practitioner")
        cli.ok("staff", "pin", f"tmp{k}", env={"STERILOG_NEW_PIN": f"48{k}1"})  # pin_events
        cli.ok("staff", "deactivate", f"tmp{k}", "--reason", "left")
        cli.ok("room", "add", f"R{k}")
        cli.ok("device", "add", f"SN-{k}", "--model", "Pen 4")
        cli.ok("device", "add", f"OLD-{k}", "--model", "Pen 3")
        cli.ok("device", "retire", f"OLD-{k}", "--reason", "motor failure")
        # register_changes (issue 14): a correction, dated, never an overwrite
        cli.ok("staff", "update", p, "--license", f"LIC-{k}", "--license-expires", "2030-01-01")
        cli.ok("device", "update", f"OLD-{k}", "--max-depth-mm", "2")
        cli.ok("sterilizer", "add", f"AC{k}", "--model", "Vacuklav", "--type", "B")
        cli.ok("sterilizer", "service", f"AC{k}", "--note", "door seal", "--at", t("06:00"))
        cli.ok("pack", "add", f"P{k}", "--contents", "tweezers")
        cli.ok("pack", "add", f"F{k}", "--contents", "bowl")
        cli.ok("disinfectant", "add", f"Clinell{k}", "--contact-min", "1")
        cli.ok("cartridge", "receive", hri(f"L{k}", "0001"), hri(f"L{k}", "0002"))
        cli.ok("cartridge", "receive", hri(f"X{k}", "0001"), hri(f"X{k}", "0002"))
        cli.ok("cartridge", "discard", hri(f"L{k}", "0002"), "--reason", "torn")
        cli.ok("cartridge", "recall", "--gtin", GTIN, "--lot", f"X{k}", "--reason", "FSN")
        cli.ok(
            "air-removal",
            "record",
            "--sterilizer",
            f"AC{k}",
            "--result",
            "pass",
            "--at",
            t("07:00"),
        )
        for pack, temp, at, bi in (
            (f"P{k}", "134", "07:30", True),
            (f"F{k}", "131", "07:45", False),
        ):
            cli.ok(
                "cycle",
                "record",
                "--sterilizer",
                f"AC{k}",
                "--program",
                "134-3.5",
                "--temp-c",
                temp,
                "--hold-min",
                "3.5",
                "--ci",
                "pass",
                "--pack",
                pack,
                *(
                    [
                        "--bi-lot",
                        f"BI-{k}",
                        "--bi-expires",
                        "2027-06",
                        "--bi-control-lot",
                        f"BI-{k}",
                    ]
                    if bi
                    else []
                ),
                "--at",
                t(at),
            )
        cli.ok("bi", "mail", k, "--lab", "Mesa Labs", "--at", t("08:00"))  # bi_lab_events
        cli.ok("bi", "skip", "--sterilizer", f"AC{k}", "--week", "2026-W46", "--reason", "shut")
        cli.ok(
            "bi",
            "read",
            k,
            "--result",
            "negative",
            "--control",
            "positive",
            "--report-no",
            f"R-{k}",
            "--at",
            t("08:30"),
        )
        cli.ok(
            "clean",
            "room",
            f"R{k}",
            "--kind",
            "between-clients",
            "--disinfectant",
            f"Clinell{k}",
            "--at",
            t("08:40"),
        )
        cli.ok("clean", "device", f"SN-{k}", "--disinfectant", f"Clinell{k}", "--at", t("08:40"))
        now = t("09:00")
        sid = cli.json(
            "session",
            "start",
            "--room",
            f"R{k}",
            "--device",
            f"SN-{k}",
            "--cartridge",
            hri(f"L{k}", "0001"),
            "--pack",
            f"P{k}",
            "--client",
            f"C-00{k}",
            operator=p,
            now=now,
        )["session_id"]
        cli.json(
            "session",
            "start",
            "--room",
            f"R{k}",
            "--device",
            f"SN-{k}",
            "--cartridge",
            hri(f"X{k}", "0001"),
            "--pack",
            f"F{k}",
            "--client",
            f"C-99{k}",
            operator=p,
            now=now,
            expect=3,
        )
        incident = cli.json(
            "incident",
            "record",
            "--session",
            str(sid),
            "--kind",
            "pain",
            "--note",
            "sore",
            operator=p,
            now=t("09:10"),
        )["incident_id"]
        # Issue 13's tables: an exposure opened from the incident, its client told (which
        # closes it): exposures, exposure_clients, exposure_notices, exposure_closures.
        exp = cli.json("exposure", "open", "--incident", str(incident), now=t("09:15"))["id"]
        cli.ok("exposure", "notify", str(exp), "--client", f"C-00{k}", "--how", "phone",
               now=t("09:20"))
        cli.ok("session", "end", str(sid), operator=p, now=t("09:30"))
        cli.ok(  # an incident without a client session (issue 14): a staff exposure
            "incident", "record", "--kind", "exposure", "--staff", p, "--room", f"R{k}",
            "--note", "needlestick", operator=p, now=t("09:35"),
        )  # fmt: skip
        cli.ok(
            "clean",
            "room",
            f"R{k}",
            "--kind",
            "between-clients",
            "--disinfectant",
            f"Clinell{k}",
            "--at",
            t("09:40"),
            now=t("09:50"),
        )
        cli.ok("void", "room-clean", str(2 * int(k)), "--reason", "wrong room", now=t("09:55"))
        cli.ok("sign", "2026-11", "--meaning", "reviewed", now=t("10:00"))
    device_evidence(cli)
    notifications(cli)


def notifications(cli: Cli) -> None:
    """Issue 16's notify tables: two settings rows, and items sent to a local webhook."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        cli.ok("settings", "notify", "--webhook", url + "old")
        cli.ok("settings", "notify", "--webhook", url)
        assert len(cli.json("notify")["sent"]) >= 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def device_evidence(cli: Cli) -> None:
    """Issue 15's tables: imported cycles with their files, later CI readings, serial updates
    and attachments, two rows each."""
    from autoclave_samples import DAC, sample

    cli.ok("sterilizer", "add", "DAC", "--model", "DAC", "--type", "S", "--serial", "601362")
    cli.ok("sterilizer", "program", "DAC", "universal", "--temp-c", "134", "--hold-min", "3")
    out = cli.json("cycle", "import", "--sterilizer", "DAC", str(sample(f"{DAC}/DAC.Log")))
    loads = [c["load_id"] for c in out["cycles"] if c["load_id"] is not None]
    assert len(loads) >= 2, out
    for load in loads[:2]:
        cli.ok("cycle", "ci", str(load), "--ci", "pass", "--ci-type", "5")
    cli.ok("sterilizer", "update", "AC1", "--serial", "S-1")
    cli.ok("sterilizer", "update", "AC1", "--serial", "S-2")
    cli.ok("attach", "sterilizer", "AC1", str(sample(f"{DAC}/LICENSE")), "--note", "licence")


# --- the populated database, once per backend ------------------------------------------------

_built: dict[str, str] = {}


@pytest.fixture
def clinic(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Cli:
    if backend == "sqlite":
        pg = None
        base: str | Path = request.getfixturevalue("sqlite_template")
    else:
        pg = request.getfixturevalue("pg_server")
        if pg is None:
            pytest.skip("PostgreSQL is not available here")
        base = request.getfixturevalue("pg_template")
    if backend not in _built:
        holder = tmp_path.parent / f"tamper-{backend}"
        holder.mkdir(exist_ok=True)
        url = fresh_url(backend, holder, pg, template=base)
        record_days(Cli(url=url, backend=backend, now="2026-11-24T12:00:00+00:00"))
        assert Cli(url=url, backend=backend).json("audit", "verify")["ok"] is True
        _built[backend] = url
    return Cli(url=_built[backend], backend=backend)


# --- running one forgery in a rolled-back transaction -------------------------------------------


class Forger:
    """Runs forgeries on one database, each in its own transaction, rolled back afterwards."""

    def __init__(self, cli: Cli) -> None:
        from sqlalchemy import create_engine, event
        from sqlalchemy.pool import NullPool

        self.backend = cli.backend
        self.engine = create_engine(cli.url, poolclass=NullPool)
        if self.backend == "sqlite":
            # Like the sqlite3 shell: foreign keys off, and one explicit transaction we roll back
            # (DDL included).
            @event.listens_for(self.engine, "connect")
            def _connect(dbapi_conn: Any, _rec: Any) -> None:
                dbapi_conn.isolation_level = None

            @event.listens_for(self.engine, "begin")
            def _begin(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN")

        self.conn = self.engine.connect()
        self.max_id = 2**63 - 1 if self.backend == "sqlite" else 2**31 - 1

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()

    def problems(self, forge: Callable[[Connection], None]) -> list[audit.Problem]:
        conn = self.conn
        trans = conn.begin()
        try:
            if self.backend != "sqlite":
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            forge(conn)
            if self.backend != "sqlite":
                conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
            return audit.verify(Session(bind=conn)).problems
        finally:
            trans.rollback()

    def rows(self, table: Table) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(table.select().order_by(table.c.id))]

    def raw(self, table: Table, column: str, rid: int) -> Any:
        with self.engine.connect() as c:
            return c.exec_driver_sql(
                f'SELECT "{column}" FROM "{table.name}" WHERE id = {rid}'
            ).scalar()


@pytest.fixture
def forger(clinic: Cli) -> Iterator[Forger]:
    f = Forger(clinic)
    yield f
    f.close()


def record_tables() -> list[Table]:
    return [m.__table__ for m in AUDITED]  # type: ignore[attr-defined]


def _allowed(table: Table, column: str) -> list[str] | None:
    for c in table.constraints:
        sql = str(getattr(c, "sqltext", ""))
        m = re.match(rf"\s*{column} IN \((.*)\)\s*$", sql)
        if m:
            return re.findall(r"'([^']*)'", m.group(1))
    return None


def mutate(table: Table, name: str, value: Any) -> Any:
    """A different valid value for the column (the forger's edit)."""
    col = table.c[name]
    allowed = _allowed(table, name)
    if allowed is not None:
        return next(a for a in allowed if a != value)
    t = col.type
    if isinstance(t, UTCDateTime):
        return (value or dt.datetime(2026, 11, 1, tzinfo=dt.UTC)) + dt.timedelta(seconds=1)
    if isinstance(t, Boolean):
        return not value
    if isinstance(t, Date):
        return (value or dt.date(2026, 1, 1)) + dt.timedelta(days=1)
    if isinstance(t, Float):
        return (value or 0.0) + 0.1
    if isinstance(t, Integer):
        return (value or 0) + 1_000_000
    if isinstance(t, LargeBinary):  # a document's bytes: one byte changed
        data = bytes(value or b"")
        return (data[:-1] + bytes([data[-1] ^ 1])) if data else b"\x00"
    assert isinstance(t, (String, Text)), (table.name, name, t)
    s = value or ""
    length = getattr(t, "length", None)
    if length is None or len(s) < length:
        return s + "x"
    return s[:-1] + ("y" if s[-1] != "y" else "z")


def unique_columns(table: Table) -> set[str]:
    out: set[str] = set()
    for c in table.constraints:
        if c.__class__.__name__ == "UniqueConstraint":
            out.add(next(iter(c.columns)).name)  # type: ignore[attr-defined]
    for col in table.columns:
        if col.unique:
            out.add(col.name)
    out.discard("id")
    return out


@dataclass
class Case:
    what: str
    expect: str  # a problem's `record` must contain this
    forge: Callable[[Connection], None]


def row_cases(f: Forger, table: Table) -> Iterator[Case]:
    rows = f.rows(table)
    assert rows, f"the populated clinic has no {table.name} row: extend record_days"
    uniq = unique_columns(table)
    first, last = rows[0], rows[-1]

    for key in (-7, 0, f.max_id):
        forged = {**first, "id": key}
        for u in uniq:
            forged[u] = mutate(table, u, first[u])
        yield Case(
            f"insert id {key}",
            f"{table.name} #{key}",
            lambda c, v=forged: c.execute(table.insert().values(**v)),
        )
    for col in table.columns:
        if col.name == "id":
            continue
        for row in (first, last):
            new = mutate(table, col.name, row[col.name])
            yield Case(
                f"update {col.name} of #{row['id']}",
                f"{table.name} #{row['id']}",
                lambda c, n=col.name, v=new, i=row["id"]: c.execute(
                    table.update().where(table.c.id == i).values({n: v})
                ),
            )
        if f.backend == "sqlite":
            raw = f.raw(table, col.name, first["id"])
            for form in same_value_forms(col.type, raw):
                yield Case(
                    f"rewrite {col.name} of #{first['id']} as {form!r} (same value)",
                    f"{table.name} #{first['id']}",
                    lambda c, n=col.name, v=form, i=first["id"]: c.execute(
                        text(f'UPDATE "{table.name}" SET "{n}" = :v WHERE id = :i'),
                        {"v": v, "i": i},
                    ),
                )
    for row in (first, last):
        yield Case(
            f"delete #{row['id']}",
            f"{table.name} #{row['id']}",
            lambda c, i=row["id"]: c.execute(table.delete().where(table.c.id == i)),
        )
    if len(rows) >= 2:
        a, b = rows[0], rows[1]
        body = [n for n in a if n != "id"]
        assert any(a[n] != b[n] for n in body)

        def swap(c: Connection, a: dict[str, Any] = a, b: dict[str, Any] = b) -> None:
            temp = {
                u: (-999_999 if isinstance(table.c[u].type, Integer) else "~swap") for u in uniq
            }
            if temp:
                c.execute(table.update().where(table.c.id == a["id"]).values(temp))
            c.execute(table.update().where(table.c.id == b["id"]).values({n: a[n] for n in body}))
            c.execute(table.update().where(table.c.id == a["id"]).values({n: b[n] for n in body}))

        yield Case(f"swap #{a['id']} and #{b['id']}", f"{table.name} #{a['id']}", swap)
        yield Case(f"swap #{a['id']} and #{b['id']} (2)", f"{table.name} #{b['id']}", swap)
    else:
        assert table.name == "settings", f"only settings may have a single row: {table.name}"


def same_value_forms(type_: Any, raw: Any) -> list[Any]:
    """Other stored forms of the SAME value on SQLite (same instant, same date, same truth)."""
    if raw is None:
        return []
    if isinstance(type_, UTCDateTime):
        when = dt.datetime.fromisoformat(raw).replace(tzinfo=dt.UTC)
        plus = when.astimezone(dt.timezone(dt.timedelta(minutes=45)))
        return [
            when.isoformat(),  # 2026-11-22T07:30:00+00:00
            when.isoformat().replace("+00:00", "Z"),
            raw[:19],  # without the fraction
            plus.isoformat(),  # the '...08:15:00+00:45'
            plus.replace(tzinfo=None).isoformat(sep=" ") + "+00:45",
            int(when.timestamp()),
        ]
    if isinstance(type_, Date):
        return [raw + "T00:00:00", raw.replace("-", "")]
    if isinstance(type_, Boolean):
        return [2] if raw else [-0.0 + 0.5]
    return []


def schema_cases(f: Forger, table: Table) -> Iterator[Case]:
    name = table.name
    cols = [c for c in table.columns if c.name not in ("id", "seq")]
    stamp = next((c for c in cols if isinstance(c.type, UTCDateTime)), None)
    word = next((c for c in cols if isinstance(c.type, (String, Text))), cols[-1])
    if f.backend == "sqlite":

        def planted(c: Connection) -> None:
            c.exec_driver_sql(
                f"CREATE TRIGGER zz_{name} AFTER INSERT ON {name} BEGIN SELECT 1; END"
            )

        yield Case("new trigger", f"trigger zz_{name}", planted)
        yield Case(
            "new column",
            f"column {name}.zz",
            lambda c: c.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN zz INTEGER"),
        )

        def rewrite_sql(edit: Callable[[str], str]) -> Callable[[Connection], None]:
            def forge(c: Connection) -> None:
                sql = c.exec_driver_sql(
                    f"SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{name}'"
                ).scalar_one()
                new = edit(sql)
                assert new != sql
                c.exec_driver_sql("PRAGMA writable_schema = ON")
                c.execute(
                    text("UPDATE sqlite_master SET sql = :s WHERE type = 'table' AND name = :n"),
                    {"s": new, "n": name},
                )
                c.exec_driver_sql("PRAGMA writable_schema = OFF")

            return forge

        target = stamp if stamp is not None else word
        typ = re.escape(str(target.type.compile(dialect=f.engine.dialect)))
        yield Case(
            f"changed type of {target.name}",
            f"table {name}",
            rewrite_sql(
                lambda s: re.sub(rf"\b{target.name} {typ}", f"{target.name} TEXT", s, count=1)
            ),
        )
        yield Case(
            f"changed default of {target.name}",
            f"table {name}",
            rewrite_sql(
                lambda s: re.sub(rf"\b({target.name} {typ})", r"\1 DEFAULT 'x'", s, count=1)
            ),
        )
    else:

        def planted(c: Connection) -> None:
            c.exec_driver_sql(
                "CREATE FUNCTION zz_f() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RETURN NEW; END $$"
            )
            c.exec_driver_sql(
                f"CREATE TRIGGER zz_t AFTER INSERT ON {name} FOR EACH ROW EXECUTE FUNCTION zz_f()"
            )

        yield Case("new trigger", f"trigger {name}.zz_t", planted)
        yield Case(
            "new column",
            f"column {name}.zz",
            lambda c: c.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN zz integer"),
        )
        target = stamp if stamp is not None else word
        new_type = (
            "timestamptz"
            if stamp is not None
            else "text"
            if isinstance(word.type, (String, Text))
            else "bigint"
        )
        yield Case(
            f"changed type of {target.name}",
            f"column {name}.{target.name}",
            lambda c: c.exec_driver_sql(
                f"ALTER TABLE {name} ALTER COLUMN {target.name} TYPE {new_type}"
            ),
        )
        default = (
            "now()"
            if stamp is not None
            else "'x'"
            if isinstance(word.type, (String, Text))
            else "7"
        )
        yield Case(
            f"changed default of {target.name}",
            f"column {name}.{target.name}",
            lambda c: c.exec_driver_sql(
                f"ALTER TABLE {name} ALTER COLUMN {target.name} SET DEFAULT {default}"
            ),
        )
        yield Case(
            "new rule",
            f"rule {name}.zz_r",
            lambda c: c.exec_driver_sql(
                f"CREATE RULE zz_r AS ON INSERT TO {name} DO ALSO NOTIFY zz"
            ),
        )

        def policy(c: Connection) -> None:
            c.exec_driver_sql(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
            c.exec_driver_sql(f"CREATE POLICY zz_p ON {name} USING (true)")

        yield Case("new policy", f"policy {name}.zz_p", policy)
        if table.foreign_keys:
            yield Case(
                "foreign-key triggers disabled",
                f"internal-trigger {name}.",
                lambda c: c.exec_driver_sql(f"ALTER TABLE {name} DISABLE TRIGGER ALL"),
            )
    cascade = "" if f.backend == "sqlite" else " CASCADE"
    yield Case(
        "dropped table",
        name,
        lambda c: c.exec_driver_sql(f"DROP TABLE {name}{cascade}"),
    )
    indexed = {col.name for i in table.indexes for col in i.columns}
    indexed |= {fk.parent.name for fk in table.foreign_keys} | unique_columns(table)
    plain = [c for c in cols if c.name not in indexed]
    if plain:
        yield Case(
            f"dropped column {plain[-1].name}",
            name,
            lambda c: c.exec_driver_sql(
                f"ALTER TABLE {name} DROP COLUMN {plain[-1].name}{cascade}"
            ),
        )
    for index in table.indexes:
        yield Case(
            f"dropped index {index.name}",
            f"index {index.name}",
            lambda c, i=index.name: c.exec_driver_sql(f"DROP INDEX {i}"),
        )


def global_schema_cases(f: Forger) -> Iterator[Case]:
    with f.engine.connect() as c:
        if f.backend == "sqlite":
            triggers = (
                c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                .scalars()
                .all()
            )
        else:
            triggers = (
                c.exec_driver_sql(
                    "SELECT c.relname || '.' || t.tgname FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
                )
                .scalars()
                .all()
            )
    assert triggers
    for trig in triggers:
        if f.backend == "sqlite":
            yield Case(
                f"dropped trigger {trig}",
                f"trigger {trig}",
                lambda c, t=trig: c.exec_driver_sql(f"DROP TRIGGER {t}"),
            )
        else:
            tbl, tg = trig.split(".")
            yield Case(
                f"dropped trigger {trig}",
                f"trigger {trig}",
                lambda c, t=tg, r=tbl: c.exec_driver_sql(f"DROP TRIGGER {t} ON {r}"),
            )
            yield Case(
                f"disabled trigger {trig}",
                f"trigger {trig}",
                lambda c, t=tg, r=tbl: c.exec_driver_sql(f"ALTER TABLE {r} DISABLE TRIGGER {t}"),
            )
    yield Case(
        "new table",
        "zz_forged",
        lambda c: c.exec_driver_sql("CREATE TABLE zz_forged (id integer)"),
    )
    yield Case(
        "new view",
        "zz_view",
        lambda c: c.exec_driver_sql("CREATE VIEW zz_view AS SELECT 1 AS one"),
    )
    if f.backend != "sqlite":
        yield Case(
            "replaced function",
            "function audit_log_append_only()",
            lambda c: c.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
            ),
        )
        yield Case("new schema", "schema zz", lambda c: c.exec_driver_sql("CREATE SCHEMA zz"))
        yield Case(
            "dropped check constraint",
            "constraint staff.ck_staff_role",
            lambda c: c.exec_driver_sql("ALTER TABLE staff DROP CONSTRAINT ck_staff_role"),
        )
        yield Case(
            "dropped unique constraint",
            "constraint staff.uq_staff_code",
            lambda c: c.exec_driver_sql("ALTER TABLE staff DROP CONSTRAINT uq_staff_code"),
        )
        yield Case(
            "changed collation",
            "column staff.code",
            lambda c: c.exec_driver_sql(
                'ALTER TABLE staff ALTER COLUMN code TYPE varchar(200) COLLATE "C"'
            ),
        )
        yield Case(
            "dropped not-null",
            "column sessions.client",
            lambda c: c.exec_driver_sql("ALTER TABLE sessions ALTER COLUMN client DROP NOT NULL"),
        )
        yield Case(
            "changed sequence",
            "sequence staff_id_seq",
            lambda c: c.exec_driver_sql("ALTER SEQUENCE staff_id_seq INCREMENT BY 2"),
        )
        yield Case(
            "new type",
            "type zz_kind",
            lambda c: c.exec_driver_sql("CREATE TYPE zz_kind AS ENUM ('a')"),
        )

        def event_trigger(c: Connection) -> None:
            c.exec_driver_sql(
                "CREATE FUNCTION zz_ev() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$"
            )
            c.exec_driver_sql(
                "CREATE EVENT TRIGGER zz_evt ON ddl_command_start EXECUTE FUNCTION zz_ev()"
            )

        yield Case("new event trigger", "event-trigger zz_evt", event_trigger)
    else:

        def rewrite(old: str, new: str) -> Callable[[Connection], None]:
            def forge(c: Connection) -> None:
                c.exec_driver_sql("PRAGMA writable_schema = ON")
                n = c.execute(
                    text(
                        "UPDATE sqlite_master SET sql = replace(sql, :old, :new) "
                        "WHERE type = 'table' AND name = 'staff' AND instr(sql, :old) > 0"
                    ),
                    {"old": old, "new": new},
                ).rowcount
                c.exec_driver_sql("PRAGMA writable_schema = OFF")
                assert n == 1

            return forge

        yield Case(
            "dropped check constraint",
            "table staff",
            rewrite(
                "CONSTRAINT ck_staff_role CHECK (role IN ('practitioner', 'manager', "
                "'inspector')),",
                "",
            ),
        )
        yield Case(
            "dropped unique constraint",
            "table staff",
            rewrite("CONSTRAINT uq_staff_code UNIQUE (code)", "CHECK (1)"),
        )
        yield Case(
            "changed collation",
            "table staff",
            rewrite("code VARCHAR(200) NOT NULL", "code VARCHAR(200) NOT NULL COLLATE NOCASE"),
        )
        yield Case(
            "dropped not-null",
            "table staff",
            rewrite("name VARCHAR(200) NOT NULL", "name VARCHAR(200)"),
        )
    # The log and Alembic's bookkeeping are forgeable tables too.
    for key in (-7, 0, f.max_id):
        yield Case(
            f"audit entry inserted with seq {key}",
            f"audit_log #{key}",
            lambda c, k=key: c.execute(
                text(
                    "INSERT INTO audit_log (seq, at, clock, operator, action, records, prev_hash, "
                    "hash) SELECT :k, at, clock, operator, action, records, prev_hash, "
                    "'f' || substr(hash, 2) FROM audit_log WHERE seq = 1"
                ),
                {"k": k},
            ),
        )
    yield Case(
        "alembic_version changed",
        "alembic_version",
        lambda c: c.exec_driver_sql("UPDATE alembic_version SET version_num = 'zz99'"),
    )
    yield Case(
        "alembic_version deleted",
        "alembic_version",
        lambda c: c.exec_driver_sql("DELETE FROM alembic_version"),
    )
    yield Case(
        "alembic_version second row",
        "alembic_version",
        lambda c: c.exec_driver_sql("INSERT INTO alembic_version VALUES ('0000')"),
    )


def run_cases(f: Forger, cases: Iterator[Case]) -> int:
    failures = []
    n = 0
    for case in cases:
        n += 1
        try:
            problems = f.problems(case.forge)
        except Exception as error:
            failures.append(f"{case.what}: the forgery itself failed: {error}")
            continue
        if not any(case.expect in p.record for p in problems):
            failures.append(
                f"{case.what}: expected a problem naming {case.expect!r}, got "
                f"{[(p.record, p.message[:60]) for p in problems][:5]}"
            )
    assert not failures, "\n".join(failures)
    return n


# --- the tests ----------------------------------------------------------------------------------


def test_every_table_is_a_record_table_or_declared_not_a_record() -> None:
    covered = {t.name for t in record_tables()} | {"audit_log"} | NOT_RECORDS
    assert set(Base.metadata.tables) <= covered


@pytest.mark.parametrize("table", [t.name for t in record_tables()])
def test_every_row_forgery_of_every_record_table_is_named(forger: Forger, table: str) -> None:
    t = Base.metadata.tables[table]
    n = run_cases(forger, row_cases(forger, t))
    assert n >= 3 + 2 * (len(t.columns) - 1) + 2


@pytest.mark.parametrize("table", [t.name for t in record_tables()] + ["audit_log"])
def test_every_schema_edit_on_every_table_is_named(forger: Forger, table: str) -> None:
    run_cases(forger, schema_cases(forger, Base.metadata.tables[table]))


def test_dropped_triggers_new_tables_and_a_forged_log_or_version_are_named(
    forger: Forger,
) -> None:
    run_cases(forger, global_schema_cases(forger))


def test_the_untouched_clinic_verifies_and_the_forger_leaves_it_untouched(
    forger: Forger, clinic: Cli
) -> None:
    assert forger.problems(lambda c: None) == []
    assert clinic.json("audit", "verify")["ok"] is True
    assert clinic.json("db", "check")["ok"] is True


_ = make_url, db  # imported for readers following the CLI path


# --- forgeries of the shape of things (review of session 7) -------------------------------------

MALFORMED_RECORDS = {
    "an id as text": '[{"table":"rooms","id":"x","content":{}}]',
    "a null id": '[{"table":"rooms","id":null,"content":{}}]',
    "an item that is not an object": "[1]",
    "an object instead of a list": '{"table":"rooms"}',
    "a number": "5",
    "a list as the table": '[{"table":["rooms"],"id":1,"content":{}}]',
    "an item without an id": '[{"table":"rooms","content":{}}]',
}


@pytest.mark.parametrize("what", list(MALFORMED_RECORDS))
def test_an_entry_edited_into_a_shape_sterilog_never_writes_is_named(
    forger: Forger, what: str
) -> None:
    """verify used to crash (KeyError, TypeError, AttributeError...) on these, losing every
    problem it had found; now the entry is named."""
    value = MALFORMED_RECORDS[what]

    def forge(c: Connection) -> None:
        if forger.backend == "sqlite":
            c.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        c.execute(text("UPDATE audit_log SET records = :v WHERE seq = 4"), {"v": value})

    records = {p.record for p in forger.problems(forge)}
    assert "audit_log #4" in records


def _sqlite_copy(clinic: Cli, tmp_path: Path) -> tuple[Cli, Path]:
    """A committed copy of the populated SQLite clinic (what an attacker edits is a file)."""
    import shutil
    import sqlite3

    src = Path(clinic.url.removeprefix("sqlite:///"))
    with contextlib_closing(sqlite3.connect(src)) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = tmp_path / "forged.db"
    shutil.copyfile(src, path)
    return Cli(url=f"sqlite:///{path}", backend="sqlite"), path


def contextlib_closing(conn: Any) -> Any:
    import contextlib

    return contextlib.closing(conn)


def _edit(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    import sqlite3

    with contextlib_closing(sqlite3.connect(path, isolation_level=None)) as c:
        for sql, params in statements:
            c.execute(sql, params)


def _verify_names(cli: Cli, record: str, message: str = "") -> None:
    out = cli.json("audit", "verify", expect=4)
    assert any(p["record"] == record and message in p["message"] for p in out["problems"]), out
    check = cli.json("db", "check", expect=4)
    assert check["ok"] is False


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_trigger_planted_under_an_automatic_index_name_is_named(
    clinic: Cli, tmp_path: Path
) -> None:
    """SQLite: CREATE refuses the name sqlite_autoindex_*, but a trigger written into the
    schema table under it (writable_schema) runs; the schema check skipped every object so
    named, so a trigger rewriting each new positive BI read to negative went unseen."""
    cli, path = _sqlite_copy(clinic, tmp_path)
    name = "sqlite_autoindex_bi_reads_9"
    trigger = (
        f"CREATE TRIGGER {name} AFTER INSERT ON bi_reads BEGIN "
        "UPDATE bi_reads SET result = 'negative' WHERE id = NEW.id; END"
    )
    _edit(
        path,
        ("PRAGMA writable_schema = ON", ()),
        (
            "INSERT INTO sqlite_master(type, name, tbl_name, rootpage, sql) "
            "VALUES ('trigger', ?, 'bi_reads', 0, ?)",
            (name, trigger),
        ),
    )
    _verify_names(cli, f"trigger {name}", "is not part of sterilog's schema")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_index_that_disagrees_with_its_table_is_named(clinic: Cli, tmp_path: Path) -> None:
    """SQLite: an index swapped for a b-tree that leaves a session out (schema text, rows and
    log untouched) hides that session from every query using the index (`trace client`, the
    gate's single-use check). Only the file's integrity check sees it."""
    import sqlite3

    cli, path = _sqlite_copy(clinic, tmp_path)
    with contextlib_closing(sqlite3.connect(path)) as c:
        first = c.execute("SELECT min(id), client FROM sessions").fetchone()
        c.execute(f"CREATE INDEX tmp_partial ON sessions(client) WHERE id <> {first[0]}")
        c.commit()
        roots = dict(
            c.execute(
                "SELECT name, rootpage FROM sqlite_master "
                "WHERE name IN ('ix_sessions_client', 'tmp_partial')"
            ).fetchall()
        )
        version = c.execute("PRAGMA schema_version").fetchone()[0]
        c.execute("PRAGMA writable_schema = ON")
        for a, b in (("ix_sessions_client", "tmp_partial"), ("tmp_partial", "ix_sessions_client")):
            c.execute("UPDATE sqlite_master SET rootpage = ? WHERE name = ?", (roots[b], a))
        c.execute(f"PRAGMA schema_version = {version + 1}")
        c.execute("PRAGMA writable_schema = OFF")
        c.commit()
    with contextlib_closing(sqlite3.connect(path)) as c:
        c.execute("DROP INDEX tmp_partial")
        c.commit()
    cli.json("trace", "client", first[1], expect=1)  # what the forgery does
    _verify_names(cli, "database file", "ix_sessions_client")
    # verified in two halves at once (a forked process), the file check runs alongside
    engine = db.make_engine(make_url(cli.url))
    try:
        with db.read_session(engine) as session:
            result = audit.verify(session, parallel_from=2)
    finally:
        engine.dispose()
    assert result.halves is True
    assert [p.record for p in result.problems] and all(
        p.record == "database file" for p in result.problems
    ), result.problems


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("attachments", "data", "some text"),
        ("attachments", "data", 10**12),  # bytes(10**12) would allocate a terabyte
        ("rooms", "name", b"R\xff1"),  # stored as text that is not UTF-8
    ],
)
def test_a_value_of_a_type_sterilog_never_writes_is_named_not_crashed_on(
    clinic: Cli, tmp_path: Path, table: str, column: str, value: Any
) -> None:
    cli, path = _sqlite_copy(clinic, tmp_path)
    if isinstance(value, bytes):
        _edit(path, (f"UPDATE {table} SET {column} = CAST(? AS TEXT) WHERE id = 1", (value,)))
    else:
        _edit(path, (f"UPDATE {table} SET {column} = ? WHERE id = 1", (value,)))
    out = cli.json("audit", "verify", expect=4)
    assert any(p["record"] == f"{table} #1" for p in out["problems"]), out


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_entry_with_bytes_or_bad_text_in_its_fields_is_named(
    clinic: Cli, tmp_path: Path
) -> None:
    cli, path = _sqlite_copy(clinic, tmp_path)
    _edit(
        path,
        ("DROP TRIGGER audit_log_no_update", ()),
        ("UPDATE audit_log SET action = CAST('room.add' AS BLOB) WHERE seq = 3", ()),
        ("UPDATE audit_log SET operator = CAST(? AS TEXT) WHERE seq = 5", (b"b\xffss",)),
    )
    records = {p["record"] for p in cli.json("audit", "verify", expect=4)["problems"]}
    assert {"audit_log #3", "audit_log #5", "trigger audit_log_no_update"} <= records
