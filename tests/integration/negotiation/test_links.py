"""Invitations, "request a new time" links and one-click approval (PRD §9, §13, §15)."""

from __future__ import annotations

from urllib.parse import unquote

from core.runtime import Runtime
from tests.integration.negotiation.helpers import GUEST, body_text, booked, links, outbox, parsed

HOST = "ada@example.org"


def test_confirmation_sends_two_private_invitations(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    booked(runtime, admin_headers)
    rows = outbox(runtime)
    assert sorted((r.recipient, r.method, r.sequence) for r in rows) == [
        (HOST, "REQUEST", 0),
        (GUEST, "REQUEST", 0),
    ]
    uids = {r.uid for r in rows}
    assert len(uids) == 1
    for row in rows:
        other = GUEST if row.recipient == HOST else HOST
        assert other.encode() not in row.mime
        assert other not in body_text(row)
        message = parsed(row)
        assert message["To"].addresses[0].addr_spec == row.recipient
        assert message["Cc"] is None and message["Bcc"] is None
        assert "reschedule" in links(row)


def test_guest_proposes_host_approves_both_get_updates(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    client, booking_id = booked(runtime, admin_headers)
    guest_mail = next(r for r in outbox(runtime) if r.recipient == GUEST)
    token = unquote(links(guest_mail)["reschedule"])
    page = client.get("/reschedule", params={"r": token})
    assert page.status_code == 200
    assert "Request a new time" in page.text and 'name="slot"' in page.text
    sent = client.post(
        "/reschedule",
        data={"r": token, "slot": "2027-03-03T13:00:00+00:00", "note": "afternoon please"},
    )
    assert sent.status_code == 201, sent.text
    approval = next(r for r in outbox(runtime) if r.kind == "notice.approval_request")
    assert approval.recipient == HOST
    assert GUEST.encode() not in approval.mime
    approve_token = unquote(links(approval)["approve"])

    # Opening the link (a mail scanner, a preview) changes nothing.
    looked = client.get("/approve", params={"t": approve_token})
    assert looked.status_code == 200 and "Yes, approve" in looked.text
    assert (
        client.get(f"/api/v1/bookings/{booking_id}", headers=admin_headers).json()["sequence"] == 0
    )

    done = client.post("/approve", data={"t": approve_token})
    assert done.status_code == 200, done.text
    booking = client.get(f"/api/v1/bookings/{booking_id}", headers=admin_headers).json()
    assert booking["sequence"] == 1
    assert booking["start"].startswith("2027-03-03T13:00:00")
    updates = [r for r in outbox(runtime) if r.method == "REQUEST" and r.sequence == 1]
    assert sorted(r.recipient for r in updates) == [HOST, GUEST]

    again = client.post("/approve", data={"t": approve_token})
    assert again.status_code == 410
    assert "already been used" in again.text
    assert (
        client.get(f"/api/v1/bookings/{booking_id}", headers=admin_headers).json()["sequence"] == 1
    )


def test_decline_keeps_the_time_and_tells_the_proposer(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    client, booking_id = booked(runtime, admin_headers)
    guest_mail = next(r for r in outbox(runtime) if r.recipient == GUEST)
    token = unquote(links(guest_mail)["reschedule"])
    response = client.post(
        "/api/v1/reschedule/propose",
        json={"token": token, "start": "2027-03-04T10:00:00Z", "end": "2027-03-04T10:30:00Z"},
    )
    assert response.status_code == 201, response.text
    approval = next(r for r in outbox(runtime) if r.kind == "notice.approval_request")
    decline_token = unquote(links(approval)["decline"])
    assert client.post("/decline", data={"t": decline_token}).status_code == 200
    booking = client.get(f"/api/v1/bookings/{booking_id}", headers=admin_headers).json()
    assert booking["sequence"] == 0 and booking["start"].startswith("2027-03-02T09:00:00")
    told = [r for r in outbox(runtime) if r.kind == "notice.proposal_declined"]
    assert [r.recipient for r in told] == [GUEST]
    # The approve link of a declined proposal no longer works.
    approve_token = unquote(links(approval)["approve"])
    assert client.post("/approve", data={"t": approve_token}).status_code == 410


def test_approving_after_the_booking_moved_is_refused(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    client, booking_id = booked(runtime, admin_headers)
    guest_mail = next(r for r in outbox(runtime) if r.recipient == GUEST)
    token = unquote(links(guest_mail)["reschedule"])
    client.post(
        "/api/v1/reschedule/propose",
        json={"token": token, "start": "2027-03-04T10:00:00Z", "end": "2027-03-04T10:30:00Z"},
    )
    approval = next(r for r in outbox(runtime) if r.kind == "notice.approval_request")
    moved = client.post(
        f"/api/v1/bookings/{booking_id}/reschedule",
        json={"start": "2027-03-05T10:00:00Z", "end": "2027-03-05T10:30:00Z"},
        headers=admin_headers,
    )
    assert moved.status_code == 200, moved.text
    refused = client.post("/approve", data={"t": unquote(links(approval)["approve"])})
    assert refused.status_code == 409
    assert "changed since this time was proposed" in refused.text
    booking = client.get(f"/api/v1/bookings/{booking_id}", headers=admin_headers).json()
    assert booking["start"].startswith("2027-03-05T10:00:00") and booking["sequence"] == 1


def test_tampered_and_unknown_links_get_a_page_not_a_500(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    client, _ = booked(runtime, admin_headers)
    for path in ("/reschedule?r=", "/approve?t=", "/decline?t="):
        for token in ("", "x", "A" * 200, "%00%ff"):
            page = client.get(path + token)
            assert page.status_code in (404, 410), (path, token, page.status_code)
            assert "<html" in page.text
    guest_mail = next(r for r in outbox(runtime) if r.recipient == GUEST)
    token = unquote(links(guest_mail)["reschedule"])
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.get("/reschedule", params={"r": tampered}).status_code == 404


def test_cancel_sends_cancel_to_both(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    client, booking_id = booked(runtime, admin_headers)
    cancelled = client.post(f"/api/v1/bookings/{booking_id}/cancel", headers=admin_headers)
    assert cancelled.status_code == 200, cancelled.text
    cancels = [r for r in outbox(runtime) if r.method == "CANCEL"]
    assert sorted(r.recipient for r in cancels) == [HOST, GUEST]
    assert all(r.sequence == 1 for r in cancels)
    assert all(b"STATUS:CANCELLED" in r.mime or b"CANCELLED" in r.mime for r in cancels)


def test_expired_links_get_a_friendly_page_with_a_fresh_link(
    runtime: Runtime, admin_headers
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from sqlalchemy import select

    from core.db.models import Proposal
    from core.services.proposals import expire_proposals

    runtime.settings = runtime.settings.model_copy(update={"proposal_ttl_hours": 1})
    client, _ = booked(runtime, admin_headers)
    guest_mail = next(r for r in outbox(runtime) if r.recipient == GUEST)
    token = unquote(links(guest_mail)["reschedule"])
    client.post(
        "/api/v1/reschedule/propose",
        json={"token": token, "start": "2027-03-04T10:00:00Z", "end": "2027-03-04T10:30:00Z"},
    )
    approval = next(r for r in outbox(runtime) if r.kind == "notice.approval_request")
    runtime.clock.now += timedelta(hours=2)  # type: ignore[attr-defined]
    with runtime.sessions.begin() as session:
        assert expire_proposals(session, runtime.clock()) == 1
    with runtime.sessions() as session:
        assert session.scalars(select(Proposal.status)).one() == "expired"
    page = client.get("/approve", params={"t": unquote(links(approval)["approve"])})
    assert page.status_code == 410
    assert "expired" in page.text
    assert "/reschedule?r=" in page.text  # a fresh "request a new time" button
