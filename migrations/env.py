"""Alembic environment: migrates the database named by Parley's settings."""

from __future__ import annotations

import warnings
from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SAWarning

from core.db.engine import make_engine
from core.db.models import Base
from core.db.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    from core.settings import load_settings

    return load_settings().effective_database_url


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations spell the UTC type as its plain SQL type, so they do not import core.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    # On the DBAPI connection, outside any transaction: inside one the pragma is a no-op.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    cursor.close()


def _run(engine: Engine) -> None:
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table as copy, DROP TABLE, rename; with foreign keys on,
            # that DROP deletes its rows first and the ON DELETE CASCADE of every child
            # table fires: a rebuilt parent (tenants, bookings) would empty its children.
            _sqlite_foreign_keys(connection, on=False)
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                render_item=_render_item,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    _refuse_dangling_keys(connection)
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, on=True)


def _refuse_dangling_keys(connection: Connection) -> None:
    """Roll the migration back if it left a row whose foreign key points at nothing."""
    bad = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchmany(5)
    if bad:
        raise RuntimeError(f"migration left rows with dangling foreign keys: {bad}")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            render_item=_render_item,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_database_url())
    try:
        _run(engine)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
with warnings.catch_warnings():
    # SQLite's reflection skips indexes on expressions (lower(guest_email)), and alembic
    # check then leaves them out there, each saying so; PostgreSQL reflects and compares them.
    warnings.filterwarnings(
        "ignore", "Skipped unsupported reflection of expression-based index", SAWarning
    )
    warnings.filterwarnings(
        "ignore", "autogenerate skipping metadata-specified expression-based index", UserWarning
    )
    run_migrations_online()
