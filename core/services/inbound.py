"""Store inbound mail durably, exactly once per message, before anyone answers 250.

Parsing and iTIP handling happen later, never inside the SMTP dialogue: this module
only reads enough headers to find the Message-ID for deduplication. Each message is
one short transaction: a single INSERT … ON CONFLICT (message_key) DO NOTHING RETURNING id.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from sqlalchemy import Connection, Engine, Insert, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from core.db.driver import engine_of
from core.db.models import DEFAULT_TENANT, InboundMessage

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TABLE = InboundMessage.__table__
_FIND = select(_TABLE.c.id).where(_TABLE.c.message_key == bindparam("key"))


@dataclass(frozen=True)
class Stored:
    id: int
    duplicate: bool


def message_key(raw: bytes) -> tuple[str, str]:
    """(dedup key, sha256 hex): the Message-ID when the message has one, else the hash."""
    digest = hashlib.sha256(raw).hexdigest()
    end = _HEADER_END.search(raw)
    headers = raw[: end.start()] if end else raw[:65536]
    match = _MESSAGE_ID.search(headers)
    if match:
        value = b" ".join(match.group(1).split()).decode("ascii", "replace").strip()
        # Control bytes make no id (and PostgreSQL refuses a NUL): such mail goes by its hash.
        if 2 < len(value) <= 250 and not _CONTROL.search(value):
            return value, digest
    return f"sha256:{digest}", digest


def _insert_for(dialect: str) -> Insert:
    """The dedup insert: both SQLite (3.35+) and PostgreSQL skip a known key and return no row."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement: Insert = module.insert(_TABLE).on_conflict_do_nothing(
        index_elements=[_TABLE.c.message_key]
    )
    return statement.returning(_TABLE.c.id)


_INSERTS = {name: _insert_for(name) for name in ("sqlite", "postgresql")}


_COLUMNS = [
    "tenant_id", "message_key", "content_hash", "channel", "envelope_from", "envelope_to",
    "raw", "size", "received_at", "outcome",
]  # fmt: skip


def _values(
    raw: bytes,
    key: str,
    digest: str,
    channel: str,
    now: datetime,
    envelope_from: str | None,
    envelope_to: list[str] | None,
    tenant_id: str,
) -> tuple[Any, ...]:
    """The new row's values, in _COLUMNS order."""
    sender = (envelope_from or None) and envelope_from[:320]
    recipients = ",".join(envelope_to or []) or None
    return (tenant_id, key, digest, channel, sender, recipients, raw, len(raw), now, "pending")


def insert_raw(
    connection: Connection,
    raw: bytes,
    *,
    channel: str,
    now: datetime,
    envelope_from: str | None = None,
    envelope_to: list[str] | None = None,
    tenant_id: str = DEFAULT_TENANT,
) -> Stored:
    """Insert the raw message (outcome "pending") in the caller's transaction, or find its copy."""
    key, digest = message_key(raw)
    row = _values(raw, key, digest, channel, now, envelope_from, envelope_to, tenant_id)
    values = dict(zip(_COLUMNS, row, strict=True))
    new_id = connection.execute(_INSERTS[connection.dialect.name], values).scalar()
    if new_id is not None:
        return Stored(int(new_id), duplicate=False)
    # Only a duplicate reaches here: the key exists and is committed (or we would have waited).
    existing = connection.execute(_FIND, {"key": key}).scalar_one()
    return Stored(int(existing), duplicate=True)


def store_raw(
    sessions: sessionmaker[Session],
    raw: bytes,
    *,
    channel: str,
    now: datetime,
    envelope_from: str | None = None,
    envelope_to: list[str] | None = None,
    tenant_id: str = DEFAULT_TENANT,
) -> Stored:
    """Store the raw message in its own committed transaction (a pooled connection)."""
    with engine_of(sessions).begin() as connection:
        return insert_raw(
            connection, raw, channel=channel, now=now, envelope_from=envelope_from,
            envelope_to=envelope_to, tenant_id=tenant_id,
        )  # fmt: skip


_PG_INSERT = (
    f"INSERT INTO inbound_messages ({', '.join(_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(_COLUMNS))})"
    " ON CONFLICT (message_key) DO NOTHING RETURNING id"
)
_PG_FIND = "SELECT id FROM inbound_messages WHERE message_key = %s"


async def store_raw_hot(
    conn: AsyncConnection[Any],
    raw: bytes,
    *,
    channel: str,
    now: datetime,
    envelope_from: str | None = None,
    envelope_to: list[str] | None = None,
    tenant_id: str = DEFAULT_TENANT,
) -> Stored:
    """``store_raw`` on an asyncio PostgreSQL connection in autocommit mode.

    The listener awaits it on its own event loop: no thread hand-off and no SQLAlchemy
    round, just the dedup insert, which commits when it returns.
    """
    key, digest = message_key(raw)
    values = _values(raw, key, digest, channel, now, envelope_from, envelope_to, tenant_id)
    found = await (await conn.execute(_PG_INSERT, values)).fetchone()
    if found is not None:
        return Stored(int(found[0]), duplicate=False)
    existing = await (await conn.execute(_PG_FIND, (key,))).fetchone()
    if existing is None:  # cannot be: the key exists, committed, or the insert had waited
        raise RuntimeError(f"inbound message {key!r} neither inserted nor found")
    return Stored(int(existing[0]), duplicate=True)


class SqliteRawWriter:
    """Stores messages into SQLite over one kept connection; use it from one thread only.

    SQLite has a single writer, so the SMTP listener funnels its stores through one
    thread. That thread keeps its connection and runs the dedup insert, compiled once by
    SQLAlchemy, straight on the driver: sqlite3 keeps the statement prepared, and the lone
    INSERT … RETURNING is its own transaction, committed when the statement finishes
    (WAL with synchronous=NORMAL: it survives a crash of the process, not of the machine).
    """

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "sqlite":
            raise TypeError("SqliteRawWriter needs a SQLite engine")
        self._engine = engine
        compiled = _INSERTS["sqlite"].compile(dialect=engine.dialect, column_keys=_COLUMNS)
        names = list(compiled.positiontup or ())
        self._insert_sql = compiled.string
        self._find_sql = _FIND.compile(dialect=engine.dialect).string
        self._order = [_COLUMNS.index(name) for name in names]
        self._processors = [_TABLE.c[name].type.bind_processor(engine.dialect) for name in names]
        self._pooled: Any = None

    def store(
        self,
        raw: bytes,
        *,
        channel: str,
        now: datetime,
        envelope_from: str | None = None,
        envelope_to: list[str] | None = None,
    ) -> Stored:
        key, digest = message_key(raw)
        values = _values(raw, key, digest, channel, now, envelope_from, envelope_to, DEFAULT_TENANT)
        params = [
            values[i] if process is None else process(values[i])
            for i, process in zip(self._order, self._processors, strict=True)
        ]
        try:
            driver = self._driver()
            # fetchall runs the statement to its end, which commits it (autocommit mode).
            rows = driver.execute(self._insert_sql, params).fetchall()
            if driver.in_transaction:
                raise RuntimeError("the inbound insert left a transaction open")
            if rows:
                return Stored(int(rows[0][0]), duplicate=False)
            found = driver.execute(self._find_sql, (key,)).fetchall()
            return Stored(int(found[0][0]), duplicate=True)
        except Exception:
            self.close()
            raise

    def _driver(self) -> Any:
        if self._pooled is None:
            self._pooled = self._engine.raw_connection()
        return self._pooled.driver_connection

    def close(self) -> None:
        pooled, self._pooled = self._pooled, None
        if pooled is not None:
            with contextlib.suppress(Exception):
                pooled.close()
