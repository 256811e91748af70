"""Shared set-up for the CalDAV scheduling tests: providers made over the HTTP API, their
app passwords, raw WebDAV requests and bookings made as a guest would."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import httpx

from tests.integration.api.helpers import HOURS

DAV = "DAV:"
CAL = "urn:ietf:params:xml:ns:caldav"
NS = f'xmlns:D="{DAV}" xmlns:C="{CAL}"'


def make_provider(
    api: httpx.Client, slug: str, *, tenant: str | None = None, kind: str = "person"
) -> dict[str, Any]:
    """A provider with weekday hours 09–17 Berlin and an app password, over the API."""
    headers = {"X-Parley-Tenant": tenant} if tenant else {}
    body = {"name": slug.title(), "email": f"{slug}@example.org",
            "timezone": "Europe/Berlin", "slug": slug, "kind": kind}  # fmt: skip
    created = api.post("/api/v1/providers", json=body, headers=headers)
    assert created.status_code == 201, created.text
    provider_id = created.json()["id"]
    hours = api.put(f"/api/v1/providers/{provider_id}/availability", json=HOURS, headers=headers)
    assert hours.status_code == 200, hours.text
    issued = api.post(
        f"/api/v1/providers/{provider_id}/app-passwords", json={"label": "app"}, headers=headers
    )
    assert issued.status_code == 201, issued.text
    return {**issued.json(), "id": provider_id, "email": body["email"], "headers": headers}


def book(api: httpx.Client, provider_id: str, start: str, end: str, *, confirm: bool = True) -> str:
    """A hold made as a guest (no key), confirmed into a booking unless ``confirm`` is False."""
    body = {"provider_id": provider_id, "start": start, "end": end,
            "guest_email": "grace.secret@guest.example", "guest_name": "Grace"}  # fmt: skip
    hold = api.post("/api/v1/holds", json=body, headers={"Authorization": ""})
    assert hold.status_code == 201, hold.text
    if not confirm:
        return str(hold.json()["id"])
    confirmed = api.post(
        f"/api/v1/holds/{hold.json()['id']}/confirm", headers={"Authorization": ""}
    )
    assert confirmed.status_code == 201, confirmed.text
    return str(confirmed.json()["booking"]["id"])


def dav_client(base: str, who: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=f"{base}/dav", auth=(who["username"], who["password"]), timeout=30)


def propfind(client: httpx.Client, path: str, *props: str, depth: str = "0") -> httpx.Response:
    inner = "".join(f"<{p}/>" for p in props)
    body = f'<?xml version="1.0"?><D:propfind {NS}><D:prop>{inner}</D:prop></D:propfind>'
    return client.request(
        "PROPFIND", path, content=body, headers={"Depth": depth, "Content-Type": "application/xml"}
    )


def found(answer: httpx.Response, href: str) -> dict[str, ET.Element]:
    """The 200 properties of ``href`` in a multistatus answer, by Clark name."""
    root = ET.fromstring(answer.content)
    for response in root.iter(f"{{{DAV}}}response"):
        if response.findtext(f"{{{DAV}}}href") != href:
            continue
        props: dict[str, ET.Element] = {}
        for propstat in response.iter(f"{{{DAV}}}propstat"):
            holder = propstat.find(f"{{{DAV}}}prop")
            if holder is not None and " 200 " in (propstat.findtext(f"{{{DAV}}}status") or ""):
                props.update((prop.tag, prop) for prop in holder)
        return props
    raise LookupError(f"{href} not in {answer.text}")


def hrefs(element: ET.Element) -> list[str]:
    return [h.text or "" for h in element.iter(f"{{{DAV}}}href")]


def c(name: str) -> str:
    return f"{{{CAL}}}{name}"


def d(name: str) -> str:
    return f"{{{DAV}}}{name}"
