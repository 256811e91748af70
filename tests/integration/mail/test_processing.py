"""Inbound processing: outcomes, parsed columns, bounces, authenticity, and the two hooks."""

from __future__ import annotations

from typing import Any

import dkim
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from core.db.models import InboundMessage, Invitation, OutboundMessage
from core.runtime import Runtime
from core.services.inbound import store_raw
from core.services.mail_in import AuthPolicy, ProcessingContext, process_one, process_pending
from parley.handlers import MAIL_READER
from tests.conftest import DATA
from tests.integration.mail.helpers import NOW, mail, make_invitation, reply, rsa_key

MAIL = DATA / "mail"


def _context(runtime: Runtime, auth: AuthPolicy | None = None) -> ProcessingContext:
    return ProcessingContext(
        runtime.sessions, runtime.settings, auth or AuthPolicy(), lambda: NOW, reader=MAIL_READER
    )


def _process(runtime: Runtime, raw: bytes, auth: AuthPolicy | None = None, **kw: Any) -> Any:
    stored = store_raw(runtime.sessions, raw, channel="smtp", now=NOW, **kw)
    process_one(_context(runtime, auth), stored.id)
    with runtime.sessions() as session:
        return session.get(InboundMessage, stored.id)


def _count(outcome: str) -> float:
    return REGISTRY.get_sample_value("parley_mail_inbound_total", {"outcome": outcome}) or 0.0


def test_reply_from_its_attendee_is_ready_for_itip_with_parsed_columns(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        make_invitation(session, address="guest@example.net", plus_tag="t1",
                        message_id="<i1@parley.localhost>", uid="uid-1@parley.example")  # fmt: skip
    before = _count("itip")
    to = "scheduling+t1@parley.localhost"  # the invitation's ORGANIZER, as calendar apps answer
    row = _process(
        runtime, reply(sender="Guest+cal@Example.NET", attendee="guest@example.net", to=to)
    )
    assert row.outcome == "itip" and row.processed_at is not None
    assert (row.method, row.uid, row.sequence) == ("REPLY", "uid-1@parley.example", 2)
    assert (row.attendee, row.partstat) == ("guest@example.net", "ACCEPTED")
    assert row.dtstamp is not None and row.dtstamp.isoformat() == "2026-05-05T10:00:00+00:00"
    assert row.from_address == "guest+cal@example.net" and row.subject == "Accepted: Intro call"
    assert _count("itip") == before + 1


def test_reply_from_someone_else_is_recorded_unauthenticated(runtime: Runtime) -> None:
    row = _process(runtime, reply(sender="mallory@example.org", attendee="guest@example.net"))
    assert row.outcome == "unauthenticated"
    assert "not the attendee" in row.outcome_reason


def test_dkim_mode_requires_a_signature_of_the_from_domain(runtime: Runtime, tmp_path: Any) -> None:
    private, txt = rsa_key(tmp_path)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return txt if name == b"sel._domainkey.example.net." else None

    policy = AuthPolicy.from_setting("dkim", dnsfunc=dns)
    raw = reply(sender="guest@example.net", attendee="guest@example.net", message_id="<d1@x>")
    signed = dkim.sign(raw, b"sel", b"example.net", private) + raw
    assert _process(runtime, signed, policy).outcome == "itip"
    unsigned = reply(sender="guest@example.net", attendee="guest@example.net", message_id="<d2@x>")
    row = _process(runtime, unsigned, policy)
    assert (row.outcome, row.outcome_reason) == (
        "unauthenticated",
        "no valid DKIM signature of example.net",
    )
    other = reply(sender="guest@example.net", attendee="guest@example.net", message_id="<d3@x>")
    by_other = dkim.sign(other, b"sel", b"example.org", private) + other
    assert _process(runtime, by_other, policy).outcome == "unauthenticated"


def test_authres_mode_trusts_only_the_named_receiver(runtime: Runtime) -> None:
    policy = AuthPolicy.from_setting("authres:mx.parley.localhost")
    base = reply(sender="guest@example.net", attendee="guest@example.net", message_id="<a1@x>")
    trusted = (
        b"Authentication-Results: mx.parley.localhost; dkim=pass header.d=example.net;"
        b" spf=pass smtp.mailfrom=example.net\r\n" + base
    )
    assert _process(runtime, trusted, policy).outcome == "itip"
    forged = b"Authentication-Results: evil.example; dkim=pass header.d=example.net\r\n" + (
        base.replace(b"<a1@x>", b"<a2@x>")
    )
    assert _process(runtime, forged, policy).outcome == "unauthenticated"
    failing = b"Authentication-Results: mx.parley.localhost; dkim=fail header.d=example.net\r\n"
    assert _process(runtime, failing + base.replace(b"<a1@x>", b"<a3@x>"), policy).outcome == (
        "unauthenticated"
    )


def test_auto_replies_are_recorded_and_never_answered(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        make_invitation(session, address="host.person@contoso.example", plus_tag="b42",
                        message_id="<invite-42-1@parley.example>")  # fmt: skip
    for name in ("out_of_office.eml", "out_of_office_subject_only.eml"):
        row = _process(runtime, (MAIL / name).read_bytes())
        assert row.outcome == "auto_reply", name
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 0


def test_bounce_marks_the_invitation_it_names_undeliverable(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        bounced = make_invitation(session, address="nobody@contoso.example", plus_tag="t1",
                                  message_id="<invite-42-1@parley.example>").id  # fmt: skip
        other = make_invitation(session, address="fine@contoso.example", plus_tag="t2",
                                message_id="<invite-43-1@parley.example>").id  # fmt: skip
    row = _process(runtime, (MAIL / "exchange_dsn_bounce.eml").read_bytes())
    assert row.outcome == "bounce" and bounced in row.outcome_reason
    with runtime.sessions() as session:
        assert session.get(Invitation, bounced).delivery_state == "undeliverable"
        assert session.get(Invitation, other).delivery_state == "pending"
        assert session.scalar(select(func.count()).select_from(OutboundMessage)) == 0


def test_plain_mail_answering_an_invitation_reaches_the_hook(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        invitation = make_invitation(session, address="guest@example.net", plus_tag="tag7",
                                     message_id="<inv-7@parley.localhost>")  # fmt: skip
        booking_id = invitation.booking_id
    by_thread = _process(
        runtime, mail(message_id="<p1@x>", extra="In-Reply-To: <inv-7@parley.localhost>\r\n")
    )
    assert (by_thread.outcome, by_thread.booking_id) == ("plain_reply", booking_id)
    by_tag = _process(runtime, mail(message_id="<p2@x>", to="scheduling+tag7@parley.localhost"))
    assert (by_tag.outcome, by_tag.booking_id) == ("plain_reply", booking_id)
    unrelated = _process(runtime, mail(message_id="<p3@x>"))
    assert unrelated.outcome == "ignored" and unrelated.booking_id is None


def test_unparseable_mail_is_kept_with_its_reason(runtime: Runtime) -> None:
    for name in ("binary_garbage.eml", "no_headers.eml"):
        row = _process(runtime, (MAIL / name).read_bytes())
        assert row.outcome == "unparseable" and row.outcome_reason, name
        assert row.raw == (MAIL / name).read_bytes()


def test_process_pending_settles_everything_once(runtime: Runtime) -> None:
    for i in range(5):
        store_raw(runtime.sessions, mail(message_id=f"<q{i}@x>"), channel="smtp", now=NOW)
    context = _context(runtime)
    assert process_pending(context) == 5
    assert process_pending(context) == 0
    with runtime.sessions() as session:
        first = session.scalar(select(InboundMessage.id).limit(1))
    assert first is not None and process_one(context, first) is None


def test_process_pending_keeps_to_its_limit_and_a_lone_message_needs_no_helpers(
    runtime: Runtime,
) -> None:
    from core.services import mail_in as processing

    context = _context(runtime)
    store_raw(runtime.sessions, mail(message_id="<lone@x>"), channel="smtp", now=NOW)
    processing._helpers.cache_clear()
    assert process_pending(context) == 1
    assert processing._helpers.cache_info().currsize == 0, "a helper started for one message"
    for i in range(7):
        store_raw(runtime.sessions, mail(message_id=f"<l{i}@x>"), channel="smtp", now=NOW)
    assert process_pending(context, limit=3) == 3
    assert process_pending(context, limit=10) == 4
    assert process_pending(context) == 0
