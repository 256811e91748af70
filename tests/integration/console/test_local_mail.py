"""The console's local mail folder: with no relay, an owner reads the tenant's outgoing
mail decoded, its links clickable; other tenants' mail, other roles and deployments with a
relay see none of it."""

from __future__ import annotations

import re
from collections.abc import Callable

from core.runtime import Runtime, open_runtime
from core.settings import Settings
from mailagent.outbox import deliver_outbox
from tests.integration.api.helpers import client_for
from tests.integration.console.helpers import add_operator, make_tenant, sign_in
from tests.integration.negotiation.helpers import GUEST, booked


def _folder_keys(html: str) -> list[str]:
    return re.findall(r'id="local-(\w+)"', html)


def test_an_owner_reads_the_local_folder_of_their_tenant_only(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client, _ = booked(runtime, admin_headers)  # invitations from the default organizer
    acme = make_tenant(client, admin_headers)
    add_operator(client, admin_headers, "default", "owner@example.org", "owner")
    add_operator(client, admin_headers, acme, "boss@acme.example", "owner")
    add_operator(client, admin_headers, "default", "viewer@example.org", "viewer")
    sign_in(client, runtime, "owner@example.org")
    acme_client = client_for(runtime)
    sign_in(acme_client, runtime, "boss@acme.example")  # this sign-in mail is acme's
    deliver_outbox(runtime.settings, runtime.sessions, runtime.clock)

    mailbox = client.get("/admin/mail").text
    assert 'id="tab-local"' in mailbox
    page = client.get("/admin/mail?box=local")
    assert page.status_code == 200, page.text
    mine = _folder_keys(page.text)
    assert len(mine) >= 3 and "REQUEST" in page.text  # guest and host invitations, sign-in
    assert GUEST in page.text and "boss@acme.example" not in page.text

    theirs = _folder_keys(acme_client.get("/admin/mail?box=local").text)
    assert len(theirs) == 1 and not set(theirs) & set(mine)
    assert acme_client.get(f"/admin/mail/local/{mine[0]}").status_code == 404

    guest_mail = next(
        key for key in mine
        if GUEST in client.get(f"/admin/mail/local/{key}").text.split('id="to">')[1][:200]
    )  # fmt: skip
    shown = client.get(f"/admin/mail/local/{guest_mail[:8]}")
    assert shown.status_code == 200
    assert re.search(
        r'<a href="http://[^"]+/reschedule\?r=[\w-]+" rel="noreferrer noopener"', shown.text
    )
    assert 'id="method">REQUEST' in shown.text
    for hostile in ("zz", "ffffffffffff", "%2e%2e%2fetc"):
        assert client.get(f"/admin/mail/local/{hostile}").status_code == 404, hostile

    viewer = client_for(runtime)
    sign_in(viewer, runtime, "viewer@example.org")
    assert 'id="tab-local"' not in viewer.get("/admin/mail").text
    assert viewer.get("/admin/mail?box=local").status_code == 403
    assert viewer.get(f"/admin/mail/local/{mine[0]}").status_code == 403


def test_with_a_relay_the_folder_is_not_offered(
    runtime: Runtime, admin_headers: dict[str, str], make_settings: Callable[..., Settings]
) -> None:
    client, _ = booked(runtime, admin_headers)
    add_operator(client, admin_headers, "default", "owner@example.org", "owner")
    relayed = open_runtime(
        make_settings(
            database_url=runtime.settings.database_url,
            smtp_relay_url="smtp://127.0.0.1:1",
        )
    )
    try:
        relay_client = client_for(relayed)
        sign_in(relay_client, relayed, "owner@example.org")
        assert 'id="tab-local"' not in relay_client.get("/admin/mail").text
        assert relay_client.get("/admin/mail?box=local").status_code == 403
    finally:
        relayed.close()
