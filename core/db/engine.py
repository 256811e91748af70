"""Engines and sessions for SQLite (the embedded default) and PostgreSQL.

SQLite runs in WAL mode with a busy timeout so several threads and processes can
share one file; transactions that write start with BEGIN IMMEDIATE so that the
check-then-insert of a hold is serialized instead of failing late.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for url, tuned for the dialect."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    # No pre-ping: it costs a round trip on every checkout (a tenth of a hold's time).
    # Instead a checkout looks, without a round trip, whether the server has closed the
    # connection (pg_terminate_backend, a restart) and then takes a fresh one.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 1800)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkout", _refuse_closed)
    return engine


def closed_by_server(dbapi_conn: Any) -> bool:
    """True when an idle connection has something to read: only a server that is ending it
    (its FATAL message, or end of file) sends to an idle connection that did not LISTEN."""
    if getattr(dbapi_conn, "closed", False):
        return True
    poll = getattr(select, "poll", None)
    if poll is None:  # no poll() (Windows): the first statement finds out
        return False
    try:
        fd = dbapi_conn.fileno()
    except Exception:  # already closed on our side
        return True
    poller = poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _refuse_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    # The pool discards a connection whose checkout raises this and connects anew.
    if closed_by_server(dbapi_conn):
        raise DisconnectionError("the server closed this pooled connection")


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy drive transactions (pysqlite's own BEGIN handling is off).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session
