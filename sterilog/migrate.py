"""Alembic wiring. The migration scripts ship inside the wheel as `sterilog/_alembic`; in a
source checkout they are the top-level `alembic/` folder."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

if TYPE_CHECKING:
    from alembic.config import Config


def script_location() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_alembic", here.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError("sterilog's migration scripts are missing from this installation")


def config(engine: Engine, out: io.StringIO | None = None) -> Config:
    from alembic.config import Config

    cfg = Config(stdout=out or io.StringIO())
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["engine"] = engine
    return cfg


TAMPERED = (
    "the database's schema revision in alembic_version ({found}) is not one this sterilog "
    "knows: the table was altered (or a newer sterilog wrote it); restore a backup, or run the "
    "sterilog version that made it"
)


@contextmanager
def _revision_errors(engine: Engine) -> Iterator[None]:
    """Alembic's errors about an unknown/ambiguous revision become a clear exit-1 message."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    from sterilog.errors import DatabaseError

    try:
        yield
    except (CommandError, RevisionError, KeyError) as error:
        raise DatabaseError(TAMPERED.format(found=_raw_versions(engine))) from error


def _raw_versions(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except Exception:
        return "unreadable"
    return ", ".join(repr(r[0]) for r in rows) or "no row"


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command
    from sterilog.db import enable_wal

    enable_wal(engine)
    with _revision_errors(engine):
        if current(engine) is None:  # also refuses a tampered version table
            from sterilog.errors import DatabaseError
            from sterilog.schema import present_tables

            with engine.connect() as conn:
                tables = set(present_tables(conn)) - {"alembic_version"}
            if tables:
                raise DatabaseError(TAMPERED.format(found=_raw_versions(engine)))
        command.upgrade(config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    command.downgrade(config(engine), revision)


def current(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with _revision_errors(engine), engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
        if rev is not None:
            from alembic.script import ScriptDirectory

            ScriptDirectory.from_config(config(engine)).get_revision(rev)  # unknown: raises
        return rev


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config(engine)).get_current_head()


def check(engine: Engine) -> list[Any]:
    """Differences between the models and the migrated database (empty list: they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from sterilog.models import Base

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))
