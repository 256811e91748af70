"""Store inbound mail durably, exactly once per message, before anyone answers 250.

Parsing and iTIP handling happen later, never inside the SMTP dialogue: this module
only reads enough headers to find the Message-ID for deduplication. Each message is
one short transaction: a single INSERT … ON CONFLICT (tenant_id, message_key) DO NOTHING
RETURNING id.
Every listener (SMTP, LMTP, IMAP, the pipe) stores through one door, ``Inbox.receive``,
which picks the store for the database and then wakes the inbound.process job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from psycopg import AsyncConnection
from sqlalchemy import Connection, Engine, Insert, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from core.db.driver import engine_of
from core.db.hot import HotConnections
from core.db.models import DEFAULT_TENANT, InboundMessage
from core.jobs import wake_now

PROCESS_JOB = "inbound.process"
INBOUND_STORED = Counter(
    "parley_mail_inbound_stored_total", "Inbound messages stored, by channel", ["channel"]
)

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TABLE = InboundMessage.__table__
# A message is stored once per deployment, looked up by its key before the insert: the
# unique key is (tenant_id, message_key), as every unique key leads with tenant_id, but
# mail is stored in the default tenant and moved to its own when it is processed, so a
# copy delivered again after that would not meet the first on the unique key.
_FIND = (
    select(_TABLE.c.id)
    .where(_TABLE.c.message_key == bindparam("key"))
    .order_by(_TABLE.c.id)
    .limit(1)
)


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
        index_elements=[_TABLE.c.tenant_id, _TABLE.c.message_key]
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
    known = connection.execute(_FIND, {"key": key}).scalar()
    if known is not None:
        return Stored(int(known), duplicate=True)
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
    " ON CONFLICT (tenant_id, message_key) DO NOTHING RETURNING id"
)
_FIND_SQL = "SELECT id FROM inbound_messages WHERE message_key = {} ORDER BY id LIMIT 1"
_PG_FIND = _FIND_SQL.format("%s")


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
    known = await (await conn.execute(_PG_FIND, (key,))).fetchone()
    if known is not None:
        return Stored(int(known[0]), duplicate=True)
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
        self._find_sql = _FIND_SQL.format("?")
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
            known = driver.execute(self._find_sql, (key,)).fetchall()
            if known:
                return Stored(int(known[0][0]), duplicate=True)
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


def request_processing(sessions: sessionmaker[Session], now: datetime) -> None:
    """Make the periodic inbound.process job due now (called right after a message is stored)."""
    wake_now(engine_of(sessions), {PROCESS_JOB: now})


@functools.lru_cache(maxsize=16)
def _stored_count(channel: str) -> Any:
    """The channel's stored counter, looked up once (a label lookup per message adds up)."""
    return INBOUND_STORED.labels(channel=channel)


class Inbox:
    """The one door every listener stores a received message through.

    receive() picks the store for the database: SQLite through one writer thread (its
    single writer makes racing threads wait on its lock), PostgreSQL with hot connections
    on the event loop, and otherwise the pooled ``store_raw`` in a thread. It counts the
    message by channel and hands a new one's id to wake (the caller's way of making the
    inbound.process job due: ``request_processing``, or a waker that coalesces bursts).
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        hot: HotConnections | None = None,
        wake: Callable[[int], None] | None = None,
    ) -> None:
        self._sessions = sessions
        engine = engine_of(sessions)
        self._writer = StoreThread(engine) if engine.dialect.name == "sqlite" else None
        self._hot = hot
        self._wake = wake

    async def receive(
        self,
        raw: bytes,
        *,
        channel: str,
        now: datetime,
        envelope_from: str | None = None,
        envelope_to: list[str] | None = None,
    ) -> Stored:
        """Store raw durably (committed when this returns), then wake processing."""
        kwargs: dict[str, Any] = {"channel": channel, "now": now, "envelope_from": envelope_from,
                                  "envelope_to": envelope_to}  # fmt: skip
        if self._writer is not None:
            stored = await self._writer.store(raw, kwargs)
        elif self._hot is not None:
            async with self._hot.connection() as conn:
                stored = await store_raw_hot(conn, raw, **kwargs)
        else:
            store = functools.partial(store_raw, self._sessions, raw, **kwargs)
            stored = await asyncio.get_running_loop().run_in_executor(None, store)
        _stored_count(channel).inc()
        if self._wake is not None and not stored.duplicate:
            self._wake(stored.id)
        return stored

    def close(self) -> None:
        """End the SQLite store thread and close its connection (the listener has stopped)."""
        if self._writer is not None:
            self._writer.close()


_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Stored]", bytes, dict[str, Any]]
_Done = tuple["asyncio.Future[Stored]", Stored | None, BaseException | None]


class StoreThread:
    """The one thread that stores SMTP mail into SQLite, each message its own transaction.

    A store is handed over on a queue and its result comes back on the event loop; when
    several stores are waiting the thread commits them one by one and then hands all
    their answers back in one wake-up of the loop (each was committed before its answer).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def store(self, raw: bytes, kwargs: dict[str, Any]) -> Stored:
        self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Stored] = loop.create_future()
        self._queue.put((loop, future, raw, kwargs))
        return await future

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(10)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="smtp-store", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        writer = SqliteRawWriter(self._engine)
        try:
            while (job := self._queue.get()) is not None:
                answers: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
                while job is not None:
                    loop, future, raw, kwargs = job
                    answers.setdefault(loop, []).append(_run_one(writer, future, raw, kwargs))
                    job = self._next_waiting()
                for loop, done in answers.items():
                    with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                        loop.call_soon_threadsafe(_answer, done)
        finally:
            writer.close()

    def _next_waiting(self) -> _Job | None:
        try:
            job = self._queue.get_nowait()
        except queue.Empty:
            return None
        if job is None:
            self._queue.put(None)  # close() asked: finish this round, then stop
        return job


def _run_one(
    writer: SqliteRawWriter, future: asyncio.Future[Stored], raw: bytes, kwargs: dict[str, Any]
) -> _Done:
    try:
        return future, writer.store(raw, **kwargs), None
    except Exception as exc:
        return future, None, exc


def _answer(done: list[_Done]) -> None:
    for future, stored, error in done:
        if future.cancelled():
            continue  # the client went away; the message is stored all the same
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(stored)  # type: ignore[arg-type]
