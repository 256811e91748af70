"""A new time proposed by mail to a second tenant, over real SMTP: the proposal points at
the stored message of its own tenant (the composite keys refuse anything else), the host
gets the approve link, and the same message delivered again is stored and acted on once.
"""

from __future__ import annotations

import email
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db.engine import make_engine
from core.db.models import InboundMessage, Proposal
from tests.e2e.test_negotiation_smtp import (
    GUEST,
    HOST,
    Parley,
    berlin,
    book,
    links,
    new_mail,
)
from tests.e2e.test_tenant_mail import VOUCHED, _clinic
from tests.e2e.test_tenant_mail import parley as parley  # the fixture
from tests.integration.negotiation import mails

pytestmark = pytest.mark.slow


def _key(raw: bytes) -> str:
    return str(email.message_from_bytes(raw)["Message-ID"]).strip()


def _stored(parley: Parley, key: str) -> list[tuple[str, str]]:
    engine = make_engine(parley.db_url)
    try:
        with engine.connect() as c:
            query = select(InboundMessage.tenant_id, InboundMessage.outcome).where(
                InboundMessage.message_key == key
            )
            return [(t, o) for t, o in c.execute(query)]
    finally:
        engine.dispose()


def _proposals(parley: Parley, booking_id: str) -> list[tuple[str, int | None]]:
    engine = make_engine(parley.db_url)
    try:
        with engine.connect() as c:
            query = select(Proposal.tenant_id, Proposal.inbound_message_id).where(
                Proposal.booking_id == booking_id
            )
            return [(t, i) for t, i in c.execute(query)]
    finally:
        engine.dispose()


def test_a_counter_to_the_second_tenant_reaches_its_host_once(parley: Parley) -> None:
    clinic = _clinic(parley)
    theirs = book(clinic, "ada")
    to = theirs.organizer_of("guest")
    new_start = theirs.free[0]
    counter = VOUCHED.encode() + mails.outlook(
        method="COUNTER", uid=theirs.uid, sequence=0, attendee=GUEST, to=to,
        start_local=berlin(new_start), end_local=berlin(new_start + timedelta(minutes=30)),
        comment="Could we move it?",
    )  # fmt: skip
    before = len(parley.relay.snapshot())
    parley.send(counter, to)
    (request,) = new_mail(parley.relay, before, lambda m: "approve" in links(m), 1)
    assert request.recipient == HOST
    outcome = parley.inbound_outcome(counter)
    assert outcome[0] not in ("failed", "ignored"), outcome
    (proposal,) = _proposals(parley, theirs.id)
    clinic_id = next(t["id"] for t in parley.api("GET", "/tenants").json()["items"]
                     if t["slug"] == "clinic")  # fmt: skip
    assert proposal == (clinic_id, proposal[1]) and proposal[1] is not None
    assert _stored(parley, _key(counter)) == [(clinic_id, outcome[0])]

    # The same message again (a sending server that did not see our 250): stored once.
    parley.send(counter, to)
    time.sleep(3)  # what a second copy would do, it has done by now (processing is woken)
    assert _stored(parley, _key(counter)) == [(clinic_id, outcome[0])]
    assert len(_proposals(parley, theirs.id)) == 1
    assert not [m for m in parley.relay.snapshot()[before:] if "approve" in links(m)][1:]
