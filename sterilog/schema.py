"""The schema is part of the proof (SPEC §7): the live schema must be exactly the one the
migrations define at the database's revision.

A *description* of a schema is a flat mapping ``object name -> normalised definition``:

- SQLite: every table, view, index and trigger in ``sqlite_master`` (its SQL text with
  whitespace normalised), plus one entry per column from ``PRAGMA table_xinfo`` (type, not
  null, default, primary key) so a changed column is named as such.
- PostgreSQL (the current schema): tables/views/sequences with their kind and row-level
  security flags, columns (type, not null, default, identity, generated, collation),
  constraints (``pg_get_constraintdef``), indexes (``pg_get_indexdef``), user triggers
  (``pg_get_triggerdef`` and their enabled state), the enabled state of the internal
  foreign-key triggers, functions (``pg_get_functiondef``), rules, policies, sequences'
  parameters, event triggers, and any schema besides the current one.

The expected descriptions are not written by hand: ``python scripts/schema_fingerprints.py``
runs the migrations on scratch databases (a SQLite file and a throwaway PostgreSQL server),
one revision at a time, and stores each description in ``sterilog/schemas/REV.BACKEND.json``.
tests/test_schema_fingerprints.py regenerates them and fails when the stored ones are stale,
so adding a migration without regenerating cannot go unnoticed.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

# Tables that exist in a sterilog database but hold no record: Alembic's bookkeeping. Every other
# table is a record table covered by the audit chain (models.AUDITED) or the chain itself.
NOT_RECORDS = frozenset({"alembic_version"})

_WS = re.compile(r"\s+")
_QUOTED = re.compile(r'"([A-Za-z_][A-Za-z0-9_]*)"')


def _norm(sql: str | None) -> str:
    if sql is None:
        return ""
    out = _WS.sub(" ", sql.strip())
    # `CREATE TABLE x (` and `CREATE TABLE x(` mean the same; so do spaces around punctuation.
    out = re.sub(r"\s*([(),])\s*", r"\1", out)
    # A batch migration's table rebuild makes SQLite write `CREATE TABLE "x"`: same identifier.
    return _QUOTED.sub(r"\1", out)


def describe(conn: Connection) -> dict[str, str]:
    if conn.dialect.name == "sqlite":
        return _describe_sqlite(conn)
    return _describe_pg(conn)


def _describe_sqlite(conn: Connection) -> dict[str, str]:
    out: dict[str, str] = {}
    rows = conn.exec_driver_sql(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    ).all()
    for kind, name, tbl, sql in rows:
        if kind == "index" and sql is None and str(name).startswith("sqlite_autoindex_"):
            # implied by a UNIQUE/PRIMARY KEY in the table's SQL, compared there. Only such an
            # index: any other object under that name (a trigger planted with writable_schema,
            # which CREATE refuses but SQLite loads and runs) is described and compared.
            continue
        out[f"{kind} {name}"] = (
            f"on {tbl}: {_norm(sql)}" if kind in ("index", "trigger") else _norm(sql)
        )
        if kind == "table":
            cols = conn.exec_driver_sql(f'PRAGMA table_xinfo("{name}")').all()
            for _cid, cname, ctype, notnull, dflt, pk, hidden in cols:
                out[f"column {name}.{cname}"] = (
                    f"{ctype} notnull={notnull} default={dflt} pk={pk} hidden={hidden}"
                )
    return out


_PG_QUERIES: list[tuple[str, str]] = [
    (
        "relation",
        """SELECT c.relname, c.relkind::text || ' rls=' || c.relrowsecurity::text || ' force='
               || c.relforcerowsecurity::text || ' persistence=' || c.relpersistence::text
               || ' options=' || coalesce(array_to_string(c.reloptions, ','), '')
           FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
           AND c.relkind::text IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')""",
    ),
    (
        "column",
        """SELECT c.relname || '.' || a.attname,
               format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull::text
               || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
               || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
               || ' collation=' || coalesce(co.collname, '')
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
           WHERE c.relnamespace = current_schema()::regnamespace
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND a.attnum > 0 AND NOT a.attisdropped""",
    ),
    (
        "constraint",
        """SELECT c.relname || '.' || k.conname,
               k.contype::text || ' ' || pg_get_constraintdef(k.oid) || ' deferrable='
               || k.condeferrable::text || ' validated=' || k.convalidated::text
           FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
           WHERE c.relnamespace = current_schema()::regnamespace""",
    ),
    (
        "index",
        """SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           WHERE i.relnamespace = current_schema()::regnamespace""",
    ),
    (
        "trigger",
        """SELECT c.relname || '.' || t.tgname,
               pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal""",
    ),
    (
        # Internal (foreign-key) triggers have generated names; what matters is that none is
        # disabled (ALTER TABLE ... DISABLE TRIGGER ALL).
        "internal-trigger",
        """SELECT c.relname || '.' || coalesce(k.conname, '?') || '.' || t.tgfoid::regproc::text
               || '.' || t.tgtype::text, 'enabled=' || t.tgenabled::text
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           LEFT JOIN pg_constraint k ON k.oid = t.tgconstraint
           WHERE c.relnamespace = current_schema()::regnamespace AND t.tgisinternal""",
    ),
    (
        "function",
        """SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p
           WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind IN ('f', 'p')""",
    ),
    (
        "routine",
        """SELECT p.oid::regprocedure::text, p.prokind::text FROM pg_proc p
           WHERE p.pronamespace = current_schema()::regnamespace AND p.prokind NOT IN ('f', 'p')""",
    ),
    (
        "rule",
        """SELECT tablename || '.' || rulename, definition FROM pg_rules
           WHERE schemaname = current_schema()""",
    ),
    (
        "policy",
        """SELECT tablename || '.' || policyname,
               permissive::text || ' ' || array_to_string(roles, ',')
               || ' ' || cmd || ' using=' || coalesce(qual, '') || ' check='
               || coalesce(with_check, '')
           FROM pg_policies WHERE schemaname = current_schema()""",
    ),
    (
        "sequence",
        """SELECT c.relname, format_type(s.seqtypid, NULL) || ' start=' || s.seqstart::text
               || ' inc=' || s.seqincrement::text || ' min=' || s.seqmin::text
               || ' max=' || s.seqmax::text
               || ' cycle=' || s.seqcycle::text
           FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
           WHERE c.relnamespace = current_schema()::regnamespace""",
    ),
    (
        "event-trigger",
        "SELECT evtname, evtevent || ' enabled=' || evtenabled::text FROM pg_event_trigger",
    ),
    (
        "type",
        """SELECT t.typname, t.typtype::text FROM pg_type t
           WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype NOT IN ('b')
           AND t.typrelid = 0""",
    ),
    (
        "schema",
        """SELECT nspname, 'present' FROM pg_namespace WHERE nspname <> current_schema()
           AND nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND nspname NOT LIKE 'pg_temp_%' AND nspname NOT LIKE 'pg_toast_temp_%'""",
    ),
]


def _describe_pg(conn: Connection) -> dict[str, str]:
    out: dict[str, str] = {}
    for kind, sql in _PG_QUERIES:
        for name, definition in conn.execute(text(sql)).all():
            out[f"{kind} {name}"] = _WS.sub(" ", str(definition)).strip()
    return out


# --- expected descriptions -------------------------------------------------------------------


def backend_key(dialect_name: str) -> str:
    return "sqlite" if dialect_name == "sqlite" else "postgresql"


def data_name(revision: str, backend: str) -> str:
    return f"{revision}.{backend}.json"


def expected(revision: str, backend: str) -> dict[str, str] | None:
    try:
        raw = (resources.files("sterilog") / "schemas" / data_name(revision, backend)).read_text(
            "utf-8"
        )
    except (FileNotFoundError, OSError):
        return None
    data: dict[str, str] = json.loads(raw)["objects"]
    return data


def dump(revision: str, backend: str, objects: dict[str, str]) -> str:
    return (
        json.dumps(
            {"revision": revision, "backend": backend, "objects": dict(sorted(objects.items()))},
            indent=1,
            ensure_ascii=False,
        )
        + "\n"
    )


def build(engine: Any) -> list[tuple[str, dict[str, str]]]:
    """Run the migrations on an EMPTY scratch database one revision at a time, describing the
    schema after each: the expected descriptions, straight from the migrations."""
    from sterilog import migrate

    out = []
    for revision in known_revisions():
        migrate.upgrade(engine, revision)
        with engine.connect() as conn:
            out.append((revision, describe(conn)))
    return out


# --- comparison --------------------------------------------------------------------------------


def present_tables(conn: Connection) -> list[str]:
    if conn.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = (
            "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
            "AND relkind IN ('r', 'p')"
        )
    return [str(r[0]) for r in conn.exec_driver_sql(sql).all()]


def live_columns(conn: Connection) -> dict[str, set[str]]:
    """Every table's column names (one query on PostgreSQL, one pragma per table on SQLite)."""
    out: dict[str, set[str]] = {}
    if conn.dialect.name == "sqlite":
        for table in present_tables(conn):
            out[table] = {
                str(r[1]) for r in conn.exec_driver_sql(f'PRAGMA table_info("{table}")').all()
            }
        return out
    rows = conn.exec_driver_sql(
        "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped"
    ).all()
    for table, column in rows:
        out.setdefault(str(table), set()).add(str(column))
    return out


def revision_of(conn: Connection) -> tuple[str | None, str | None]:
    """(revision, problem). Reads alembic_version defensively: it is as forgeable as any table."""
    probe = (
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        if conn.dialect.name == "sqlite"
        else "SELECT count(*) FROM pg_class WHERE relname = 'alembic_version' "
        "AND relnamespace = current_schema()::regnamespace AND relkind = 'r'"
    )
    if not conn.exec_driver_sql(probe).scalar():
        return None, "the alembic_version table is missing"
    rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    if len(rows) != 1:
        return None, f"alembic_version holds {len(rows)} rows; a sterilog database holds exactly 1"
    return str(rows[0][0]), None


def known_revisions() -> list[str]:
    """Revisions in upgrade order, read from the migration scripts."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from sterilog.migrate import script_location

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("path_separator", "os")
    script = ScriptDirectory.from_config(cfg)
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def compare(conn: Connection) -> list[tuple[str, str]]:
    """(object, message) for every difference between the live and the expected schema."""
    revision, problem = revision_of(conn)
    if problem is not None:
        return [("alembic_version", problem)]
    assert revision is not None
    backend = backend_key(conn.dialect.name)
    want = expected(revision, backend)
    if want is None:
        if revision not in known_revisions():
            return [
                (
                    "alembic_version",
                    f"revision {revision!r} is not one of this sterilog's migrations "
                    "(tampered, or a newer sterilog wrote it)",
                )
            ]
        return [
            (
                "schema",
                f"this build of sterilog has no expected schema for revision {revision} on "
                f"{backend} (run scripts/schema_fingerprints.py)",
            )
        ]
    have = describe(conn)
    out: list[tuple[str, str]] = []
    for key in sorted(set(want) | set(have)):
        if key not in have:
            out.append((key, f"missing from the database (schema revision {revision} has it)"))
        elif key not in want:
            out.append((key, f"is not part of sterilog's schema at revision {revision} (added)"))
        elif want[key] != have[key]:
            out.append(
                (
                    key,
                    f"differs from schema revision {revision}: {have[key]!r}, "
                    f"expected {want[key]!r}",
                )
            )
    return out
