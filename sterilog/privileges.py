"""`sterilog db grant ROLE`: least privilege for the terminals on PostgreSQL (SPEC §7).

The schema owner (who runs `db upgrade`) grants an existing login role exactly what every other
sterilog command needs, and nothing more:

- CONNECT on the database, USAGE on the schema (no CREATE: it cannot add tables, functions,
  triggers or views, and PUBLIC loses CREATE on the schema too);
- SELECT and INSERT on every table (records are inserted, never updated or deleted), SELECT
  only on alembic_version; no UPDATE, DELETE, TRUNCATE, REFERENCES or TRIGGER;
- USAGE on the id sequences (nextval for new rows);
- the same on tables and sequences a later migration adds (ALTER DEFAULT PRIVILEGES).

Only the owner of a table may ALTER or DROP it, or create and disable its triggers; only a
superuser may set session_replication_role. So the role must be neither the owner nor a
superuser nor able to bypass row security; `db grant` refuses such a role.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from sterilog.errors import UserError
from sterilog.schema import NOT_RECORDS


@dataclass(frozen=True)
class Granted:
    role: str
    schema: str
    tables: list[str]


def _ident(conn: Connection, name: str) -> str:
    return str(conn.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar_one())


def grant(conn: Connection, role: str) -> Granted:
    if conn.dialect.name == "sqlite":
        raise UserError(
            "db grant is for PostgreSQL; a SQLite file has no roles: protect it with file "
            "permissions (see docs/security.md)"
        )
    row = conn.execute(
        text(
            "SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole FROM pg_roles "
            "WHERE rolname = :r"
        ),
        {"r": role},
    ).first()
    if row is None:
        raise UserError(
            f"role {role!r} does not exist; create it first (CREATE ROLE {role} LOGIN PASSWORD "
            "'...'), see docs/operations.md"
        )
    if row[0] or row[1] or row[3]:
        raise UserError(
            f"role {role!r} is a superuser, bypasses row security or can create roles: it could "
            "undo every protection; give the terminals an ordinary login role"
        )
    if not row[2]:
        raise UserError(f"role {role!r} cannot log in (ALTER ROLE {role} LOGIN)")
    me, schema, database = conn.execute(
        text("SELECT current_user, current_schema(), current_database()")
    ).one()
    if role == me:
        raise UserError(f"{role!r} is you, the schema owner; grant a different role")
    owners = (
        conn.execute(
            text(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
                "WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p', 'S')"
            )
        )
        .scalars()
        .all()
    )
    if owners and set(owners) != {me}:
        raise UserError(
            f"run db grant as the owner of sterilog's tables ({', '.join(sorted(owners))}), "
            f"not as {me!r}"
        )
    member = conn.execute(
        text("SELECT pg_has_role(:r, :me, 'MEMBER')"), {"r": role, "me": me}
    ).scalar_one()
    if member:
        raise UserError(f"role {role!r} is a member of the owner {me!r}: it would own everything")
    r, s, d = _ident(conn, role), _ident(conn, schema), _ident(conn, database)
    tables = sorted(
        conn.execute(
            text(
                "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
                "AND relkind IN ('r', 'p')"
            )
        )
        .scalars()
        .all()
    )
    for statement in (
        f"GRANT CONNECT ON DATABASE {d} TO {r}",
        f"REVOKE CREATE ON SCHEMA {s} FROM PUBLIC",
        f"REVOKE ALL ON SCHEMA {s} FROM {r}",
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
        f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {s} TO {r}",
        *(
            f"REVOKE INSERT ON {_ident(conn, t)} FROM {r}"
            for t in sorted(NOT_RECORDS)
            if t in tables
        ),
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE ON SEQUENCES TO {r}",
    ):
        conn.exec_driver_sql(statement)
    return Granted(role=role, schema=str(schema), tables=tables)
