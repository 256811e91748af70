"""Accounts: password-less sign-in links, browser sessions, and what a provider owns.

Providers (/me) and operators (/admin) sign in through the same machinery. A sign-in
link is a signed token (core.tokens) stored only as its hash in magic_links,
single-use and short-lived. Redeeming it opens a server-side web_sessions row whose random
cookie value is also kept only as a hash, so any session can be revoked. The owned-object
lookups answer ``NotFoundError`` for another provider's ids, exactly as for unknown ones.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core import tokens
from core.db.models import (
    Booking,
    ExternalSource,
    FeedToken,
    Invitation,
    MagicLink,
    Operator,
    Proposal,
    Provider,
    WebSession,
    new_id,
)
from core.errors import TokenError, TokenExpired
from core.events import record
from core.imip.compose import Mailbox
from core.services import bookings as booking_service
from core.services import proposals as proposal_service
from core.services.errors import InvalidInput, NotFoundError, SignInProblem
from core.services.notify import Mailer, issue_link, send_notice
from core.services.providers import check_email

SIGN_IN = "sign_in"
PROVIDER_ROLE = "provider"
OPERATOR_ROLE = "operator"
_TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Account:
    """Whom a sign-in link or a session is for: a provider (/me) or an operator (/admin)."""

    kind: str  # PROVIDER_ROLE or OPERATOR_ROLE
    id: str
    tenant_id: str
    email: str
    name: str
    timezone: str | None = None
    locale: str | None = None

    @classmethod
    def of(cls, row: Provider | Operator) -> Account:
        if isinstance(row, Provider):
            return cls(
                PROVIDER_ROLE, row.id, row.tenant_id, row.email, row.name, row.timezone,
                row.locale,
            )  # fmt: skip
        return cls(OPERATOR_ROLE, row.id, row.tenant_id, row.email, row.email)


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A new browser session: the cookie value is known only here, never stored."""

    cookie: str
    session_id: str
    account: Account
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a valid session cookie belongs to, and the CSRF token of its forms."""

    session_id: str
    provider_id: str
    csrf_token: str


@dataclass(frozen=True, slots=True)
class OperatorViewer:
    """An operator's valid session, and the CSRF token of its forms."""

    session_id: str
    operator_id: str
    csrf_token: str


# --- sign-in links ---------------------------------------------------------------------------


def request_sign_in(
    session: Session, mailer: Mailer, address: str, *, now: datetime, ttl: timedelta
) -> int:
    """Mail a sign-in link to each provider with this address; returns how many were sent.

    The caller shows the same answer whatever the count, so nobody can probe addresses.
    """
    address = check_email(address)
    found = session.scalars(
        select(Provider)
        .where(func.lower(Provider.email) == address.lower())
        .order_by(Provider.created_at)
        .limit(5)
    ).all()
    for provider in found:
        send_sign_in_link(session, mailer, Account.of(provider), "/me/link?t=", now=now, ttl=ttl)
    record("web.sign_in.requested", sent=len(found))
    return len(found)


def send_sign_in_link(
    session: Session,
    mailer: Mailer,
    account: Account,
    path: str,
    *,
    now: datetime,
    ttl: timedelta,
) -> None:
    """Issue a single-use sign-in link for ``account`` and queue the mail that carries it."""
    link_id, token = _issue_sign_in(session, mailer, account, now=now, ttl=ttl)
    send_notice(
        session,
        mailer,
        template="sign_in_link",
        key=f"sign-in:{link_id}",
        booking=None,
        to=Mailbox(account.email, account.name),
        context={
            "recipient_name": account.name if account.kind == PROVIDER_ROLE else None,
            "link_url": mailer.url(path, token, account.tenant_id),
            "expires_at": now + ttl,
        },
        now=now,
        zone_name=account.timezone,
        tenant_id=account.tenant_id,
        locale=account.locale,
    )


def _issue_sign_in(
    session: Session, mailer: Mailer, account: Account, *, now: datetime, ttl: timedelta
) -> tuple[str, str]:
    token = tokens.issue(
        mailer.secret,
        booking_id=account.id,  # the token's subject field: here the provider or operator
        role=account.kind,
        address=account.email,
        purpose=SIGN_IN,
        expires_at=now + ttl,
        nonce=secrets.token_bytes(16),
    )
    link = MagicLink(
        id=new_id("lnk"),
        tenant_id=account.tenant_id,
        token_hash=tokens.token_hash(token),
        purpose=SIGN_IN,
        booking_id=None,
        provider_id=account.id if account.kind == PROVIDER_ROLE else None,
        operator_id=account.id if account.kind == OPERATOR_ROLE else None,
        actor_address=account.email,
        actor_role=account.kind,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(link)
    session.flush()
    return link.id, token


def check_sign_in_link(session: Session, secret: bytes, token: str, *, now: datetime) -> Provider:
    """The provider a still usable sign-in link is for (nothing is changed)."""
    account = check_link(session, secret, token, kind=PROVIDER_ROLE, now=now)
    provider = session.get(Provider, account.id)
    if provider is None:
        raise SignInProblem("invalid", "This sign-in link is not valid.")
    return provider


def check_link(session: Session, secret: bytes, token: str, *, kind: str, now: datetime) -> Account:
    """The account of ``kind`` a still usable sign-in link is for (nothing is changed)."""
    return _verified(session, secret, token, kind=kind, now=now, lock=False)[1]


def _account(session: Session, link: MagicLink | None, kind: str) -> Account | None:
    if link is None:
        return None
    if kind == PROVIDER_ROLE and link.provider_id:
        provider = session.get(Provider, link.provider_id)
        return Account.of(provider) if provider else None
    if kind == OPERATOR_ROLE and link.operator_id:
        operator = session.get(Operator, link.operator_id)
        return Account.of(operator) if operator else None
    return None


def _verified(
    session: Session, secret: bytes, token: str, *, kind: str, now: datetime, lock: bool
) -> tuple[MagicLink, Account]:
    query = select(MagicLink).where(
        MagicLink.token_hash == tokens.token_hash(token), MagicLink.purpose == SIGN_IN
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    link = session.scalar(query) if token else None
    account = _account(session, link, kind)
    if link is None or account is None:
        raise SignInProblem("invalid", "This sign-in link is not valid.")
    try:
        claims = tokens.verify(secret, token, now=now, purpose=SIGN_IN)
    except TokenExpired:
        raise SignInProblem("expired", "This sign-in link has expired.") from None
    except TokenError:
        raise SignInProblem("invalid", "This sign-in link is not valid.") from None
    if (
        claims.booking_id != account.id
        or claims.role != kind
        or not tokens.claims_match_address(secret, claims, link.actor_address)
    ):
        raise SignInProblem("invalid", "This sign-in link is not valid.")
    if link.used_at is not None:
        raise SignInProblem("used", "This sign-in link has already been used.")
    return link, account


def redeem_sign_in(
    session: Session, secret: bytes, token: str, *, now: datetime, lifetime: timedelta
) -> OpenedSession:
    """Use up a provider's sign-in link and open a session for the provider."""
    return redeem_link(session, secret, token, kind=PROVIDER_ROLE, now=now, lifetime=lifetime)


def redeem_link(
    session: Session,
    secret: bytes,
    token: str,
    *,
    kind: str,
    now: datetime,
    lifetime: timedelta,
) -> OpenedSession:
    """Use up a sign-in link for an account of ``kind`` and open a session for it."""
    link, account = _verified(session, secret, token, kind=kind, now=now, lock=True)
    # Guarded update: of two concurrent redemptions only one sees its row change.
    used = session.execute(
        update(MagicLink)
        .where(MagicLink.id == link.id, MagicLink.used_at.is_(None))
        .values(used_at=now)
    )
    if getattr(used, "rowcount", 1) != 1:
        raise SignInProblem("used", "This sign-in link has already been used.")
    cookie = tokens.random_token()
    row = WebSession(
        id=new_id("wss"),
        tenant_id=account.tenant_id,
        provider_id=account.id if kind == PROVIDER_ROLE else None,
        operator_id=account.id if kind == OPERATOR_ROLE else None,
        token_hash=tokens.token_hash(cookie),
        csrf_secret=secrets.token_hex(32),
        created_at=now,
        expires_at=now + lifetime,
        last_seen_at=now,
    )
    session.add(row)
    session.flush()
    record("web.session.opened", **{f"{kind}_id": account.id})
    return OpenedSession(cookie, row.id, account, row.expires_at)


# --- sessions --------------------------------------------------------------------------------


def _live(session: Session, cookie: str, now: datetime) -> WebSession | None:
    if not cookie or len(cookie) > 200:
        return None
    query = select(WebSession).where(WebSession.token_hash == tokens.token_hash(cookie))
    row = session.scalar(query)
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    return row


def live_session(session: Session, cookie: str, *, kind: str, now: datetime) -> WebSession | None:
    """The live session of an account of ``kind`` a cookie opens (its last use noted), or None."""
    row = _live(session, cookie, now)
    subject = None if row is None else (row.provider_id, row.operator_id)[kind == OPERATOR_ROLE]
    if row is None or subject is None:
        return None
    if row.last_seen_at is None or now - row.last_seen_at >= _TOUCH_EVERY:
        row.last_seen_at = now
    return row


def signed_in(session: Session, cookie: str, *, now: datetime) -> tuple[Viewer, Provider] | None:
    """The live session a cookie opens and its provider, or None (unknown, expired, gone)."""
    viewer = open_session(session, cookie, now=now)
    provider = session.get(Provider, viewer.provider_id) if viewer else None
    if viewer is None or provider is None:
        return None
    return viewer, provider


def open_session(session: Session, cookie: str, *, now: datetime) -> Viewer | None:
    """The provider behind a session cookie, or None when it is unknown, expired or revoked."""
    row = live_session(session, cookie, kind=PROVIDER_ROLE, now=now)
    if row is None or row.provider_id is None:
        return None
    return Viewer(row.id, row.provider_id, row.csrf_secret)


def csrf_ok(viewer: Viewer | OperatorViewer, presented: str) -> bool:
    """True when a form's CSRF token is the one bound to this session (constant time)."""
    return bool(presented) and hmac.compare_digest(viewer.csrf_token, presented)


def sign_out(session: Session, cookie: str, *, now: datetime) -> None:
    """Revoke the session behind this cookie (nothing happens for an unknown cookie)."""
    row = _live(session, cookie, now)
    if row is not None:
        row.revoked_at = now


def list_sessions(session: Session, provider_id: str, *, now: datetime) -> list[WebSession]:
    """The provider's sessions that are neither revoked nor expired, newest first."""
    query = (
        select(WebSession)
        .where(
            WebSession.provider_id == provider_id,
            WebSession.revoked_at.is_(None),
            WebSession.expires_at > now,
        )
        .order_by(WebSession.created_at.desc())
    )
    return list(session.scalars(query))


def revoke_session(session: Session, provider_id: str, session_id: str, *, now: datetime) -> None:
    """Revoke one of the provider's sessions; another provider's id is ``NotFoundError``."""
    row = session.get(WebSession, session_id)
    if row is None or row.provider_id != provider_id:
        raise NotFoundError("session", session_id)
    if row.revoked_at is None:
        row.revoked_at = now
        record("web.session.revoked", provider_id=provider_id)


# --- what the account owns ---------------------------------------------------------------------


def owned_booking(session: Session, provider_id: str, booking_id: str) -> Booking:
    """The provider's booking; another provider's booking is indistinguishable from none."""
    booking = session.get(Booking, booking_id)
    if booking is None or booking.provider_id != provider_id:
        raise NotFoundError("booking", booking_id)
    return booking


def owned_source(session: Session, provider_id: str, source_id: str) -> ExternalSource:
    """The provider's external source, else ``NotFoundError``."""
    source = session.get(ExternalSource, source_id)
    if source is None or source.provider_id != provider_id:
        raise NotFoundError("source", source_id)
    return source


def list_bookings(
    session: Session, provider_id: str, *, now: datetime, past: bool, limit: int = 100
) -> list[Booking]:
    """Upcoming bookings (not yet ended, soonest first) or past ones (latest first)."""
    query = select(Booking).where(Booking.provider_id == provider_id)
    if past:
        query = query.where(Booking.end_at <= now).order_by(Booking.start_at.desc())
    else:
        query = query.where(Booking.end_at > now).order_by(Booking.start_at)
    return list(session.scalars(query.limit(limit)))


def pending_proposals(session: Session, booking_ids: list[str]) -> dict[str, list[Proposal]]:
    """Pending proposals per booking id, oldest first."""
    if not booking_ids:
        return {}
    rows = session.scalars(
        select(Proposal)
        .where(Proposal.booking_id.in_(booking_ids), Proposal.status == "pending")
        .order_by(Proposal.created_at)
    )
    found: dict[str, list[Proposal]] = {}
    for row in rows:
        found.setdefault(row.booking_id, []).append(row)
    return found


def has_feed(session: Session, provider_id: str) -> FeedToken | None:
    """The provider's live standard feed token row, if one was issued."""
    return session.scalar(
        select(FeedToken).where(
            FeedToken.provider_id == provider_id,
            FeedToken.format == "standard",
            FeedToken.revoked_at.is_(None),
        )
    )


# --- deciding from the provider's pages ----------------------------------------------------------


def decide_request(
    session: Session,
    provider_id: str,
    booking_id: str,
    verb: str,
    actor: booking_service.Actor,
    *,
    now: datetime,
) -> Booking:
    """Approve or decline a request-to-book from the provider's pages."""
    owned_booking(session, provider_id, booking_id)
    return settle_request(session, booking_id, verb, actor, now=now)


def settle_request(
    session: Session, booking_id: str, verb: str, actor: booking_service.Actor, *, now: datetime
) -> Booking:
    """Approve (verb "approve") or decline a request-to-book; its emailed approve and
    decline links die together, whichever way it was decided (page or link)."""
    session.execute(
        update(MagicLink)
        .where(
            MagicLink.booking_id == booking_id,
            MagicLink.purpose.in_(["approve_booking", "decline_booking"]),
            MagicLink.used_at.is_(None),
        )
        .values(used_at=now)
    )
    if verb == "approve":
        return booking_service.approve_booking(session, booking_id, actor, now)
    return booking_service.decline_booking(session, booking_id, actor, now)


def guest_of(session: Session, booking_id: str) -> str:
    """Who a booking is with (the guest's name, else address), or "" for an unknown id."""
    booking = session.get(Booking, booking_id)
    return (booking.guest_name or booking.guest_email) if booking else ""


def decide_proposal(
    session: Session,
    mailer: Mailer,
    provider_id: str,
    proposal_id: str,
    verb: str,
    actor: booking_service.Actor,
    *,
    now: datetime,
) -> Proposal:
    """Approve or decline a guest's proposal through the very code the emailed links run.

    A link for the host is issued in-process and used at once, so every check of the
    link flow (SEQUENCE unchanged, not superseded, sibling links die, proposer told)
    applies unchanged. Raises ``LinkProblem`` when the proposal cannot be decided.
    """
    proposal = session.get(Proposal, proposal_id)
    booking = session.get(Booking, proposal.booking_id) if proposal else None
    if proposal is None or booking is None or booking.provider_id != provider_id:
        raise NotFoundError("proposal", proposal_id)
    if proposal.proposed_by != "guest":
        raise InvalidInput("only the guest's proposals wait for your answer", code="not_yours")
    host = session.scalar(
        select(Invitation).where(Invitation.booking_id == booking.id, Invitation.role == "host")
    )
    address = host.address if host is not None else booking.host_email
    token = issue_link(
        session,
        mailer,
        purpose=verb,
        booking=booking,
        role="host",
        address=address,
        expires_at=max(proposal.expires_at, now + timedelta(minutes=1)),
        now=now,
        proposal_id=proposal.id,
    )
    if verb == "approve":
        return proposal_service.approve(session, mailer, token, now=now, actor=actor)
    return proposal_service.decline(session, mailer, token, now=now)
