"""What becomes of each stored inbound message: parse it, record the facts, decide its outcome.

Runs as the worker's "inbound.process" job, after the message is safely stored, never
inside the SMTP dialogue. Outcomes: unparseable, auto_reply, bounce, unauthenticated,
ignored, plain_reply (answers an invitation without iTIP), itip, and failed (deciding it
raised: its work is rolled back and the others go on). The two hooks at the bottom,
apply_itip and answer_non_itip, are where the negotiation layer plugs in. The wires the
decisions need (the MIME parser, DKIM and Authentication-Results checks) come in as a
``MailReader``: the mail agent's, handed over where the jobs are wired (parley).
"""

from __future__ import annotations

import re
import sqlite3
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import psycopg
from prometheus_client import Counter
from sqlalchemy import exc as sa_exc
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from core.db.driver import dialect_time, driver_batch, driver_rows, engine_of
from core.db.models import DEFAULT_TENANT, InboundMessage, Invitation
from core.imip.errors import BadAddress
from core.imip.mail import Outcome, ParsedMail, split_plus
from core.itip.read import Attendee, ItipMessage
from core.logging import get_logger
from core.metrics import BOUNCES
from core.services import dav_scheduling, replies
from core.services.bookings import Actor
from core.services.mailboxes import Mailboxes
from core.settings import Settings

_log = get_logger("parley.inbound")

# Methods an attendee sends; the rest (REQUEST, CANCEL, …) speak for the organizer.
ATTENDEE_METHODS = frozenset({"REPLY", "COUNTER", "REFRESH"})
INBOUND = Counter(
    "parley_mail_inbound_total", "Inbound messages processed, by outcome", ["outcome"]
)
# How a DKIM check looks a name up (dkimpy's dnsfunc): None for the system resolver.
DnsFunc = Callable[..., bytes | None]


@dataclass(frozen=True)
class MailReader:
    """The mail agent's wires the decisions use; core only calls them.

    parse: raw bytes to ParsedMail, never raising. dkim_passes(raw, domain, dnsfunc): a
    valid DKIM signature of domain is on raw. authres_passes(raw, authserv_id, domain): a
    passing Authentication-Results header of that receiver vouches for domain.
    """

    parse: Callable[[bytes], ParsedMail]
    dkim_passes: Callable[[bytes, str, DnsFunc | None], bool]
    authres_passes: Callable[[bytes, str, str], bool]


@dataclass(frozen=True)
class AuthPolicy:
    """How an inbound iTIP sender must prove its address: none, dkim or authres:<id>."""

    mode: str = "none"
    authserv_id: str = ""
    dnsfunc: DnsFunc | None = None

    @classmethod
    def from_setting(cls, value: str, dnsfunc: DnsFunc | None = None) -> AuthPolicy:
        kind, _, ident = value.strip().partition(":")
        kind = kind.lower() or "none"
        if kind not in ("none", "dkim", "authres") or (kind == "authres") != bool(ident):
            raise ValueError(f"PARLEY_INBOUND_AUTH must be none, dkim or authres:<id>: {value!r}")
        return cls(kind, ident, dnsfunc)


@dataclass(frozen=True)
class ProcessingContext:
    """What processing needs; with an actor, iTIP and plain answers are acted on."""

    sessions: sessionmaker[Session]
    settings: Settings
    auth: AuthPolicy
    clock: Callable[[], datetime]
    actor: Actor | None = None
    reader: MailReader = field(kw_only=True)
    # Whose organizer each message was sent to; by default read from settings and sessions.
    mailboxes: Mailboxes = field(default=None, kw_only=True)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.mailboxes is None:
            mailboxes = Mailboxes.of_settings(self.settings, self.sessions)
            object.__setattr__(self, "mailboxes", mailboxes)


def process_pending(context: ProcessingContext, *, limit: int = 100) -> int:
    """Process up to limit pending messages, oldest first; returns how many were settled.

    On PostgreSQL up to ``inbound_concurrency`` threads take messages side by side, each
    the oldest one nobody holds (SKIP LOCKED), so their database round trips overlap.
    The calling thread starts alone and brings in the helpers only once a second message
    is waiting: under a steady stream a run has one message, and helpers would each only
    find the queue empty. Two answers about one booking still apply one after the other
    (the booking row is locked), and a late-arriving older one is recognised by its
    SEQUENCE and DTSTAMP.
    """
    threads = context.settings.inbound_concurrency
    if engine_of(context.sessions).dialect.name != "postgresql" or threads <= 1:
        return _process_in_order(context, limit)
    budget = iter(range(limit))
    lock = threading.Lock()

    def take() -> str | None:
        with lock:
            if next(budget, None) is None:
                return None
        return process_next(context)

    def drain() -> int:
        settled = 0
        while (outcome := take()) is not None:
            settled += outcome != RETRY
        return settled

    taken = settled = 0
    while taken < 2 and (outcome := take()) is not None:
        taken += 1
        settled += outcome != RETRY
    if taken < 2:
        return settled
    helpers = [_helpers(threads - 1).submit(drain) for _ in range(threads - 1)]
    return settled + drain() + sum(helper.result() for helper in helpers)


@lru_cache(maxsize=4)
def _helpers(size: int) -> ThreadPoolExecutor:
    """The process's helper threads for process_pending (started as they are first used)."""
    return ThreadPoolExecutor(size, thread_name_prefix="inbound")


def _process_in_order(context: ProcessingContext, limit: int) -> int:
    with context.sessions() as session:
        ids = list(
            session.scalars(
                select(InboundMessage.id)
                .where(InboundMessage.outcome == "pending")
                .order_by(InboundMessage.received_at, InboundMessage.id)
                .limit(limit)
            )
        )
    outcomes = (process_one(context, message_id) for message_id in ids)
    return sum(1 for outcome in outcomes if outcome not in (None, RETRY))


def process_next(context: ProcessingContext) -> str | None:
    """Settle the oldest pending message no one else holds; None when there is none.

    RETRY when the message taken was left pending to be tried again (see _undecided).
    """
    return _settle_one(context, None)


def process_one(context: ProcessingContext, message_id: int) -> str | None:
    """Settle one stored message; None when it is gone or already settled by someone else."""
    return _settle_one(context, message_id)


def settled_outcome(context: ProcessingContext, message_id: int) -> str:
    """The outcome of a stored message, settling it here and now if it is still pending.

    For a listener that must act on the outcome (the IMAP poller files each message by
    it) right after storing the message and waking the inbound.process job: whoever
    claims the message first, this caller or the job, settles it through the same
    process_one; the other waits for that claim to end and reads what it wrote. A lock
    or key race is tried again, CONFLICT_TRIES times at most; "unparseable" for a message
    that is gone, and "pending" for one still not settled after that.
    """
    stored = RETRY
    for _ in range(CONFLICT_TRIES + 1):
        outcome = process_one(context, message_id)
        if outcome is not None and outcome != RETRY:
            return outcome
        stored = _outcome_after_claims(context, message_id)
        if stored != RETRY:
            return stored
    return stored


def _outcome_after_claims(context: ProcessingContext, message_id: int) -> str:
    """The stored outcome once no one holds the message (on PostgreSQL, behind its lock)."""
    with context.sessions.begin() as session:
        lock = " FOR UPDATE" if session.get_bind().dialect.name == "postgresql" else ""
        found = driver_rows(
            session,
            f"SELECT outcome FROM inbound_messages WHERE id = :id{lock}",
            {"id": message_id},
        )
    return str(found[0][0]) if found else "unparseable"


_CLAIM = (
    "SELECT id, raw, envelope_to, tenant_id FROM inbound_messages WHERE outcome = 'pending'{only}"
    " ORDER BY received_at, id LIMIT 1{lock}"
)
_FACTS = (
    "tenant_id", "from_address", "subject", "method", "uid", "sequence", "dtstamp", "attendee",
    "partstat", "outcome", "outcome_reason", "booking_id", "processed_at",
)  # fmt: skip


class _Undecided(Exception):
    """Deciding the claimed message raised; its transaction is rolled back."""

    def __init__(self, row: InboundMessage, cause: Exception) -> None:
        super().__init__(row.id)
        self.row = row
        self.cause = cause


def _settle_one(context: ProcessingContext, message_id: int | None) -> str | None:
    """Process the pending message (the given one, else the oldest), locked.

    On PostgreSQL rows others hold are skipped. The row is read and written back with
    plain statements; the deciding code sees it as an unattached ``InboundMessage``.
    Whatever deciding raises stays with that message (see _undecided).
    """
    try:
        with context.sessions.begin() as session:
            dialect = session.get_bind().dialect.name
            claim = _CLAIM.format(
                only="" if message_id is None else " AND id = :id",
                lock=" FOR UPDATE SKIP LOCKED" if dialect == "postgresql" else "",
            )
            found = driver_rows(session, claim, {"id": message_id})
            if not found:
                return None
            message_id, raw, envelope_to, tenant_id = found[0]
            row = InboundMessage(
                id=message_id, raw=bytes(raw), envelope_to=envelope_to, tenant_id=tenant_id
            )
            try:
                outcome = _decide_and_write(session, context, row)
            except Exception as exc:
                raise _Undecided(row, exc) from exc
    except _Undecided as undecided:
        return _undecided(context, undecided.row, undecided.cause)
    _strikes.pop(message_id, None)
    # Counted once committed, both together: a scrape never sees one without the other,
    # and a rolled-back decision counts nothing.
    INBOUND.labels(outcome=outcome).inc()
    if outcome == "bounce":
        BOUNCES.inc()
    _log.info("mail.inbound.processed", id=message_id, outcome=outcome)
    return outcome


def _decide_and_write(session: Session, context: ProcessingContext, row: InboundMessage) -> str:
    row.outcome = "pending"
    now = context.clock()
    parsed = context.reader.parse(row.raw)
    # The tenant whose organizer it was sent to; only that tenant's bookings are matched.
    found = context.mailboxes.tenant_among(_recipients(row, parsed))
    row.tenant_id = found or row.tenant_id or DEFAULT_TENANT
    _write_facts(session, row, ("tenant_id",))  # first: rows made below point at it (FK)
    _record_facts(row, parsed)
    _decide(session, row, parsed, context, now)
    if row.outcome == "pending":  # a hook that decided nothing: do not loop on it
        _settle(row, "itip" if parsed.itip else "ignored", now)
    _write_facts(session, row, _FACTS)
    return row.outcome


def _write_facts(session: Session, row: InboundMessage, columns: tuple[str, ...]) -> bool:
    """Write the row's columns back while it is pending; False when it was not."""
    dialect = session.get_bind().dialect.name
    facts = {column: getattr(row, column) for column in columns}
    for column in ("dtstamp", "processed_at"):
        if facts.get(column) is not None:
            facts[column] = dialect_time(dialect, facts[column])
    sets = ", ".join(f"{c} = :{c}" for c in columns)
    update = (
        f"UPDATE inbound_messages SET {sets} WHERE id = :id AND outcome = 'pending' RETURNING id"
    )
    (written,) = driver_batch(session, [(update, {**facts, "id": row.id})])
    return bool(written)


# --- a message that could not be decided ---------------------------------------------------

# RETRY: the message was left pending, to be tried again (a lock or key race).
RETRY = "pending"
# How often one message may meet a lock, deadlock or unique-key race in this process
# before it is marked failed like any other error.
CONFLICT_TRIES = 3
_strikes: dict[int, int] = {}
_strikes_lock = threading.Lock()


def _undecided(context: ProcessingContext, row: InboundMessage, exc: Exception) -> str:
    """Mark the message failed with its reason, so the ones after it go on.

    The database out of reach is no fault of the message: that is raised (the run stops,
    the job runs again later, the message still pending). A lock or key race is tried
    again, CONFLICT_TRIES times at most.
    """
    kind = failure_kind(exc)
    if kind == "outage":
        raise exc
    if kind == "conflict":
        with _strikes_lock:
            if len(_strikes) > 10_000:
                _strikes.clear()
            tries = _strikes[row.id] = _strikes.get(row.id, 0) + 1
        if tries < CONFLICT_TRIES:
            _log.warning("mail.inbound.retry", id=row.id, error=type(exc).__name__)
            return RETRY
    _strikes.pop(row.id, None)
    reason = _printable(f"processing raised {_describe(exc)} ({_where(exc)})")[:2000]
    _settle(row, "failed", context.clock(), reason)
    row.booking_id = None  # whatever a hook matched was rolled back with the rest
    if not _mark_failed(context, row):  # settled meanwhile by someone else
        return RETRY
    INBOUND.labels(outcome="failed").inc()
    # No exc_info: a rendered traceback may show the frames' locals, settings among them.
    _log.warning("mail.inbound.failed", id=row.id, reason=reason)
    return "failed"


def _mark_failed(context: ProcessingContext, row: InboundMessage) -> bool:
    """Write the failed outcome with the parsed facts, or without them if they fail too."""
    for columns in (_FACTS, ("outcome", "outcome_reason", "processed_at")):
        try:
            with context.sessions.begin() as session:
                return _write_facts(session, row, columns)
        except Exception as exc:
            if failure_kind(exc) == "outage" or columns[0] == "outcome":
                raise
    return False


def failure_kind(exc: BaseException) -> str:
    """ "outage" (the database is out of reach), "conflict" (a lock, deadlock or unique-key
    race, worth another try) or "message" (anything else: the message's own fault)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "outage"
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free
        return "outage"
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(cause, psycopg.Error):
        state = cause.sqlstate or ""
        if state.startswith(("08", "57P")) or (
            not state
            and isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError)
            and not isinstance(cause, psycopg.errors.PipelineAborted)
        ):
            return "outage"
        return "conflict" if state.startswith(("40", "23", "55P03")) else "message"
    if isinstance(cause, sqlite3.Error):
        text = str(cause).lower()
        if isinstance(cause, sqlite3.IntegrityError) or "locked" in text or "busy" in text:
            return "conflict"
        if "unable to open" in text or "disk i/o" in text:
            return "outage"
    return "message"


def _describe(exc: BaseException) -> str:
    """The error's class and first line; for SQLAlchemy's, the driver's own (SQLAlchemy
    appends the statement's parameters, and an outbox row's carry link tokens)."""
    if isinstance(exc, sa_exc.StatementError) and exc.orig is not None:
        exc = exc.orig
    text = str(exc).strip().split("\n", 1)[0]
    return f"{type(exc).__name__}: {text[:300]}"


def _where(exc: BaseException) -> str:
    """file:line in function, of the innermost frame the exception passed through."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{last.filename.rpartition('/')[2]}:{last.lineno} in {last.name}"


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _printable(text: str) -> str:
    """Text without control characters (PostgreSQL refuses NUL in text columns)."""
    return _UNPRINTABLE.sub("\ufffd", text)


# --- deciding ------------------------------------------------------------------------------


def _decide(
    session: Session,
    row: InboundMessage,
    parsed: ParsedMail,
    context: ProcessingContext,
    now: datetime,
) -> None:
    if parsed.outcome is Outcome.UNPARSEABLE:
        _settle(row, "unparseable", now, parsed.error or "unreadable")
    elif parsed.outcome is Outcome.BAD_CALENDAR:
        _settle(row, "unparseable", now, f"calendar part unreadable: {parsed.error}")
    elif parsed.outcome is Outcome.BOUNCE:
        _settle(row, "bounce", now, _mark_undeliverable(session, row.tenant_id, parsed, now))
    elif parsed.outcome is Outcome.AUTO_REPLY:
        _settle(row, "auto_reply", now, parsed.auto_reason)
    elif parsed.outcome is Outcome.ITIP and parsed.itip is not None:
        itip = parsed.itip

        def vouched() -> frozenset[str]:
            return _vouched_addresses(session, row, parsed, context.mailboxes, itip.uid)

        failure = check_sender(row.raw, parsed, parsed.itip, context.auth, context.reader, vouched)
        if failure is not None:
            _settle(row, "unauthenticated", now, failure)
        else:
            apply_itip(session, row, parsed, now, context)
    else:
        invitation = answered_invitation(session, row, parsed, context.mailboxes)
        if invitation is None and not _answer_scheduled(session, row, parsed, now, context):
            _settle(row, "ignored", now, "no calendar data and answers no invitation")
        elif invitation is not None:
            answer_non_itip(session, row, parsed, invitation, now, context)


def _record_facts(row: InboundMessage, parsed: ParsedMail) -> None:
    """The parsed columns, as header text the sender chose: without control characters."""
    row.from_address = _printable(parsed.from_address or "")[:320] or None
    row.subject = _printable(parsed.subject)[:2000] or None
    itip = parsed.itip
    if itip is None:
        return
    event = itip.event
    row.method = _printable(itip.method)[:32]
    row.uid = _printable(event.uid)[:255]
    row.sequence = event.sequence if -(2**31) <= event.sequence < 2**31 else None
    row.dtstamp = event.dtstamp
    attendee = speaking_attendee(itip, parsed.from_address)
    if attendee is not None:
        row.attendee = _printable(attendee.address)[:320]
        row.partstat = _printable(attendee.partstat)[:32]


def _settle(row: InboundMessage, outcome: str, now: datetime, reason: str | None = None) -> None:
    row.outcome = outcome
    # Reasons quote what the sender wrote (a parser's error): no control characters.
    row.outcome_reason = _printable(reason)[:2000] if reason else None
    row.processed_at = now


# --- authenticity --------------------------------------------------------------------------


def _base(address: str | None) -> str | None:
    """local@domain without its plus tag, lower-cased; None for what is not an address."""
    if not address:
        return None
    try:
        local, _, domain = split_plus(address.removeprefix("mailto:").removeprefix("MAILTO:"))
    except BadAddress:
        return None
    return f"{local}@{domain}"


def speaking_attendee(itip: ItipMessage, from_address: str | None) -> Attendee | None:
    """The ATTENDEE the message speaks for: the one matching From, else the only one."""
    attendees = itip.event.attendees
    sender = _base(from_address)
    for attendee in attendees:
        if sender is not None and _base(attendee.address) == sender:
            return attendee
    return attendees[0] if len(attendees) == 1 else None


def check_sender(
    raw: bytes,
    parsed: ParsedMail,
    itip: ItipMessage,
    auth: AuthPolicy,
    reader: MailReader,
    vouched: Callable[[], frozenset[str]] = frozenset,
) -> str | None:
    """None when the message may speak for its iTIP part, else why not.

    vouched: gives the addresses of this booking's (UID's) invitations whose private
    plus-address the message was sent to. An attendee's answer (REPLY, COUNTER, REFRESH)
    must arrive there, since the UID and the attendee's address are in every forwarded
    copy; a reply to that address may come from another account of the same person
    (Apple). With PARLEY_INBOUND_AUTH set, a valid signature of From's domain stands in
    for the private address: the answer may come to the bare organizer address.
    """
    sender = _base(parsed.from_address)
    if sender is None:
        return "no usable From address"
    if itip.method.upper() in ATTENDEE_METHODS:
        speaks = {_base(a.address) for a in itip.event.attendees}
        tagged = vouched()
        if sender not in speaks and not speaks & tagged:
            return f"From {parsed.from_address} is not the attendee of this {itip.method}"
        if auth.mode == "none" and not tagged:
            return (
                f"this {itip.method} did not come to the private address of an invitation to"
                f" UID {itip.uid!r} (and PARLEY_INBOUND_AUTH is none, so From is not proof)"
            )
    elif _base(itip.event.organizer) != sender:
        return f"From {parsed.from_address} is not the organizer of this {itip.method}"
    domain = sender.rpartition("@")[2]
    if auth.mode == "dkim" and not reader.dkim_passes(raw, domain, auth.dnsfunc):
        return f"no valid DKIM signature of {domain}"
    if auth.mode == "authres" and not reader.authres_passes(raw, auth.authserv_id, domain):
        return f"no passing Authentication-Results from {auth.authserv_id} for {domain}"
    return None


# --- bounces and plain answers -------------------------------------------------------------


def _mark_undeliverable(session: Session, tenant_id: str, parsed: ParsedMail, now: datetime) -> str:
    """Mark tenant_id's invitations a bounce names (by Message-ID or recipient); say which."""
    clauses = []
    if parsed.bounced_message_id:
        bare = parsed.bounced_message_id.strip("<>")
        clauses.append(Invitation.last_message_id.in_((bare, f"<{bare}>")))
    recipients = [r.lower() for r in parsed.bounced_recipients]
    if recipients:
        clauses.append(Invitation.address.in_(recipients))
    if not clauses:
        return "bounce names no message or recipient"
    mine = Invitation.tenant_id == tenant_id
    found = list(session.scalars(select(Invitation).where(mine, or_(*clauses))))
    if parsed.bounced_message_id and any(
        i.last_message_id and i.last_message_id.strip("<>") == parsed.bounced_message_id.strip("<>")
        for i in found
    ):
        # The Message-ID pins the exact copy; a bare address may match older bookings too.
        bare = parsed.bounced_message_id.strip("<>")
        found = [i for i in found if (i.last_message_id or "").strip("<>") == bare]
    for invitation in found:
        invitation.delivery_state = "undeliverable"
        invitation.delivery_error = (parsed.text or "bounced")[:1000]
        invitation.updated_at = now
    if not found:
        scheduled = dav_scheduling.mark_undeliverable(
            session, tenant_id, parsed.bounced_message_id, recipients, now
        )
        return scheduled or "bounce matches no invitation"
    return "undeliverable: " + ", ".join(sorted(i.id for i in found))


def answered_invitation(
    session: Session, row: InboundMessage, parsed: ParsedMail, mailboxes: Mailboxes
) -> Invitation | None:
    """The invitation of row's tenant a non-iTIP message answers: by In-Reply-To /
    References or by plus tag."""
    mine = Invitation.tenant_id == row.tenant_id
    # The thread's root (the invitation) is the first reference, the parent the last.
    refs = parsed.references
    ids = list(dict.fromkeys(i for i in (parsed.in_reply_to, *refs[:20], *refs[-20:]) if i))
    if ids:
        wanted = [*ids, *(f"<{i}>" for i in ids)]
        found = session.scalar(
            select(Invitation).where(mine, Invitation.last_message_id.in_(wanted)).limit(1)
        )
        if found is not None:
            return found
    for tag in replies.plus_tags(_recipients(row, parsed), mailboxes, row.tenant_id)[:20]:
        found = session.scalar(select(Invitation).where(mine, Invitation.plus_tag == tag))
        if found is not None:
            return found
    return None


def _vouched_addresses(
    session: Session, row: InboundMessage, parsed: ParsedMail, mailboxes: Mailboxes, uid: str
) -> frozenset[str]:
    """Addresses of the invitations to booking uid (of row's tenant) whose plus-address
    tags this message was sent to (envelope recipient, Delivered-To, To or Cc)."""
    tags = sorted(set(replies.plus_tags(_recipients(row, parsed), mailboxes, row.tenant_id)))[:20]
    if not tags:
        return frozenset()
    names = ", ".join(f":t{i}" for i in range(len(tags)))
    found = driver_rows(
        session,
        "SELECT i.address FROM invitations i JOIN bookings b ON b.id = i.booking_id"
        f" WHERE b.uid = :uid AND b.tenant_id = :tenant AND i.plus_tag IN ({names})",
        {"uid": uid, "tenant": row.tenant_id, **{f"t{i}": tag for i, tag in enumerate(tags)}},
    )
    if not found:  # an answer to an event a provider scheduled from its calendar app
        return dav_scheduling.vouched(session, row.tenant_id, uid, tags)
    return frozenset(address.lower() for (address,) in found)


# --- hooks for the negotiation layer -------------------------------------------------------


def apply_itip(
    session: Session,
    message_row: InboundMessage,
    parsed: ParsedMail,
    now: datetime,
    context: ProcessingContext,
) -> None:
    """Act on an authenticated iTIP message (REPLY, COUNTER, REFRESH, …) in this transaction.

    Without an actor (the bare mail layer) the message is only marked ready ("itip").
    """
    if context.actor is None or context.actor.mailer is None or parsed.itip is None:
        _settle(message_row, "itip", now)
        return
    decision = replies.apply_itip(
        session,
        context.actor.mailer,
        message_row,
        parsed.itip,
        recipients=_recipients(message_row, parsed),
        policy=context.settings.decline_policy,
        now=now,
        actor=context.actor,
    )
    message_row.booking_id = decision.booking_id
    outcome = "itip" if decision.outcome == "applied" else "ignored"
    _settle(message_row, outcome, now, decision.reason)


def answer_non_itip(
    session: Session,
    message_row: InboundMessage,
    parsed: ParsedMail,
    invitation: Invitation,
    now: datetime,
    context: ProcessingContext,
) -> None:
    """Answer a person's plain mail about an invitation with their reschedule link.

    Auto-replies and bounces never reach this hook, so it cannot loop with a responder.
    """
    message_row.booking_id = invitation.booking_id
    if context.actor is None or context.actor.mailer is None:
        _settle(message_row, "plain_reply", now, f"answers invitation {invitation.id}")
        return
    decision = replies.answer_plain_mail(
        session,
        context.actor.mailer,
        message_row,
        invitation,
        subject=parsed.subject,
        in_reply_to=parsed.message_id,
        now=now,
        limit_per_day=context.settings.auto_reply_limit_per_day,
    )
    _settle(message_row, "plain_reply", now, decision.reason)


def _answer_scheduled(
    session: Session,
    message_row: InboundMessage,
    parsed: ParsedMail,
    now: datetime,
    context: ProcessingContext,
) -> bool:
    """Plain mail to the tagged address of an event a provider scheduled over CalDAV: the
    attendee's "request a new time" link in answer, as for bookings; False if it is none."""
    tags = replies.plus_tags(
        _recipients(message_row, parsed), context.mailboxes, message_row.tenant_id
    )
    if not tags:
        return False
    mailer = context.actor.mailer if context.actor is not None else None
    reason = dav_scheduling.answer_plain_mail(
        session, mailer, message_row, tags[:20], subject=parsed.subject, now=now,
        limit_per_day=context.settings.auto_reply_limit_per_day,
    )  # fmt: skip
    if reason is None:
        return False
    _settle(message_row, "plain_reply", now, reason)
    return True


def _recipients(row: InboundMessage, parsed: ParsedMail) -> tuple[str, ...]:
    envelope = tuple(a for a in (row.envelope_to or "").split(",") if a)
    return (*envelope, *parsed.delivered_to, *parsed.to_addresses, *parsed.cc_addresses)
