"""The outbox: outbound mail written in the caller's transaction, claimed and settled by senders.

A row exists at most once per idempotency key, so a state change retried by its caller
never queues a second message. Senders claim due rows with a lease (FOR UPDATE SKIP
LOCKED on PostgreSQL), then settle each one as sent, retried with back-off, or failed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.db.driver import dialect_time, engine_of, for_driver
from core.db.models import DEFAULT_TENANT, OutboundMessage
from core.jobs import wake_after_commit

FIRST_RETRY_SECONDS = 20.0
MAX_RETRY_SECONDS = 3600.0


@dataclass(frozen=True)
class OutboxItem:
    """A claimed row, detached from its session: what a sender needs to deliver it."""

    id: int
    idempotency_key: str
    recipient: str
    message_id: str
    mime: bytes
    attempts: int
    created_at: datetime
    tenant_id: str = DEFAULT_TENANT


@dataclass(frozen=True)
class Settled:
    """What became of one delivery attempt."""

    status: str  # "sent", "retry" or "failed"
    next_attempt_at: datetime | None = None


def enqueue_message(
    session: Session,
    *,
    idempotency_key: str,
    kind: str,
    uid: str | None,
    sequence: int | None,
    attendee: str | None,
    method: str | None,
    booking_id: str | None,
    recipient: str,
    message: bytes,
    message_id: str,
    now: datetime,
    tenant_id: str = DEFAULT_TENANT,
    known_new: bool = False,
) -> bool:
    """Queue a message in the caller's transaction; False (a no-op) when the key exists.

    known_new: the caller has just looked the key up in this transaction (and composed the
    message only because it is absent), so the lookup is not repeated and the row goes
    out with the transaction's next flush, together with the others (the unique key
    still guards it there).
    """
    if not known_new:
        existing = session.scalar(
            select(OutboundMessage.id).where(OutboundMessage.idempotency_key == idempotency_key)
        )
        if existing is not None:
            return False
    session.add(
        outbox_row(
            idempotency_key=idempotency_key, kind=kind, uid=uid, sequence=sequence,
            attendee=attendee, method=method, booking_id=booking_id, recipient=recipient,
            message=message, message_id=message_id, now=now, tenant_id=tenant_id,
        )
    )  # fmt: skip
    if not known_new:
        # Flush now so a duplicate key inside the same transaction fails here, not at commit.
        session.flush()
    return True


def outbox_row(
    *,
    idempotency_key: str,
    kind: str,
    uid: str | None,
    sequence: int | None,
    attendee: str | None,
    method: str | None,
    booking_id: str | None,
    recipient: str,
    message: bytes,
    message_id: str,
    now: datetime,
    tenant_id: str = DEFAULT_TENANT,
) -> OutboundMessage:
    """A new pending outbox row, due now, not yet in any session."""
    return OutboundMessage(
        tenant_id=tenant_id,
        idempotency_key=idempotency_key,
        kind=kind,
        uid=uid,
        sequence=sequence,
        attendee=attendee.lower() if attendee else None,
        method=method.upper() if method else None,
        booking_id=booking_id,
        recipient=recipient,
        message_id=message_id,
        mime=message,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


_TABLE = cast(Table, OutboundMessage.__table__)
_CLAIMED = (
    _TABLE.c.id, _TABLE.c.idempotency_key, _TABLE.c.recipient, _TABLE.c.message_id,
    _TABLE.c.mime, _TABLE.c.attempts, _TABLE.c.created_at, _TABLE.c.tenant_id,
)  # fmt: skip


def claim_due(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    lease_seconds: float,
    limit: int,
    owner: str | None = None,
) -> list[OutboxItem]:
    """Lease up to limit due rows (pending and due, or sending with a lapsed lease) to owner.

    One SELECT (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's BEGIN IMMEDIATE already
    serializes) and one UPDATE for the whole batch: the rows are plain tuples, not objects.
    """
    with sessions.begin() as session:
        due = or_(
            (_TABLE.c.status == "pending") & (_TABLE.c.next_attempt_at <= now),
            (_TABLE.c.status == "sending") & (_TABLE.c.locked_until < now),
        )
        query = select(*_CLAIMED).where(due).order_by(_TABLE.c.next_attempt_at, _TABLE.c.id)
        query = query.limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        connection = session.connection()
        rows = connection.execute(query).all()
        if not rows:
            return []
        connection.execute(
            update(_TABLE)
            .where(_TABLE.c.id.in_([row.id for row in rows]))
            .values(
                status="sending",
                locked_until=now + timedelta(seconds=lease_seconds),
                locked_by=owner,
                attempts=_TABLE.c.attempts + 1,
            )
        )
        return [_item(row) for row in rows]


def _item(row: Row[Any, Any, Any, Any, Any, Any, Any, Any]) -> OutboxItem:
    """The claimed row as the sender sees it (attempts already counts this try)."""
    return OutboxItem(
        id=row.id,
        idempotency_key=row.idempotency_key,
        recipient=row.recipient,
        message_id=row.message_id,
        mime=row.mime,
        attempts=row.attempts + 1,
        created_at=row.created_at,
        tenant_id=row.tenant_id,
    )


def retry_delay(attempts: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds before the next try: 20 s doubling to an hour, less up to a quarter of jitter."""
    base = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, min(attempts - 1, 20)))
    return float(base * (1.0 - 0.25 * rand()))


def mark_sent(session: Session, item: OutboxItem, *, now: datetime) -> None:
    """The relay (or the Maildir) accepted the message."""
    mark_sent_many(session, [item], now=now)


_MARK_SENT = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("item_id"), _TABLE.c.status == "sending")
    .values(
        status="sent", sent_at=bindparam("now"), locked_until=None, locked_by=None,
        last_error=None,
    )
)  # fmt: skip


def mark_sent_many(session: Session, items: list[OutboxItem], *, now: datetime) -> None:
    """Several accepted messages, in one executemany of one prepared UPDATE."""
    if items:
        params = [{"item_id": item.id, "now": now} for item in items]
        session.connection().execute(_MARK_SENT, params)


_SENT_NOW = (
    "UPDATE outbound_messages SET status = 'sent', sent_at = :now, locked_until = NULL,"
    " locked_by = NULL, last_error = NULL WHERE status = 'sending' AND id {ids}"
)


class SentMarks:
    """Accepted messages marked sent and committed at once, in one plain statement.

    A sender keeps one for a batch and calls ``mark`` after each relay acceptance (the
    lanes' results together), on a pooled driver connection it holds until ``close``:
    one round trip on PostgreSQL (pipelined, with the commit) and no reset of the
    connection between calls. That commit does not wait for its WAL flush
    (synchronous_commit off, for this transaction only): a crash of Parley loses
    nothing, and a crash of PostgreSQL itself at worst forgets the last few sent marks,
    whose messages then go out again with their Message-IDs. Not for two threads at once.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.engine = engine_of(sessions)
        self.connection: Any = None

    def mark(self, items: list[OutboxItem], *, now: datetime) -> None:
        if not items:
            return
        dialect = self.engine.dialect.name
        if self.connection is None:
            self.connection = self.engine.raw_connection()
        try:
            if dialect == "postgresql":
                driver = self.connection.driver_connection
                with driver.pipeline(), driver.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
                    sql = for_driver(_SENT_NOW.format(ids="= ANY(:ids)"), dialect)
                    cursor.execute(sql, {"now": now, "ids": [item.id for item in items]})
                    driver.commit()
                return
            names = [f":id{n}" for n in range(len(items))]
            params: dict[str, Any] = {f"id{n}": item.id for n, item in enumerate(items)}
            params["now"] = dialect_time(dialect, now)
            cursor = self.connection.cursor()
            cursor.execute(_SENT_NOW.format(ids=f"IN ({', '.join(names)})"), params)
            cursor.close()
            self.connection.commit()
        except BaseException:
            self.close()  # a connection in an unknown state goes back to be reset
            raise

    def close(self) -> None:
        """Hand the connection back to the pool."""
        if self.connection is not None:
            connection, self.connection = self.connection, None
            connection.close()


def mark_unsent(
    session: Session,
    item: OutboxItem,
    *,
    now: datetime,
    error: str,
    permanent: bool,
    give_up_after: timedelta,
) -> Settled:
    """A failed try: failed for good when permanent or too old, otherwise due again later."""
    values: dict[str, object] = {
        "locked_until": None, "locked_by": None, "last_error": error[:2000],
    }  # fmt: skip
    if permanent or now - item.created_at >= give_up_after:
        if not permanent:
            values["last_error"] = f"gave up after {item.attempts} attempts: {error}"[:2000]
        settled = Settled("failed")
        values["status"] = "failed"
    else:
        settled = Settled("retry", now + timedelta(seconds=retry_delay(item.attempts)))
        values.update(status="pending", next_attempt_at=settled.next_attempt_at)
    session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.id == item.id, OutboundMessage.status == "sending")
        .values(**values)
    )
    return settled


def release_dead_leases(session: Session, *, owners: str, current: str, now: datetime) -> int:
    """Rows leased by an earlier incarnation of this process (owners: a LIKE pattern with
    escape /, see core.jobs.owner_pattern) are due again at once; see
    core.jobs.release_dead_leases for why that is safe."""
    result = session.execute(
        update(_TABLE)
        .where(
            _TABLE.c.status == "sending",
            _TABLE.c.locked_by.like(owners, escape="/"),
            _TABLE.c.locked_by != current,
        )
        .values(status="pending", locked_until=None, locked_by=None, next_attempt_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


DELIVER_JOB = "outbox.deliver"


def deliver_soon(session: Session, now: datetime) -> None:
    """Make the outbox.deliver job due once this transaction commits, not at its next period.

    A change that mails both attendees wakes the sender once (see wake_after_commit).
    """
    wake_after_commit(session, DELIVER_JOB, now)
