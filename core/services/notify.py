"""What Parley tells people by mail, written to the outbox in the caller's transaction.

Each attendee gets a private single-attendee iMIP message (only their own address in it,
the other party by name only); notices (approval requests, courtesy notes, auto-replies)
carry signed single-use links. Sends are keyed by (uid, sequence, attendee, method), so a
repeated call never mails twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import tokens
from core.db.models import (
    DEFAULT_TENANT,
    Booking,
    Invitation,
    MagicLink,
    OutboundMessage,
    Provider,
    new_id,
)
from core.events import record
from core.i18n import translations
from core.imip.compose import (
    ItipKind,
    Mailbox,
    compose_itip,
    compose_notice,
    message_id_for,
)
from core.itip.build import (
    EventSnapshot,
    Recipient,
    build_cancel,
    build_declinecounter,
    build_request,
)
from core.runtime import Runtime
from core.services.mailboxes import Mailboxes, TenantMailbox
from core.services.mailboxes import of_runtime as mailboxes_of
from core.services.outbox import deliver_soon, outbox_row

Change = Literal["invitation", "update", "cancellation"]
_KIND = {
    "invitation": ItipKind.INVITATION,
    "update": ItipKind.UPDATE,
    "cancellation": ItipKind.CANCELLATION,
}


@dataclass(frozen=True)
class Mailer:
    """Who sends each tenant's mail, and the knobs that shape it."""

    mailboxes: Mailboxes
    base_url: str
    secret: bytes
    plus_addressing: bool
    approve_ttl: timedelta
    # How long a request to book waits for the host (PARLEY_BOOKING_REQUEST_TTL_MINUTES).
    request_ttl: timedelta = timedelta(minutes=2880)

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> Mailer:
        settings = runtime.settings
        return cls(
            mailboxes=mailboxes_of(runtime),
            base_url=settings.effective_base_url,
            secret=runtime.secrets.secret_key,
            plus_addressing=settings.plus_addressing,
            approve_ttl=timedelta(hours=settings.proposal_ttl_hours),
            request_ttl=timedelta(minutes=settings.booking_request_ttl_minutes),
        )

    def organizer(self, tenant_id: str) -> TenantMailbox:
        return self.mailboxes.of(tenant_id)

    def organizer_for(self, invitation: Invitation) -> str:
        """The address an invitation's mail comes from: its tenant's, tagged for it."""
        address = self.organizer(invitation.tenant_id).address
        if not self.plus_addressing:
            return address
        return tokens.plus_address(address, invitation.plus_tag)

    def sender(self, tenant_id: str) -> Mailbox:
        box = self.organizer(tenant_id)
        return Mailbox(box.address, box.name)

    def site(self, tenant_id: str) -> str:
        """Where tenant_id's pages are: its own host (with this deployment's scheme) when
        it has one, else PARLEY_BASE_URL."""
        host = self.organizer(tenant_id).host  # the default tenant's has none
        if host is None:
            return self.base_url
        return f"{self.base_url.partition('://')[0]}://{host}"

    def url(self, path: str, token: str, tenant_id: str) -> str:
        return f"{self.site(tenant_id)}{path}{quote(token, safe='')}"


def issue_link(
    session: Session,
    mailer: Mailer,
    *,
    purpose: str,
    booking: Booking,
    role: str,
    address: str,
    expires_at: datetime,
    now: datetime,
    proposal_id: str | None = None,
) -> str:
    """A signed single-use token, stored only as its hash."""
    token, link = new_link(
        mailer, purpose=purpose, booking=booking, role=role, address=address,
        expires_at=expires_at, now=now, proposal_id=proposal_id,
    )  # fmt: skip
    session.add(link)
    return token


def new_link(
    mailer: Mailer,
    *,
    purpose: str,
    booking: Booking,
    role: str,
    address: str,
    expires_at: datetime,
    now: datetime,
    proposal_id: str | None = None,
) -> tuple[str, MagicLink]:
    """``issue_link``'s token and the row to store for it, not yet in any session."""
    token = tokens.issue(
        mailer.secret,
        booking_id=booking.id,
        role=role,
        address=address,
        purpose=purpose,
        expires_at=expires_at,
        nonce=secrets.token_bytes(16),
    )
    link = MagicLink(
        id=new_id("lnk"),
        tenant_id=booking.tenant_id,
        token_hash=tokens.token_hash(token),
        purpose=purpose,
        booking_id=booking.id,
        proposal_id=proposal_id,
        provider_id=booking.provider_id,
        actor_address=address,
        actor_role=role,
        created_at=now,
        expires_at=expires_at,
    )
    return token, link


def reschedule_link(
    session: Session, mailer: Mailer, booking: Booking, invitation: Invitation, now: datetime
) -> str:
    """The attendee's own "Request a new time" URL, valid until the booking ends."""
    expires = max(booking.end_at, now + timedelta(hours=1))
    token = issue_link(
        session,
        mailer,
        purpose="propose",
        booking=booking,
        role=invitation.role,
        address=invitation.address,
        expires_at=expires,
        now=now,
    )
    return mailer.url("/reschedule?r=", token, booking.tenant_id)


MANAGE = "manage"


def manage_token(
    session: Session, mailer: Mailer, booking: Booking, invitation: Invitation, now: datetime
) -> str:
    """A new token for the attendee's own booking page (/booking?m=…), reusable until a
    day after the booking ends (core.services.manage)."""
    expires = max(booking.end_at + timedelta(days=1), now + timedelta(hours=1))
    return issue_link(
        session, mailer, purpose=MANAGE, booking=booking, role=invitation.role,
        address=invitation.address, expires_at=expires, now=now,
    )  # fmt: skip


def invitations_of(session: Session, booking: Booking) -> list[Invitation]:
    query = select(Invitation).where(Invitation.booking_id == booking.id).order_by(Invitation.role)
    return list(session.scalars(query))


def _zone(session: Session, booking: Booking, invitation: Invitation) -> str | None:
    def provider_zone() -> str | None:
        provider = session.get(Provider, booking.provider_id)
        return provider.timezone if provider else None

    return attendee_zone(booking, invitation, provider_zone)


def provider_locale(session: Session, booking: Booking) -> str | None:
    """The language the booking's provider chose for their mails."""
    provider = session.get(Provider, booking.provider_id)
    return provider.locale if provider else None


def _locale(session: Session, booking: Booking, invitation: Invitation) -> str | None:
    return attendee_locale(booking, invitation, lambda: provider_locale(session, booking))


def attendee_locale(
    booking: Booking, invitation: Invitation, provider_locale: Callable[[], str | None]
) -> str | None:
    """The language of an attendee's mail: the host's provider's choice (asked only
    then), the guest's from the booking (the page's language when they booked)."""
    if invitation.role == "host":
        return provider_locale()
    return booking.guest_locale


def link_zone(session: Session, token: str, booking_id: str) -> str | None:
    """The zone a link's page shows times in, also for a link that can no longer be used
    (expired, used, superseded): its holder's, else the provider's."""
    booking = session.get(Booking, booking_id)
    if booking is None:
        return None
    query = select(MagicLink.actor_role).where(
        MagicLink.tenant_id == booking.tenant_id,
        MagicLink.token_hash == tokens.token_hash(token),
        MagicLink.booking_id == booking.id,
    )
    role = session.scalar(query)
    invitation = next((i for i in invitations_of(session, booking) if i.role == role), None)
    found = _zone(session, booking, invitation) if invitation else None
    provider = session.get(Provider, booking.provider_id)
    return found or (provider.timezone if provider else None)


def attendee_zone(
    booking: Booking, invitation: Invitation, provider_zone: Callable[[], str | None]
) -> str | None:
    """The zone an attendee's mail shows times in: their own, else the host's provider's
    (asked only then) or the guest's from the booking."""
    if invitation.timezone:
        return invitation.timezone
    if invitation.role == "host":
        return provider_zone()
    return booking.guest_timezone


def itip_key(booking: Booking, invitation: Invitation, method: str) -> str:
    """The outbox key of an iTIP message: sent at most once per (UID, SEQUENCE, attendee,
    method)."""
    return f"{booking.uid}:{booking.sequence}:{invitation.address}:{method}"


def other_name(booking: Booking, invitation: Invitation) -> str:
    """Whom the attendee meets, as their mails and pages name them."""
    if invitation.role == "host":
        return booking.guest_name or "your guest"
    return booking.host_name or "your host"


def _description(booking: Booking, invitation: Invitation, locale: str | None = None) -> str:
    """Whom the attendee meets (in their language), then what the meeting type says."""
    words = translations(locale).gettext("%(title)s with %(name)s")
    said = words % {"title": booking.title, "name": other_name(booking, invitation)} + "."
    return f"{said}\n\n{booking.description}" if booking.description else said


def _snapshot(
    mailer: Mailer, booking: Booking, invitation: Invitation, locale: str | None = None
) -> EventSnapshot:
    status = {"requested": "TENTATIVE", "cancelled": "CANCELLED"}.get(booking.status, "CONFIRMED")
    return EventSnapshot(
        uid=booking.uid,
        sequence=booking.sequence,
        start_utc=booking.start_at,
        end_utc=booking.end_at,
        summary=booking.title,
        description=_description(booking, invitation, locale),
        location=booking.location or "",
        organizer_address=mailer.organizer_for(invitation),
        organizer_name=mailer.organizer(booking.tenant_id).name,
        status=status,  # type: ignore[arg-type]
    )


def _already_sent(session: Session, tenant_id: str, key: str) -> bool:
    return key in _sent_keys(session, tenant_id, [key])


def _sent_keys(session: Session, tenant_id: str, keys: list[str]) -> set[str]:
    """Which of keys are in tenant_id's outbox already (one query for all of them, on the
    (tenant_id, idempotency_key) unique index: without the tenant it would scan the table)."""
    if not keys:
        return set()
    query = select(OutboundMessage.idempotency_key).where(
        OutboundMessage.tenant_id == tenant_id, OutboundMessage.idempotency_key.in_(keys)
    )
    return set(session.scalars(query))


def send_itip(
    session: Session,
    mailer: Mailer,
    booking: Booking,
    change: Change,
    now: datetime,
    *,
    among: Sequence[Invitation] | None = None,
    refresh_of: str | None = None,
) -> int:
    """Queue the change for each attendee (or only those among); returns how many were queued."""
    targets = [
        invitation
        for invitation in (among if among is not None else invitations_of(session, booking))
        if invitation.delivery_state != "undeliverable" or change == "cancellation"
    ]
    method = method_of(change)
    keys = [
        f"refresh:{refresh_of}:{invitation.address}"
        if refresh_of is not None
        else itip_key(booking, invitation, method)
        for invitation in targets
    ]
    sent = _sent_keys(session, booking.tenant_id, keys)
    queued = 0
    for invitation, key in zip(targets, keys, strict=True):
        if key not in sent:
            _send_one(session, mailer, booking, invitation, change, now, key, refresh_of)
            queued += 1
    return queued


def _send_one(
    session: Session,
    mailer: Mailer,
    booking: Booking,
    invitation: Invitation,
    change: Change,
    now: datetime,
    key: str,
    refresh_of: str | None,
) -> None:
    link = (
        None
        if change == "cancellation"
        else reschedule_link(session, mailer, booking, invitation, now)
    )
    manage = None
    if change != "cancellation" and invitation.role == "guest":
        manage = mailer.url(
            "/booking?m=",
            manage_token(session, mailer, booking, invitation, now),
            booking.tenant_id,
        )
    zone = _zone(session, booking, invitation)
    row = itip_row(
        mailer, booking, invitation, change, now, key=key, zone_name=zone,
        reschedule_url=link, plain_key=refresh_of is None, manage_url=manage,
        locale=_locale(session, booking, invitation),
    )  # fmt: skip
    session.add(row)  # the key was looked up by send_itip
    deliver_soon(session, now)
    mark_sent(invitation, booking, change, row.message_id, now)
    record("imip.out", method=method_of(change), booking_id=booking.id, role=invitation.role)


def method_of(change: Change) -> str:
    """The iTIP method that carries a change."""
    return "CANCEL" if change == "cancellation" else "REQUEST"


def itip_row(
    mailer: Mailer,
    booking: Booking,
    invitation: Invitation,
    change: Change,
    now: datetime,
    *,
    key: str,
    zone_name: str | None,
    reschedule_url: str | None,
    plain_key: bool = True,
    manage_url: str | None = None,
    locale: str | None = None,
) -> OutboundMessage:
    """The outbox row of one change for one attendee: its private iMIP message, composed,
    not yet in any session.

    Reads only the booking's and invitation's own columns, so callers may pass rows that
    are not in a session. plain_key: keyed by (UID, SEQUENCE, attendee, method); False
    for a re-sent copy (REFRESH), whose key names the request instead.
    """
    method = method_of(change)
    event = _snapshot(mailer, booking, invitation, locale)
    recipient = Recipient(invitation.address, invitation.name or "")
    if change == "cancellation":
        ics = build_cancel(event, recipient, dtstamp=now)
    else:
        label = translations(locale).gettext("Request a new time")
        ics = build_request(
            event, recipient, dtstamp=now, reschedule_url=reschedule_url, reschedule_label=label
        )
    message_id = message_id_for(key, mailer.organizer(booking.tenant_id).domain)
    message = compose_itip(
        kind=_KIND[change], ics=ics, event=event,
        recipient=Mailbox(invitation.address, invitation.name or ""), message_id=message_id,
        date=now, zone_name=zone_name, reschedule_url=reschedule_url, manage_url=manage_url,
        sender=Mailbox(event.organizer_address, event.organizer_name),
        reason=booking.cancel_reason if change == "cancellation" else None, locale=locale,
        other_name=booking.guest_name if invitation.role == "host" else booking.host_name,
    )  # fmt: skip
    return outbox_row(
        idempotency_key=key, kind=f"itip.{change}", uid=booking.uid if plain_key else None,
        sequence=booking.sequence if plain_key else None,
        attendee=invitation.address if plain_key else None, method=method if plain_key else None,
        booking_id=booking.id, recipient=invitation.address, message=message,
        message_id=message_id, now=now, tenant_id=booking.tenant_id,
    )  # fmt: skip


def mark_sent(
    invitation: Invitation, booking: Booking, change: Change, message_id: str, now: datetime
) -> None:
    """Remember on the invitation what it was last sent (in a session or not: the REPLY
    fast path writes the same columns itself)."""
    invitation.last_method_sent = method_of(change)
    invitation.last_sequence_sent = booking.sequence
    invitation.last_message_id = message_id
    invitation.updated_at = now


def send_declinecounter(
    session: Session,
    mailer: Mailer,
    booking: Booking,
    invitation: Invitation,
    now: datetime,
    *,
    proposal_id: str,
    comment: str = "",
) -> None:
    """RFC 5546 DECLINECOUNTER to the attendee whose COUNTER was refused."""
    key = f"declinecounter:{proposal_id}:{invitation.address}"
    if _already_sent(session, booking.tenant_id, key):
        return
    event = _snapshot(mailer, booking, invitation, _locale(session, booking, invitation))
    recipient = Recipient(invitation.address, invitation.name or "", partstat="NEEDS-ACTION")
    ics = build_declinecounter(event, recipient, dtstamp=now, comment=comment)
    message_id = message_id_for(key, mailer.organizer(booking.tenant_id).domain)
    message = compose_itip(
        kind=ItipKind.DECLINE_COUNTER,
        ics=ics,
        event=event,
        recipient=Mailbox(invitation.address, invitation.name or ""),
        message_id=message_id,
        date=now,
        zone_name=_zone(session, booking, invitation),
        sender=Mailbox(event.organizer_address, event.organizer_name),
        locale=_locale(session, booking, invitation),
    )
    session.add(
        outbox_row(
            idempotency_key=key, kind="itip.declinecounter", uid=None, sequence=None,
            attendee=None, method=None, booking_id=booking.id, recipient=invitation.address,
            message=message, message_id=message_id, now=now, tenant_id=booking.tenant_id,
        )
    )  # fmt: skip
    deliver_soon(session, now)
    record("imip.out", method="DECLINECOUNTER", booking_id=booking.id, role=invitation.role)


def send_notice(
    session: Session,
    mailer: Mailer,
    *,
    template: str,
    key: str,
    booking: Booking | None,
    to: Mailbox,
    context: dict[str, Any],
    now: datetime,
    zone_name: str | None = None,
    in_reply_to: str | None = None,
    tenant_id: str | None = None,
    locale: str | None = None,
) -> bool:
    """Queue a notice (no calendar) once per key; False when it was queued before."""
    owner = booking.tenant_id if booking else (tenant_id or DEFAULT_TENANT)
    if _already_sent(session, owner, key):
        return False
    session.add(
        notice_row(
            mailer, template=template, key=key, booking=booking, to=to, context=context,
            now=now, zone_name=zone_name, in_reply_to=in_reply_to, tenant_id=tenant_id,
            locale=locale,
        )
    )  # fmt: skip
    deliver_soon(session, now)
    return True


def notice_row(
    mailer: Mailer,
    *,
    template: str,
    key: str,
    booking: Booking | None,
    to: Mailbox,
    context: dict[str, Any],
    now: datetime,
    zone_name: str | None = None,
    in_reply_to: str | None = None,
    tenant_id: str | None = None,
    locale: str | None = None,
) -> OutboundMessage:
    """The outbox row of a notice, composed, not yet in any session (``send_notice``).

    tenant_id: whose mail it is, when there is no booking (a sign-in link)."""
    owner = booking.tenant_id if booking else (tenant_id or DEFAULT_TENANT)
    sender = mailer.sender(owner)
    message_id = message_id_for(key, sender.address.rpartition("@")[2])
    message = compose_notice(
        template=template,
        context={"organizer_name": sender.name, **context},
        sender=sender,
        recipient=to,
        message_id=message_id,
        date=now,
        zone_name=zone_name,
        in_reply_to=in_reply_to,
        locale=locale,
    )
    return outbox_row(
        idempotency_key=key, kind=f"notice.{template}", uid=None, sequence=None,
        attendee=None, method=None, booking_id=booking.id if booking else None,
        recipient=to.address, message=message, message_id=message_id, now=now, tenant_id=owner,
    )  # fmt: skip


def host_invitation(session: Session, booking: Booking) -> Invitation | None:
    return next((i for i in invitations_of(session, booking) if i.role == "host"), None)


def request_expiry(mailer: Mailer, booking: Booking, requested_at: datetime) -> datetime:
    """When an unanswered request to book lapses: after the request TTL, at the latest
    at its start (and never sooner than an hour after it was asked)."""
    latest = max(booking.start_at, requested_at + timedelta(hours=1))
    return min(requested_at + mailer.request_ttl, latest)


def send_booking_request(session: Session, mailer: Mailer, booking: Booking, now: datetime) -> None:
    """Ask the provider (host) to approve or decline a request-to-book."""
    host = host_invitation(session, booking)
    if host is None:
        return
    expires = request_expiry(mailer, booking, now)
    links = {
        f"{verb}_url": mailer.url(
            f"/{verb}?t=",
            issue_link(
                session,
                mailer,
                purpose=f"{verb}_booking",
                booking=booking,
                role="host",
                address=host.address,
                expires_at=expires,
                now=now,
            ),
            booking.tenant_id,
        )
        for verb in ("approve", "decline")
    }
    provider = session.get(Provider, booking.provider_id)
    send_notice(
        session,
        mailer,
        template="booking_request",
        key=f"booking-request:{booking.id}:{booking.sequence}",
        booking=booking,
        to=Mailbox(host.address, host.name or ""),
        context={
            "title": booking.title,
            "start": booking.start_at,
            "end": booking.end_at,
            "guest_label": booking.guest_name or "A guest",
            "expires_at": expires,
            **links,
        },
        now=now,
        zone_name=provider.timezone if provider else None,
        locale=provider.locale if provider else None,
    )


def _guest_notice(
    session: Session,
    mailer: Mailer,
    booking: Booking,
    template: str,
    now: datetime,
    **context: Any,
) -> None:
    """A notice to the booking's guest about their request (once per booking and SEQUENCE)."""
    guest = next((i for i in invitations_of(session, booking) if i.role == "guest"), None)
    if guest is None:
        return
    send_notice(
        session, mailer, template=template, key=f"{template}:{booking.id}:{booking.sequence}",
        booking=booking, to=Mailbox(guest.address, guest.name or ""),
        context={"title": booking.title, "start": booking.start_at, "end": booking.end_at,
                 "host_label": booking.host_name or "your host", "recipient_name": guest.name,
                 **context},
        now=now, zone_name=attendee_zone(booking, guest, lambda: None),
        locale=booking.guest_locale,
    )  # fmt: skip


def send_request_received(
    session: Session, mailer: Mailer, booking: Booking, now: datetime, *, expires_at: datetime
) -> None:
    """Tell a request-to-book guest at once that the request went out, and until when."""
    guest = next((i for i in invitations_of(session, booking) if i.role == "guest"), None)
    if guest is None:
        return
    manage = mailer.url(
        "/booking?m=", manage_token(session, mailer, booking, guest, now), booking.tenant_id
    )
    _guest_notice(
        session, mailer, booking, "request_received", now, manage_url=manage, expires_at=expires_at
    )


def send_request_declined(
    session: Session, mailer: Mailer, booking: Booking, now: datetime, *, book_url: str | None
) -> None:
    """Tell a request-to-book guest that the request was not confirmed, and why."""
    reason = booking.cancel_reason or "the host could not confirm it"
    _guest_notice(
        session, mailer, booking, "request_declined", now, reason=reason, book_url=book_url
    )


def send_request_lapsed(session: Session, mailer: Mailer, booking: Booking, now: datetime) -> None:
    """Tell the host that a request to book lapsed unanswered (the guest was told too)."""
    host = host_invitation(session, booking)
    if host is None:
        return
    provider = session.get(Provider, booking.provider_id)
    send_notice(
        session, mailer, template="request_lapsed", key=f"request_lapsed:{booking.id}",
        booking=booking, to=Mailbox(host.address, host.name or ""),
        context={"title": booking.title, "start": booking.start_at, "end": booking.end_at,
                 "guest_label": booking.guest_name or "A guest", "recipient_name": host.name},
        now=now, zone_name=provider.timezone if provider else None,
        locale=provider.locale if provider else None,
    )  # fmt: skip
