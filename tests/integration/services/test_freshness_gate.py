"""The freshness gate: while an imported calendar is stale, instant book turns into a request."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from core.db.models import ExternalSource
from core.runtime import Runtime
from tests.integration.api.helpers import client_for, hold_body, make_provider


def _book(client, provider_id: str, start: str, end: str) -> dict:  # type: ignore[no-untyped-def]
    hold = client.post("/api/v1/holds", json=hold_body(provider_id, start, end))
    assert hold.status_code == 201, hold.text
    confirmed = client.post(f"/api/v1/holds/{hold.json()['id']}/confirm")
    assert confirmed.status_code == 201, confirmed.text
    return dict(confirmed.json()["booking"])


def test_stale_source_pauses_instant_book_until_it_syncs(runtime: Runtime, admin_headers) -> None:  # type: ignore[no-untyped-def]
    client = client_for(runtime)
    provider_id = make_provider(client, admin_headers)
    added = client.post(
        f"/api/v1/providers/{provider_id}/sources",
        json={"url": "http://127.0.0.1:9/never-synced.ics", "kind": "ics"},
        headers=admin_headers,
    )
    assert added.status_code == 201, added.text
    # Never synced: Parley does not know that calendar's busy time yet.
    first = _book(client, provider_id, "2027-03-02T09:00:00Z", "2027-03-02T09:30:00Z")
    assert first["status"] == "requested"

    now = runtime.clock()
    with runtime.sessions.begin() as session:
        session.execute(
            update(ExternalSource).values(last_success_at=now - timedelta(minutes=5), status="ok")
        )
    fresh = _book(client, provider_id, "2027-03-02T10:00:00Z", "2027-03-02T10:30:00Z")
    assert fresh["status"] == "confirmed"

    with runtime.sessions.begin() as session:
        session.execute(update(ExternalSource).values(last_success_at=now - timedelta(hours=4)))
    stale = _book(client, provider_id, "2027-03-02T11:00:00Z", "2027-03-02T11:30:00Z")
    assert stale["status"] == "requested"
