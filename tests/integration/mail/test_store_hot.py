"""The hot inbound store (``store_raw_hot``) leaves what the pooled one (``store_raw``) leaves.

Each case stores one message through core's Inbox twice in the same PostgreSQL database:
once with hot connections (the event-loop path SMTP and LMTP take) and once without (the
pooled path), the first row read and deleted in between. Rows, dedup answers and errors
must agree: a new message, its duplicate, mail whose Message-ID cannot be a key (none,
control bytes, too long), an oversized message, values the database refuses, and the
same message arriving on both paths at once while a third copy's insert is in flight.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy import exc as sa_exc

from core.db.driver import engine_of
from core.db.models import InboundMessage
from core.runtime import Runtime
from core.services.inbound import Inbox, Stored, insert_raw
from tests.integration.mail.helpers import mail

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

NOW = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
TO = ["scheduling+t1@parley.localhost", "bookings@parley.localhost"]


def _store(runtime: Runtime, raw: bytes, *, hot: bool, **kw: Any) -> Stored:
    inbox = Inbox(runtime.sessions, hot=runtime.hot if hot else None)
    kw = {"channel": "smtp", "now": NOW, "envelope_from": "g@example.net", "envelope_to": TO, **kw}
    try:
        return asyncio.run(inbox.receive(raw, **kw))
    finally:
        inbox.close()


def _rows(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        rows = session.scalars(select(InboundMessage).order_by(InboundMessage.id))
        return [{c.key: getattr(r, c.key) for c in r.__table__.columns} for r in rows]


def _without_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def _clear(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        session.execute(delete(InboundMessage))


def _both(runtime: Runtime, *copies: bytes, **kw: Any) -> None:
    """Store copies through each path in turn; their answers and rows must agree."""
    results = []
    for hot in (False, True):
        _clear(runtime)
        stored = [_store(runtime, raw, hot=hot, **kw) for raw in copies]
        rows = _rows(runtime)
        first = {row["id"]: i for i, row in enumerate(rows)}
        answers = [(first[s.id], s.duplicate) for s in stored]
        results.append((answers, _without_ids(rows)))
    (slow_answers, slow_rows), (hot_answers, hot_rows) = results
    assert hot_answers == slow_answers
    assert hot_rows == slow_rows


@pytest.fixture(autouse=True)
def _hot(runtime: Runtime) -> None:
    assert runtime.hot is not None, "hot connections are PostgreSQL's"


def test_a_new_message_is_one_row_on_either_path(runtime: Runtime) -> None:
    raw = mail(message_id="<new@example.net>")
    _both(runtime, raw)
    row = _rows(runtime)[0]
    assert (row["message_key"], row["outcome"], row["raw"]) == ("<new@example.net>", "pending", raw)
    assert row["envelope_to"] == ",".join(TO) and row["received_at"] == NOW


def test_a_duplicate_is_answered_with_the_first_copy_on_either_path(runtime: Runtime) -> None:
    first = mail(message_id="<dup@example.net>")
    again = mail(message_id="<dup@example.net>", body="a resent copy")
    _both(runtime, first, again, first)
    assert [row["raw"] for row in _rows(runtime)] == [first]
    # Across paths too: what one stored, the other recognises.
    _clear(runtime)
    slow = _store(runtime, first, hot=False)
    assert _store(runtime, again, hot=True) == Stored(slow.id, duplicate=True)
    hot = _store(runtime, mail(message_id="<dup2@example.net>"), hot=True)
    assert _store(runtime, mail(message_id="<dup2@example.net>"), hot=False) == Stored(
        hot.id, duplicate=True
    )


@pytest.mark.parametrize(
    "raw",
    [
        b"From: g@example.net\r\nSubject: no id\r\n\r\nbody\r\n",
        b"Message-ID: <nul\x00@x>\r\nFrom: g@example.net\r\n\r\nbody\r\n",
        b"Message-ID: <" + b"x" * 300 + b"@x>\r\nFrom: g@example.net\r\n\r\nbody\r\n",
        b"\x00\xff\xfe binary, no headers at all",
        b"Message-ID:\r\n <folded@\r\n example.net>\r\n\r\n\xe9t\xe9 8-bit\r\n",
    ],
    ids=["no-id", "control-bytes", "too-long", "binary", "folded-8bit"],
)
def test_malformed_mail_is_keyed_alike(runtime: Runtime, raw: bytes) -> None:
    _both(runtime, raw, raw)


def test_an_oversized_message_and_long_envelope_are_stored_alike(runtime: Runtime) -> None:
    raw = mail(message_id="<big@example.net>", body="x" * (4 * 1024 * 1024))
    _both(runtime, raw, envelope_from="a" * 400 + "@example.net", envelope_to=TO * 30)
    row = _rows(runtime)[0]
    assert row["size"] == len(raw) and len(row["envelope_from"]) == 320


@pytest.mark.parametrize(
    "kw",
    [{"tenant_id": "no-such-tenant"}, {"channel": "far-too-long"}, {"envelope_from": "a\x00@x"}],
    ids=["unknown-tenant", "channel-too-long", "nul-in-envelope"],
)
def test_the_database_refuses_the_same_values_on_either_path(
    runtime: Runtime, kw: dict[str, Any]
) -> None:
    raw = mail(message_id="<refused@example.net>")
    errors = []
    for hot in (False, True):
        with pytest.raises(Exception) as raised:
            if "tenant_id" in kw:  # not a listener's argument: the twins themselves
                _twin(runtime, raw, hot=hot, **kw)
            else:
                _store(runtime, raw, hot=hot, **kw)
        error = raised.value
        cause = error.orig if isinstance(error, sa_exc.DBAPIError) else error
        errors.append((type(cause), getattr(cause, "sqlstate", None)))
    assert errors[0] == errors[1]
    assert _rows(runtime) == []


def _twin(runtime: Runtime, raw: bytes, *, hot: bool, **kw: Any) -> Stored:
    """store_raw or store_raw_hot called directly, with arguments a listener never passes."""
    from core.services.inbound import store_raw, store_raw_hot

    args: dict[str, Any] = {"channel": "smtp", "now": NOW, **kw}
    if not hot:
        return store_raw(runtime.sessions, raw, **args)
    assert runtime.hot is not None
    pool = runtime.hot

    async def run() -> Stored:
        async with pool.connection() as conn:
            return await store_raw_hot(conn, raw, **args)

    return asyncio.run(run())


@pytest.mark.parametrize("first_commits", [True, False], ids=["commits", "rolls-back"])
def test_concurrent_copies_on_both_paths_make_one_row(
    runtime: Runtime, first_commits: bool
) -> None:
    """A copy's insert is in flight (uncommitted) while the two paths store the same message:
    both wait on the key; then exactly one row exists and every answer names it."""
    raw = mail(message_id="<race@example.net>")
    answers: dict[str, Stored] = {}
    started = threading.Barrier(3)

    def on(path: str) -> None:
        started.wait(10)
        answers[path] = _store(runtime, raw, hot=path == "hot")

    threads = [threading.Thread(target=on, args=(path,)) for path in ("hot", "pooled")]
    with engine_of(runtime.sessions).connect() as connection:
        transaction = connection.begin()
        held = insert_raw(connection, raw, channel="smtp", now=NOW)
        for thread in threads:
            thread.start()
        started.wait(10)
        _until_waiting_on_the_key(runtime, 2)
        if first_commits:
            transaction.commit()
        else:
            transaction.rollback()
    for thread in threads:
        thread.join(30)
    (row,) = _rows(runtime)
    assert {stored.id for stored in answers.values()} == {row["id"]}
    duplicates = sorted(stored.duplicate for stored in answers.values())
    if first_commits:
        assert row["id"] == held.id and duplicates == [True, True]
    else:
        assert duplicates == [False, True]


def _until_waiting_on_the_key(runtime: Runtime, count: int) -> None:
    """Until count other sessions wait on a lock (the in-flight key), 20 s at most."""
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    for _ in range(400):
        with engine_of(runtime.sessions).connect() as connection:
            if connection.exec_driver_sql(query).scalar_one() >= count:
                return
        threading.Event().wait(0.05)
    raise TimeoutError(f"{count} stores never waited on the in-flight key")
