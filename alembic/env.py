"""Alembic environment: sterilog passes its engine in `config.attributes["engine"]`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine

from alembic import context
from sterilog.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Autogenerate renders custom types without their import; spell it out.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("import sterilog.models")
        return "sterilog.models.UTCDateTime()"
    return False


def run_migrations() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///dev.db")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_item=render_item,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
