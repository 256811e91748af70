"""Implicit scheduling (RFC 6638) of the events providers organize in their own calendars.

A PUT into blocks or a calendar the provider made, of an event whose ORGANIZER is the
provider and which has ATTENDEEs, is scheduled through the organizer mailbox: one private
REQUEST per attendee (only that attendee in it, ORGANIZER the tenant's organizer at the
attendee's plus tag, the provider's name as CN), SEQUENCE + 1 and a REQUEST to each on a
change that matters to them, CANCEL to attendees removed and to all when the event goes.
Answers that come back (REPLY, COUNTER, REFRESH) are written into the provider's object
(PARTSTAT: a new ETag, the same Schedule-Tag) and delivered into the schedule inbox; a
COUNTER waits for the provider's approve or decline link. All mail goes through the outbox.
"""

from __future__ import annotations

import email
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component, Event, vCalAddress, vText
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core import tokens
from core.db.models import (
    DavAttendee,
    DavCalendar,
    DavObject,
    DavProposal,
    DavSchedule,
    InboundMessage,
    OutboundMessage,
    Provider,
    new_id,
)
from core.errors import TokenError, TokenExpired
from core.events import record
from core.imip.compose import ItipKind, Mailbox, compose_itip, message_id_for
from core.itip.build import PRODID, EventSnapshot, describe
from core.itip.read import ItipMessage, When
from core.logging import get_logger
from core.services import dav
from core.services.errors import LinkProblem
from core.services.notify import Mailer, notice_row
from core.services.outbox import deliver_soon, outbox_row

_log = get_logger("parley.dav.scheduling")

# Calendars whose objects are never scheduled: what the server itself delivers.
_NOT_SCHEDULED = frozenset({dav.INBOX, dav.OUTBOX})
# What an attendee's copy shows and a change of which is an update (RFC 5546 2.1.4).
_SIGNIFICANT = frozenset(
    {"DTSTART", "DTEND", "DURATION", "DUE", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID",
     "SUMMARY", "LOCATION", "DESCRIPTION", "STATUS"}
)  # fmt: skip
# Never copied into an attendee's message: the other attendees, the organizer's own
# address, what the server sets, and the calendar app's private extensions (X-…).
_NOT_COPIED = frozenset(
    {"ATTENDEE", "ORGANIZER", "SEQUENCE", "DTSTAMP", "DESCRIPTION", "STATUS", "METHOD",
     "REQUEST-STATUS", "LAST-MODIFIED", "CREATED"}
)  # fmt: skip
_SERVER_PARAMS = ("SCHEDULE-STATUS", "SCHEDULE-AGENT", "SCHEDULE-FORCE-SEND")
_PARTSTATS = frozenset({"NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"})
_UNFOLD = re.compile(r"\r?\n[ \t]")
# SCHEDULE-STATUS (RFC 6638 3.2.9): 1.1 sent (handed to the outbox), 3.7 invalid address,
# 5.1 could not be delivered (a bounce came back).
SENT, INVALID, UNDELIVERED = "1.1", "3.7", "5.1"
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class Decision:
    """What an inbound answer did (as replies.Decision, without a booking)."""

    outcome: str
    reason: str
    booking_id: str | None = None


@dataclass(frozen=True)
class _Wanted:
    """One attendee as the organizer's PUT names it."""

    address: str
    name: str
    client: bool


# --- reading the organizer's object --------------------------------------------------------


def _address(value: Any) -> str:
    text = str(value or "").strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip().lower()


def _events(calendar: Calendar) -> list[Component]:
    return [c for c in calendar.subcomponents if c.name == "VEVENT"]


def _attendee_props(event: Component) -> list[Any]:
    value = event.get("ATTENDEE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _param(prop: Any, name: str) -> str:
    params = getattr(prop, "params", None) or {}
    return str(params.get(name, "") or "")


def _wanted(events: list[Component], organizer: str) -> dict[str, _Wanted]:
    """The attendees of every component, each once (the organizer listing itself is not one)."""
    found: dict[str, _Wanted] = {}
    for event in events:
        for prop in _attendee_props(event):
            address = _address(prop)
            if not address or address == organizer or address in found:
                continue
            client = _param(prop, "SCHEDULE-AGENT").upper() not in ("", "SERVER")
            found[address] = _Wanted(address, _param(prop, "CN"), client)
    return found


def _organizer(events: list[Component]) -> str:
    return next((_address(e["ORGANIZER"]) for e in events if "ORGANIZER" in e), "")


def content_digest(text: str) -> str:
    """A digest of what attendees see of the event: its times, rules and texts (not who
    attends, not answers, not alarms or stamps)."""
    lines: list[str] = []
    depth: list[str] = []
    for line in _UNFOLD.sub("", text).splitlines():
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name == "BEGIN":
            depth.append(line.split(":", 1)[-1].strip().upper())
        elif name == "END":
            if depth:
                depth.pop()
        elif (depth[-1:] == ["VEVENT"] and name in _SIGNIFICANT) or "VTIMEZONE" in depth:
            lines.append(line)
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def schedule_tag(digest: str, attendees: Iterable[DavAttendee], sequence: int) -> str:
    """The Schedule-Tag (RFC 6638 3.2.10): changes with what the organizer schedules, never
    with an attendee's answer."""
    who = sorted(f"{a.address}:{int(a.client_agent)}" for a in attendees if not a.removed)
    body = "\n".join([digest, str(sequence), *who])
    return hashlib.sha256(body.encode()).hexdigest()[:32]


def _utc(value: When | None, zone: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), zone).astimezone(UTC)
    return None


def _times(event: Component, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    start = _utc(event.decoded("DTSTART", None), zone)
    end = _utc(event.decoded("DTEND", None), zone)
    if end is None and start is not None:
        duration = event.decoded("DURATION", None)
        end = start + duration if isinstance(duration, timedelta) else start + timedelta(hours=1)
    return start, end


def _master(events: list[Component]) -> Component:
    return next((e for e in events if "RECURRENCE-ID" not in e), events[0])


# --- the organizer's PUT and DELETE ---------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    session: Session
    mailer: Mailer
    provider: Provider
    now: datetime

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.provider.timezone or "UTC")
        except (ValueError, KeyError):
            return ZoneInfo("UTC")


def schedules(calendar: DavCalendar) -> bool:
    """Whether PUTs into this calendar are scheduled (the provider's own writable ones)."""
    return calendar.kind in dav.BLOCKING_KINDS and calendar.name not in _NOT_SCHEDULED


def on_put(
    session: Session,
    mailer: Mailer,
    calendar: DavCalendar,
    href: str,
    text: str,
    now: datetime,
) -> str:
    """Schedule the object about to be stored at href; returns the text to store (with
    SEQUENCE and each attendee's SCHEDULE-STATUS), unchanged when it is no scheduling
    object of the provider's."""
    if not schedules(calendar):
        return text
    if "ATTENDEE" not in text.upper() and not _scheduled_at(session, calendar, href):
        return text  # the common plain event: not parsed again
    provider = session.get(Provider, calendar.provider_id)
    try:
        parsed = Calendar.from_ical(text)
    except ValueError:
        return text
    events = _events(parsed)
    uid = str(events[0].get("UID", "")) if events else ""
    schedule = _schedule_for(session, calendar, href, uid)
    organizer = _organizer(events) if events else ""
    if provider is None:
        return text
    if not events or organizer != provider.email.strip().lower():
        if schedule is not None and not schedule.cancelled:  # no longer the provider's to schedule
            _cancel_all(_Context(session, mailer, provider, now), schedule, parsed)
        return text
    wanted = _wanted(events, organizer)
    if not wanted and schedule is None:
        return text
    ctx = _Context(session, mailer, provider, now)
    return _schedule(ctx, calendar, href, parsed, events, wanted, schedule, text)


def _scheduled_at(session: Session, calendar: DavCalendar, href: str) -> bool:
    query = select(DavSchedule.id).where(
        DavSchedule.calendar_id == calendar.id,
        DavSchedule.href == href,
        DavSchedule.tenant_id == calendar.tenant_id,
    )
    return session.scalar(query) is not None


def _schedule_for(
    session: Session, calendar: DavCalendar, href: str, uid: str
) -> DavSchedule | None:
    """The schedule of the object at href, else the provider's schedule of uid (an event
    moved between calendars or hrefs), in one query."""
    query = select(DavSchedule).where(
        DavSchedule.tenant_id == calendar.tenant_id,
        or_(
            (DavSchedule.calendar_id == calendar.id) & (DavSchedule.href == href),
            (DavSchedule.provider_id == calendar.provider_id) & (DavSchedule.uid == uid),
        ),
    )
    found = list(session.scalars(query))
    at_href = [f for f in found if f.calendar_id == calendar.id and f.href == href]
    chosen = at_href or found
    return chosen[0] if chosen else None


def _schedule_at(session: Session, calendar: DavCalendar, href: str) -> DavSchedule | None:
    return session.scalar(
        select(DavSchedule).where(
            DavSchedule.calendar_id == calendar.id,
            DavSchedule.href == href,
            DavSchedule.tenant_id == calendar.tenant_id,
        )
    )


def _attendees(session: Session, schedule: DavSchedule) -> list[DavAttendee]:
    query = select(DavAttendee).where(
        DavAttendee.schedule_id == schedule.id, DavAttendee.tenant_id == schedule.tenant_id
    )
    return list(session.scalars(query.order_by(DavAttendee.address)))


def _schedule(
    ctx: _Context,
    calendar: DavCalendar,
    href: str,
    parsed: Calendar,
    events: list[Component],
    wanted: dict[str, _Wanted],
    schedule: DavSchedule | None,
    text: str,
) -> str:
    session, now = ctx.session, ctx.now
    uid = str(events[0].get("UID", ""))
    digest = content_digest(text)
    fresh_schedule = schedule is None
    client_sequence = max(int(e.get("SEQUENCE", 0) or 0) for e in events)
    if schedule is None:
        schedule = DavSchedule(
            id=new_id("sch"), tenant_id=calendar.tenant_id, provider_id=ctx.provider.id,
            calendar_id=calendar.id, href=href, uid=uid, sequence=client_sequence,
            schedule_tag="", content_digest=digest, created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(schedule)
        session.flush()  # before its attendees (no ORM relationship orders the inserts)
        changed, old = True, []
    else:
        old = _attendees(session, schedule)
        changed = schedule.content_digest != digest or schedule.cancelled
        if changed:
            schedule.sequence = max(schedule.sequence + 1, client_sequence)
        else:
            schedule.sequence = max(schedule.sequence, client_sequence)
    schedule.calendar_id, schedule.href, schedule.cancelled = calendar.id, href, False
    schedule.content_digest, schedule.updated_at = digest, now
    master = _master(events)
    schedule.summary = str(master.get("SUMMARY", ""))[:500]
    schedule.start_at, schedule.end_at = _times(master, ctx.zone)
    by_address = {a.address: a for a in old}
    removed = [a for a in old if a.address not in wanted and not a.removed]
    if removed and not changed:  # their CANCEL must be newer than the copy they hold
        schedule.sequence += 1
    status: dict[str, str] = {}
    for address, want in wanted.items():
        attendee = by_address.get(address)
        fresh = attendee is None or attendee.removed
        if attendee is None:
            attendee = _new_attendee(ctx, schedule, want)
            by_address[address] = attendee
        attendee.removed, attendee.client_agent = False, want.client
        attendee.name = want.name[:200] or attendee.name
        attendee.updated_at = now
        if want.client:
            continue
        if not _ADDRESS.match(address):
            status[address] = INVALID
            continue
        if fresh or changed or attendee.last_sequence_sent is None:
            if changed and not fresh:
                _set_partstat(events, address, "NEEDS-ACTION")
            status[address] = SENT
        elif attendee.last_reply_dtstamp is not None:
            # Only the attendee answers for themselves: a calendar app writing back an older
            # copy does not undo an answer Parley recorded (RFC 6638 3.2.2.2).
            _set_partstat(events, address, attendee.partstat)
    _stamp(events, schedule.sequence, status)
    stored = str(parsed.to_ical().decode())
    requests = [by_address[a] for a, s in status.items() if s == SENT]
    cancels = [a for a in removed if not a.client_agent]
    keys = [_key(schedule, a, "REQUEST") for a in requests]
    keys += [_key(schedule, a, "CANCEL") for a in cancels]
    queued = set() if fresh_schedule else _queued_keys(session, schedule.tenant_id, keys)
    for attendee in requests:
        if _key(schedule, attendee, "REQUEST") not in queued:
            _send(ctx, schedule, attendee, parsed, "REQUEST", checked=True)
    previous = _previous(ctx, calendar, href, parsed) if cancels else parsed
    for attendee in removed:
        attendee.removed, attendee.updated_at = True, now
    for attendee in cancels:
        if _key(schedule, attendee, "CANCEL") not in queued:
            _send(ctx, schedule, attendee, previous, "CANCEL", checked=True)
    for attendee in by_address.values():
        if attendee.address in wanted:
            attendee.partstat = _partstat_in(events, attendee.address) or attendee.partstat
    schedule.schedule_tag = schedule_tag(digest, by_address.values(), schedule.sequence)
    session.flush()
    return stored


def _previous(ctx: _Context, calendar: DavCalendar, href: str, parsed: Calendar) -> Calendar:
    """The copy removed attendees hold: the stored object before this PUT, else this one."""
    found = dav.get_objects(ctx.session, calendar.id, [href])
    if found:
        try:
            return Calendar.from_ical(found[0].ics)
        except ValueError:
            pass
    return parsed


def _new_attendee(ctx: _Context, schedule: DavSchedule, want: _Wanted) -> DavAttendee:
    attendee_id = new_id("sca")
    attendee = DavAttendee(
        id=attendee_id, tenant_id=schedule.tenant_id, schedule_id=schedule.id,
        address=want.address, name=want.name[:200] or None,
        plus_tag=tokens.plus_tag(ctx.mailer.secret, attendee_id), partstat="NEEDS-ACTION",
        client_agent=want.client, removed=False, updated_at=ctx.now,
    )  # fmt: skip
    ctx.session.add(attendee)
    return attendee


def _set_partstat(events: list[Component], address: str, partstat: str) -> None:
    for event in events:
        for prop in _attendee_props(event):
            if _address(prop) == address:
                prop.params["PARTSTAT"] = partstat


def _partstat_in(events: list[Component], address: str) -> str | None:
    for event in events:
        for prop in _attendee_props(event):
            if _address(prop) == address:
                value = _param(prop, "PARTSTAT").upper()
                return value if value in _PARTSTATS else None
    return None


def _stamp(events: list[Component], sequence: int, status: dict[str, str]) -> None:
    """SEQUENCE on every component, SCHEDULE-STATUS on the attendees just scheduled."""
    for event in events:
        if "SEQUENCE" in event:
            del event["SEQUENCE"]
        event.add("SEQUENCE", sequence)
        for prop in _attendee_props(event):
            found = status.get(_address(prop))
            if found is not None:
                prop.params["SCHEDULE-STATUS"] = found


def on_delete(
    session: Session, mailer: Mailer, calendar: DavCalendar, href: str, now: datetime
) -> None:
    """The organizer deleted a scheduled object: CANCEL to each attendee it was sent to."""
    schedule = _schedule_at(session, calendar, href)
    if schedule is None or schedule.cancelled:
        return
    provider = session.get(Provider, schedule.provider_id)
    found = dav.get_objects(session, calendar.id, [href])
    if provider is None or not found:
        return
    try:
        parsed = Calendar.from_ical(found[0].ics)
    except ValueError:
        return
    _cancel_all(_Context(session, mailer, provider, now), schedule, parsed)


def on_calendar_delete(
    session: Session, mailer: Mailer, calendar: DavCalendar, now: datetime
) -> None:
    """A whole calendar goes: its scheduled events are cancelled first."""
    query = select(DavSchedule.href).where(
        DavSchedule.calendar_id == calendar.id, DavSchedule.tenant_id == calendar.tenant_id
    )
    for href in list(session.scalars(query)):
        on_delete(session, mailer, calendar, href, now)


def on_move(
    session: Session, source: DavCalendar, href: str, target: DavCalendar, to_href: str
) -> None:
    """The organizer's copy moved (MOVE): its schedule follows it."""
    session.execute(
        update(DavSchedule)
        .where(DavSchedule.calendar_id == source.id, DavSchedule.href == href,
               DavSchedule.tenant_id == source.tenant_id)
        .values(calendar_id=target.id, href=to_href)
    )  # fmt: skip


def _cancel_all(ctx: _Context, schedule: DavSchedule, parsed: Calendar) -> None:
    targets = [a for a in _attendees(ctx.session, schedule) if not a.removed and not a.client_agent]
    schedule.sequence += 1
    schedule.cancelled, schedule.updated_at = True, ctx.now
    for attendee in targets:
        if attendee.last_sequence_sent is not None:
            _send(ctx, schedule, attendee, parsed, "CANCEL")
    _supersede(ctx.session, schedule, ctx.now)


# --- one attendee's message -----------------------------------------------------------------


def organizer_address(mailer: Mailer, attendee: DavAttendee) -> str:
    """The address an attendee's mail comes from and answers go to: the tenant's organizer,
    tagged for this attendee."""
    address = mailer.organizer(attendee.tenant_id).address
    return tokens.plus_address(address, attendee.plus_tag) if mailer.plus_addressing else address


def itip_text(
    parsed: Calendar,
    attendee: DavAttendee,
    method: str,
    *,
    organizer: str,
    organizer_name: str,
    sequence: int,
    now: datetime,
    link: str | None,
) -> str:
    """The iTIP object for one attendee: the organizer's components that name them, each
    with that attendee only and Parley's organizer address (RFC 6638 3.2.1 / RFC 6047)."""
    out = Calendar()
    for name, value in (("PRODID", PRODID), ("VERSION", "2.0"), ("CALSCALE", "GREGORIAN"),
                        ("METHOD", method)):  # fmt: skip
        out.add(name, value)
    for zone in (c for c in parsed.subcomponents if c.name == "VTIMEZONE"):
        out.add_component(zone)
    events = _events(parsed)
    named = [e for e in events if any(_address(p) == attendee.address for p in _attendee_props(e))]
    for event in named or events[:1]:  # a removed attendee's CANCEL: the master, for them
        mine = [p for p in _attendee_props(event) if _address(p) == attendee.address]
        mine = mine or [vCalAddress(f"mailto:{attendee.address}")]
        copy = Event()
        for name, value in event.items():
            if name.upper() in _NOT_COPIED or name.upper().startswith("X-"):
                continue
            copy[name] = value
        who = vCalAddress(f"mailto:{organizer}")
        who.params["CN"] = vText(organizer_name)
        copy.add("ORGANIZER", who)
        copy.add("ATTENDEE", _one_attendee(mine[0], method))
        copy.add("SEQUENCE", sequence)
        copy.add("DTSTAMP", now.astimezone(UTC))
        description = str(event.get("DESCRIPTION", ""))
        described = describe(description, link if method == "REQUEST" else None)
        if described:  # an empty DESCRIPTION is no valid property (libical drops it)
            copy.add("DESCRIPTION", described)
        if method == "CANCEL":
            copy.add("STATUS", "CANCELLED")
        elif "STATUS" in event:
            copy.add("STATUS", event["STATUS"])
        copy.add("X-MICROSOFT-DISALLOW-COUNTER", "FALSE")
        out.add_component(copy)
    return str(out.to_ical().decode())


def _one_attendee(prop: Any, method: str) -> vCalAddress:
    value = vCalAddress(f"mailto:{_address(prop)}")
    for key, param in (getattr(prop, "params", None) or {}).items():
        if key.upper() in _SERVER_PARAMS or key.upper() in (
            "RSVP",
            "DELEGATED-TO",
            "DELEGATED-FROM",
        ):
            continue
        if key.upper() == "SENT-BY" or key.upper() == "MEMBER":
            continue
        value.params[key] = param
    value.params["RSVP"] = "TRUE" if method == "REQUEST" else "FALSE"
    partstat = str(value.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
    value.params["PARTSTAT"] = partstat if partstat in _PARTSTATS else "NEEDS-ACTION"
    return value


def _send(
    ctx: _Context,
    schedule: DavSchedule,
    attendee: DavAttendee,
    parsed: Calendar,
    method: str,
    *,
    key: str | None = None,
    checked: bool = False,
) -> bool:
    """Queue one attendee's REQUEST or CANCEL at the schedule's SEQUENCE (once per key;
    checked: the caller has looked the key up)."""
    key = key or _key(schedule, attendee, method)
    if not checked and _queued(ctx.session, schedule.tenant_id, key):
        return False
    sender = organizer_address(ctx.mailer, attendee)
    link = None
    if method == "REQUEST":
        link = propose_link(ctx.mailer, schedule, attendee, ctx.now)
    ics = itip_text(
        parsed, attendee, method, organizer=sender, organizer_name=ctx.provider.name,
        sequence=schedule.sequence, now=ctx.now, link=link,
    )  # fmt: skip
    start = schedule.start_at or ctx.now
    events = _events(parsed)
    location = str(_master(events).get("LOCATION", "")) if events else ""
    event = EventSnapshot(
        uid=schedule.uid, sequence=schedule.sequence, start_utc=start,
        end_utc=schedule.end_at or start, summary=schedule.summary or "Event",
        description="", location=location, organizer_address=sender,
        organizer_name=ctx.provider.name,
    )  # fmt: skip
    first = attendee.last_sequence_sent is None
    kind = ItipKind.CANCELLATION if method == "CANCEL" else (
        ItipKind.INVITATION if first else ItipKind.UPDATE
    )  # fmt: skip
    message_id = message_id_for(key, ctx.mailer.organizer(schedule.tenant_id).domain)
    message = compose_itip(
        kind=kind, ics=ics, event=event, recipient=Mailbox(attendee.address, attendee.name or ""),
        message_id=message_id, date=ctx.now, zone_name=ctx.provider.timezone,
        reschedule_url=link, sender=Mailbox(sender, ctx.provider.name),
    )  # fmt: skip
    ctx.session.add(
        outbox_row(
            idempotency_key=key, kind=f"itip.dav.{method.lower()}", uid=None, sequence=None,
            attendee=None, method=None, booking_id=None, recipient=attendee.address,
            message=message, message_id=message_id, now=ctx.now, tenant_id=schedule.tenant_id,
        )
    )  # fmt: skip
    attendee.last_sequence_sent = schedule.sequence
    attendee.updated_at = ctx.now
    deliver_soon(ctx.session, ctx.now)
    record("imip.out", method=method, schedule_id=schedule.id)
    return True


def _key(schedule: DavSchedule, attendee: DavAttendee, method: str) -> str:
    """The outbox key of a scheduling message: once per (event, SEQUENCE, attendee, method)."""
    return f"dav:{schedule.id}:{schedule.sequence}:{attendee.address}:{method}"


def _queued_keys(session: Session, tenant_id: str, keys: list[str]) -> set[str]:
    """Which of keys are in the tenant's outbox already (one query)."""
    if not keys:
        return set()
    query = select(OutboundMessage.idempotency_key).where(
        OutboundMessage.tenant_id == tenant_id, OutboundMessage.idempotency_key.in_(keys)
    )
    return set(session.scalars(query))


def _queued(session: Session, tenant_id: str, key: str) -> bool:
    query = select(OutboundMessage.id).where(
        OutboundMessage.tenant_id == tenant_id, OutboundMessage.idempotency_key == key
    )
    return session.scalar(query) is not None


# --- links: request a new time, approve, decline --------------------------------------------

PROPOSE, APPROVE, DECLINE = "dav_propose", "dav_approve", "dav_decline"


def propose_link(
    mailer: Mailer, schedule: DavSchedule, attendee: DavAttendee, now: datetime
) -> str:
    """The attendee's signed "Request a new time" URL, valid until the event ends."""
    until = max(schedule.end_at or now, now) + timedelta(days=1)
    token = tokens.issue(
        mailer.secret, booking_id=attendee.id, role="attendee", address=attendee.address,
        purpose=PROPOSE, expires_at=until, nonce=secrets.token_bytes(16),
    )  # fmt: skip
    return mailer.url("/schedule/reschedule?r=", token, schedule.tenant_id)


@dataclass(frozen=True)
class Shown:
    """What a link page shows and acts on."""

    schedule: DavSchedule
    attendee: DavAttendee
    provider: Provider
    proposal: DavProposal | None
    purpose: str


def open_link(session: Session, mailer: Mailer, token: str, purpose: str, now: datetime) -> Shown:
    """The schedule (and proposal) behind a link of purpose; LinkProblem saying what is wrong."""
    try:
        claims = tokens.verify(mailer.secret, token, now=now, purpose=purpose)
    except TokenExpired:
        raise LinkProblem("expired", "This link has expired.") from None
    except TokenError:
        raise LinkProblem("invalid", "This link is not valid.") from None
    proposal = None
    if purpose == PROPOSE:
        attendee = session.get(DavAttendee, claims.booking_id)
    else:
        proposal = session.get(DavProposal, claims.booking_id)
        if proposal is None:
            raise LinkProblem("invalid", "This link is not valid.")
        stored = proposal.approve_hash if purpose == APPROVE else proposal.decline_hash
        if stored != tokens.token_hash(token):
            raise LinkProblem("invalid", "This link is not valid.")
        attendee = session.get(DavAttendee, proposal.attendee_id)
    schedule = session.get(DavSchedule, attendee.schedule_id) if attendee else None
    provider = session.get(Provider, schedule.provider_id) if schedule else None
    if attendee is None or schedule is None or provider is None:
        raise LinkProblem("invalid", "This link no longer points at an event.")
    if schedule.cancelled or attendee.removed:
        raise LinkProblem("cancelled", "This event was cancelled.")
    return Shown(schedule, attendee, provider, proposal, purpose)


def propose(
    session: Session, mailer: Mailer, token: str, *, start: datetime, end: datetime,
    note: str | None, now: datetime,
) -> DavProposal:  # fmt: skip
    """A new time asked for through an attendee's link: the provider is asked to approve."""
    shown = open_link(session, mailer, token, PROPOSE, now)
    return create_proposal(
        _Context(session, mailer, shown.provider, now), shown.schedule, shown.attendee,
        start, end, note, via="link", inbound_message_id=None,
    )  # fmt: skip


def create_proposal(
    ctx: _Context,
    schedule: DavSchedule,
    attendee: DavAttendee,
    start: datetime,
    end: datetime,
    note: str | None,
    *,
    via: str,
    inbound_message_id: int | None,
) -> DavProposal:
    """Store a pending proposal (older ones superseded) and mail the provider its links."""
    if end <= start:
        raise LinkProblem("invalid", "The proposed end must be after its start.")
    _supersede(ctx.session, schedule, ctx.now)
    proposal_id = new_id("dpr")
    urls, hashes = {}, {}
    expires = ctx.now + ctx.mailer.approve_ttl
    for verb, purpose in (("approve", APPROVE), ("decline", DECLINE)):
        token = tokens.issue(
            ctx.mailer.secret, booking_id=proposal_id, role="organizer",
            address=ctx.provider.email, purpose=purpose, expires_at=expires,
            nonce=secrets.token_bytes(16),
        )  # fmt: skip
        urls[f"{verb}_url"] = ctx.mailer.url(f"/schedule/{verb}?t=", token, schedule.tenant_id)
        hashes[verb] = tokens.token_hash(token)
    proposal = DavProposal(
        id=proposal_id, tenant_id=schedule.tenant_id, schedule_id=schedule.id,
        attendee_id=attendee.id, start_at=start, end_at=end,
        note=(note or "").strip()[:2000] or None, status="pending", via=via,
        base_sequence=schedule.sequence, approve_hash=hashes["approve"],
        decline_hash=hashes["decline"], inbound_message_id=inbound_message_id,
        created_at=ctx.now, expires_at=expires,
    )  # fmt: skip
    ctx.session.add(proposal)
    ctx.session.flush()
    ctx.session.add(
        notice_row(
            ctx.mailer, template="approval_request", key=f"dav-proposal:{proposal.id}",
            booking=None, tenant_id=schedule.tenant_id,
            to=Mailbox(ctx.provider.email, ctx.provider.name),
            context={
                "title": schedule.summary or "Event",
                "current_start": schedule.start_at or start,
                "current_end": schedule.end_at or end,
                "proposed_start": start, "proposed_end": end, "note": proposal.note,
                "proposer_label": attendee.name or attendee.address,
                "expires_at": expires, **urls,
            },
            now=ctx.now, zone_name=ctx.provider.timezone,
        )
    )  # fmt: skip
    deliver_soon(ctx.session, ctx.now)
    record("cal.proposal.created", schedule_id=schedule.id, proposal_id=proposal.id, via=via)
    return proposal


def _supersede(session: Session, schedule: DavSchedule, now: datetime) -> None:
    session.execute(
        update(DavProposal)
        .where(DavProposal.schedule_id == schedule.id, DavProposal.status == "pending",
               DavProposal.tenant_id == schedule.tenant_id)
        .values(status="superseded", decided_at=now)
    )  # fmt: skip


def _pending(shown: Shown, now: datetime) -> DavProposal:
    proposal = shown.proposal
    if proposal is None or proposal.status != "pending":
        status = proposal.status if proposal else "gone"
        raise LinkProblem("not_pending", f"This proposed time is {status}.")
    if proposal.expires_at <= now or proposal.base_sequence != shown.schedule.sequence:
        proposal.status = "expired" if proposal.expires_at <= now else "superseded"
        proposal.decided_at = now
        raise LinkProblem(
            "moved", "The event has changed since this time was proposed, so it was not applied."
        )
    return proposal


def approve(session: Session, mailer: Mailer, token: str, *, now: datetime) -> DavProposal:
    """Move the provider's event to the proposed time and send every attendee the update."""
    shown = open_link(session, mailer, token, APPROVE, now)
    dav.lock_provider(session, shown.provider.id)
    proposal = _pending(shown, now)
    schedule = shown.schedule
    calendar = session.get(DavCalendar, schedule.calendar_id)
    found = dav.get_objects(session, schedule.calendar_id, [schedule.href]) if calendar else []
    if calendar is None or not found:
        raise LinkProblem("cancelled", "This event is no longer in the calendar.")
    obj = found[0]
    moved = move_text(obj.ics, proposal.start_at, proposal.end_at)
    stored = on_put(session, mailer, calendar, schedule.href, moved, now)
    dav.rewrite_object(session, calendar, obj, stored, now, span=_span_of(proposal, stored))
    proposal.status, proposal.decided_at = "approved", now
    record("cal.proposal.approved", schedule_id=schedule.id, proposal_id=proposal.id)
    return proposal


def decline(session: Session, mailer: Mailer, token: str, *, now: datetime) -> DavProposal:
    """Keep the event as it is; a COUNTER's sender gets a DECLINECOUNTER."""
    shown = open_link(session, mailer, token, DECLINE, now)
    proposal = _pending(shown, now)
    proposal.status, proposal.decided_at = "declined", now
    if proposal.via == "counter":
        _send_declinecounter(_Context(session, mailer, shown.provider, now), shown, proposal)
    record("cal.proposal.declined", schedule_id=shown.schedule.id, proposal_id=proposal.id)
    return proposal


def _send_declinecounter(ctx: _Context, shown: Shown, proposal: DavProposal) -> None:
    schedule, attendee = shown.schedule, shown.attendee
    key = f"dav-declinecounter:{proposal.id}"
    if _queued(ctx.session, schedule.tenant_id, key):
        return
    sender = organizer_address(ctx.mailer, attendee)
    out = Calendar()
    for name, value in (("PRODID", PRODID), ("VERSION", "2.0"), ("METHOD", "DECLINECOUNTER")):
        out.add(name, value)
    event = Event()
    event.add("UID", schedule.uid)
    event.add("SEQUENCE", schedule.sequence)
    event.add("DTSTAMP", ctx.now.astimezone(UTC))
    who = vCalAddress(f"mailto:{sender}")
    who.params["CN"] = vText(ctx.provider.name)
    event.add("ORGANIZER", who)
    mine = vCalAddress(f"mailto:{attendee.address}")
    mine.params["PARTSTAT"] = "NEEDS-ACTION"
    event.add("ATTENDEE", mine)
    out.add_component(event)
    start = schedule.start_at or ctx.now
    snapshot = EventSnapshot(
        uid=schedule.uid, sequence=schedule.sequence, start_utc=start,
        end_utc=schedule.end_at or start, summary=schedule.summary or "Event", description="",
        location="", organizer_address=sender, organizer_name=ctx.provider.name,
    )  # fmt: skip
    message_id = message_id_for(key, ctx.mailer.organizer(schedule.tenant_id).domain)
    message = compose_itip(
        kind=ItipKind.DECLINE_COUNTER, ics=out.to_ical().decode(), event=snapshot,
        recipient=Mailbox(attendee.address, attendee.name or ""), message_id=message_id,
        date=ctx.now, zone_name=ctx.provider.timezone, sender=Mailbox(sender, ctx.provider.name),
    )  # fmt: skip
    ctx.session.add(
        outbox_row(
            idempotency_key=key, kind="itip.dav.declinecounter", uid=None, sequence=None,
            attendee=None, method=None, booking_id=None, recipient=attendee.address,
            message=message, message_id=message_id, now=ctx.now, tenant_id=schedule.tenant_id,
        )
    )  # fmt: skip
    deliver_soon(ctx.session, ctx.now)


def _span_of(proposal: DavProposal, text: str) -> dav.ObjectSpan:
    """The moved object's envelope: the proposed time, or from it on when it recurs."""
    if re.search(r"^(RRULE|RDATE)[:;]", text, re.MULTILINE):
        return dav.ObjectSpan(proposal.start_at, None, exact=False)
    return dav.ObjectSpan(proposal.start_at, proposal.end_at, exact=True)


def move_text(text: str, start: datetime, end: datetime) -> str:
    """The object with its master event moved to [start, end) (UTC)."""
    parsed = Calendar.from_ical(text)
    master = _master(_events(parsed))
    for name in ("DTSTART", "DTEND", "DURATION"):
        if name in master:
            del master[name]
    master.add("DTSTART", start.astimezone(UTC))
    master.add("DTEND", end.astimezone(UTC))
    return str(parsed.to_ical().decode())


# --- answers coming back --------------------------------------------------------------------


def vouched(session: Session, tenant_id: str, uid: str, tags: list[str]) -> frozenset[str]:
    """Addresses of uid's attendees (in tenant_id) whose plus tags are among tags."""
    if not tags:
        return frozenset()
    query = (
        select(DavAttendee.address)
        .join(DavSchedule, DavSchedule.id == DavAttendee.schedule_id)
        .where(
            DavSchedule.tenant_id == tenant_id,
            DavAttendee.tenant_id == tenant_id,
            DavSchedule.uid == uid,
            DavAttendee.plus_tag.in_(tags),
        )
    )
    return frozenset(a.lower() for a in session.scalars(query))


def _match(
    session: Session, tenant_id: str, itip: ItipMessage, tags: list[str]
) -> tuple[DavSchedule, DavAttendee] | None:
    """The schedule and attendee an answer speaks for: by plus tag, and by the address."""
    query = (
        select(DavSchedule, DavAttendee)
        .join(DavAttendee, DavAttendee.schedule_id == DavSchedule.id)
        .where(
            DavSchedule.tenant_id == tenant_id,
            DavAttendee.tenant_id == tenant_id,
            DavSchedule.uid == itip.uid,
        )
    )
    rows = [(s, a) for s, a in session.execute(query)]
    addresses = {a.address for a in itip.attendees}
    by_address = [(s, a) for s, a in rows if a.address in addresses]
    by_tag = [(s, a) for s, a in by_address if a.plus_tag in tags]
    if tags:
        return by_tag[0] if by_tag else None
    return by_address[0] if len(by_address) == 1 else None


def apply_itip(
    session: Session,
    mailer: Mailer,
    row: InboundMessage,
    itip: ItipMessage,
    *,
    tags: list[str],
    now: datetime,
) -> Decision | None:
    """Act on an answer to a scheduled event of row's tenant; None when it answers none."""
    found = _match(session, row.tenant_id, itip, tags)
    if found is None:
        return None
    schedule, attendee = found
    provider = session.get(Provider, schedule.provider_id)
    if provider is None:
        return None
    dav.lock_provider(session, provider.id)
    ctx = _Context(session, mailer, provider, now)
    method = itip.method.upper()
    record("imip.in", method=method, schedule_id=schedule.id)
    if method == "REFRESH":
        return _refresh(ctx, schedule, attendee, row)
    if method not in ("REPLY", "COUNTER"):
        _deliver(ctx, row, itip)
        return Decision("ignored", f"{method} delivered to the schedule inbox; nothing to do")
    if itip.sequence < (attendee.last_sequence_sent or 0):
        return Decision(
            "ignored", f"stale SEQUENCE {itip.sequence} < {attendee.last_sequence_sent}"
        )
    if schedule.cancelled or attendee.removed:
        return Decision("ignored", "the event was cancelled for this attendee")
    if method == "COUNTER":
        return _counter(ctx, schedule, attendee, row, itip)
    return _reply(ctx, schedule, attendee, row, itip)


def _reply(
    ctx: _Context, schedule: DavSchedule, attendee: DavAttendee, row: InboundMessage,
    itip: ItipMessage,
) -> Decision:  # fmt: skip
    answer = next(a for a in itip.attendees if a.address == attendee.address)
    partstat = answer.partstat.upper()
    if partstat not in _PARTSTATS:
        return Decision("ignored", f"unknown PARTSTAT {partstat}")
    stamp, last = itip.event.dtstamp, attendee.last_reply_dtstamp
    if stamp is not None and last is not None and stamp < last:
        return Decision("ignored", "an older answer than the one already applied")
    attendee.partstat, attendee.last_reply_dtstamp = partstat, stamp or ctx.now
    attendee.updated_at = ctx.now
    _write_partstat(ctx, schedule, attendee, partstat)
    _deliver(ctx, row, itip)
    return Decision("applied", f"{attendee.address} {partstat.lower()}")


def _write_partstat(
    ctx: _Context, schedule: DavSchedule, attendee: DavAttendee, partstat: str
) -> None:
    """The answer in the organizer's stored object: a new ETag, the Schedule-Tag kept."""
    calendar = ctx.session.get(DavCalendar, schedule.calendar_id)
    found = dav.get_objects(ctx.session, schedule.calendar_id, [schedule.href]) if calendar else []
    if calendar is None or not found:
        return
    obj: DavObject = found[0]
    try:
        parsed = Calendar.from_ical(obj.ics)
    except ValueError:
        return
    events = _events(parsed)
    _set_partstat(events, attendee.address, partstat)
    for event in events:
        for prop in _attendee_props(event):
            if _address(prop) == attendee.address and "RSVP" in prop.params:
                del prop.params["RSVP"]
    dav.rewrite_object(ctx.session, calendar, obj, parsed.to_ical().decode(), ctx.now)


def _counter(
    ctx: _Context, schedule: DavSchedule, attendee: DavAttendee, row: InboundMessage,
    itip: ItipMessage,
) -> Decision:  # fmt: skip
    start = _utc(itip.event.dtstart, ctx.zone)
    end = _utc(itip.event.dtend, ctx.zone)
    if start is None:
        return Decision("ignored", "the COUNTER carries no DTSTART")
    if end is None:
        length = (
            (schedule.end_at - schedule.start_at)
            if schedule.start_at and schedule.end_at
            else timedelta(hours=1)
        )
        end = start + length
    if end <= start or start < ctx.now:
        return Decision("ignored", "the COUNTER proposes no usable future time")
    answer = next((a for a in itip.attendees if a.address == attendee.address), None)
    note = (answer.response_comment if answer else None) or itip.event.comment
    proposal = create_proposal(
        ctx, schedule, attendee, start, end, note, via="counter", inbound_message_id=row.id
    )
    _deliver(ctx, row, itip)
    return Decision("applied", f"COUNTER became proposal {proposal.id}")


def _refresh(
    ctx: _Context, schedule: DavSchedule, attendee: DavAttendee, row: InboundMessage
) -> Decision:
    calendar = ctx.session.get(DavCalendar, schedule.calendar_id)
    found = dav.get_objects(ctx.session, schedule.calendar_id, [schedule.href]) if calendar else []
    if attendee.client_agent:
        return Decision("ignored", "this attendee is scheduled by the calendar app itself")
    if not found:
        return Decision("ignored", "the event is no longer in the calendar")
    parsed = Calendar.from_ical(found[0].ics)
    method = "CANCEL" if schedule.cancelled or attendee.removed else "REQUEST"
    _send(ctx, schedule, attendee, parsed, method, key=f"dav-refresh:{row.id}:{attendee.address}")
    return Decision("applied", "current copy sent again")


def mark_undeliverable(
    session: Session,
    tenant_id: str,
    message_id: str | None,
    recipients: list[str],
    now: datetime,
) -> str | None:
    """A bounce of a scheduling message: SCHEDULE-STATUS 5.1 (could not be delivered) on
    that attendee in the provider's object; which one, or None when it was none of ours."""
    if not message_id:
        return None
    bare = message_id.strip("<>")
    row = session.scalar(
        select(OutboundMessage).where(
            OutboundMessage.tenant_id == tenant_id,
            OutboundMessage.message_id.in_((bare, f"<{bare}>")),
            OutboundMessage.kind.like("itip.dav.%"),
        )
    )
    if row is None or (recipients and row.recipient not in recipients):
        return None
    schedule_id = (
        row.idempotency_key.split(":")[1] if row.idempotency_key.startswith("dav:") else ""
    )
    schedule = session.get(DavSchedule, schedule_id) if schedule_id else None
    calendar = session.get(DavCalendar, schedule.calendar_id) if schedule else None
    found = dav.get_objects(session, calendar.id, [schedule.href]) if schedule and calendar else []
    if not found or calendar is None:
        return None
    parsed = Calendar.from_ical(found[0].ics)
    for event in _events(parsed):
        for prop in _attendee_props(event):
            if _address(prop) == row.recipient:
                prop.params["SCHEDULE-STATUS"] = UNDELIVERED
    dav.rewrite_object(session, calendar, found[0], parsed.to_ical().decode(), now)
    return f"undeliverable: {row.recipient} of scheduled event {schedule_id}"


def answer_plain_mail(
    session: Session,
    mailer: Mailer | None,
    row: InboundMessage,
    tags: list[str],
    *,
    subject: str,
    now: datetime,
    limit_per_day: int,
) -> str | None:
    """Mail without iTIP to an attendee's tagged address gets their "request a new time"
    link (at most limit_per_day a day); the reason, or None when no attendee has the tag."""
    attendee = session.scalar(
        select(DavAttendee).where(
            DavAttendee.tenant_id == row.tenant_id, DavAttendee.plus_tag.in_(tags)
        )
    )
    schedule = session.get(DavSchedule, attendee.schedule_id) if attendee else None
    if attendee is None or schedule is None:
        return None
    if mailer is None:
        return f"answers scheduled event {schedule.id}"
    if schedule.cancelled or attendee.removed or (schedule.end_at or now) < now:
        return "the event is no longer open to changes"
    since = now - timedelta(days=1)
    sent = session.scalars(
        select(OutboundMessage.id).where(
            OutboundMessage.tenant_id == row.tenant_id,
            OutboundMessage.kind == "notice.auto_reply",
            OutboundMessage.recipient == attendee.address,
            OutboundMessage.created_at > since,
        )
    ).all()
    if len(sent) >= limit_per_day:
        return "auto-reply limit reached"
    link = propose_link(mailer, schedule, attendee, now)
    session.add(
        notice_row(
            mailer, template="auto_reply", key=f"dav-auto-reply:{row.id}", booking=None,
            tenant_id=row.tenant_id, to=Mailbox(attendee.address, attendee.name or ""),
            context={"title": schedule.summary or "Event", "reschedule_url": link,
                     "original_subject": subject},
            now=now,
        )
    )  # fmt: skip
    deliver_soon(session, now)
    return "answered with a reschedule link"


# --- the schedule inbox ---------------------------------------------------------------------


def _deliver(ctx: _Context, row: InboundMessage, itip: ItipMessage) -> None:
    """The iTIP message as it came, an object of the provider's schedule inbox."""
    text = _calendar_text(row)
    if text is None:
        return
    inbox = dav.ensure_inbox(ctx.session, ctx.provider, ctx.now)
    href = f"{hashlib.sha256(f'{row.tenant_id}:{row.id}'.encode()).hexdigest()[:24]}.ics"
    span = dav.ObjectSpan(None, None, exact=True)
    dav.put_object(ctx.session, inbox, href, text, uid=itip.uid, span=span, now=ctx.now)


def _calendar_text(row: InboundMessage) -> str | None:
    """The text/calendar part of the stored message."""
    message = email.message_from_bytes(row.raw, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            try:
                content = part.get_content()
            except (LookupError, ValueError):
                continue
            return content if isinstance(content, str) else content.decode("utf-8", "replace")
    return None


# --- Schedule-Tag for the HTTP layer --------------------------------------------------------


def tag_at(session: Session, provider: Provider, calendar_name: str, href: str) -> str | None:
    """The Schedule-Tag of the scheduling object at /<provider>/<calendar_name>/<href>."""
    query = (
        select(DavSchedule.schedule_tag)
        .join(DavCalendar, DavCalendar.id == DavSchedule.calendar_id)
        .where(
            DavCalendar.provider_id == provider.id,
            DavCalendar.name == calendar_name,
            DavSchedule.tenant_id == provider.tenant_id,
            DavSchedule.href == href,
            DavSchedule.cancelled.is_(False),
        )
    )
    return session.scalar(query)


def tags_in(session: Session, provider: Provider, calendar_name: str) -> dict[str, str]:
    """href → Schedule-Tag of the calendar's scheduling objects."""
    query = (
        select(DavSchedule.href, DavSchedule.schedule_tag)
        .join(DavCalendar, DavCalendar.id == DavSchedule.calendar_id)
        .where(
            DavCalendar.provider_id == provider.id,
            DavCalendar.name == calendar_name,
            DavSchedule.tenant_id == provider.tenant_id,
            DavSchedule.cancelled.is_(False),
        )
    )
    return {href: tag for href, tag in session.execute(query)}
