"""Booking pages answer unknown slugs and holds with an HTML error page, never JSON."""

from __future__ import annotations

from core.runtime import Runtime
from tests.integration.api.helpers import client_for, hold_body, make_provider


def test_unknown_slug_and_hold_get_an_html_404(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    hold = client.post(
        "/api/v1/holds", json=hold_body(provider, "2027-03-08T09:00:00Z", "2027-03-08T10:00:00Z")
    ).json()["id"]
    for path in (
        "/book/nobody",
        "/book/ada/hold/hld_unknown",
        "/book/ada/done/hld_unknown",
        "/book/nobody/hold/" + hold,
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert "Page not found" in answer.text and '"error"' not in answer.text
    assert client.get(f"/book/ada/hold/{hold}").status_code == 200


def test_done_page_of_an_unconfirmed_hold_is_an_html_error(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    hold = client.post(
        "/api/v1/holds", json=hold_body(provider, "2027-03-08T09:00:00Z", "2027-03-08T10:00:00Z")
    ).json()["id"]
    answer = client.get(f"/book/ada/done/{hold}")
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith("text/html")
    assert "not booked" in answer.text and 'href="/book/ada"' in answer.text
