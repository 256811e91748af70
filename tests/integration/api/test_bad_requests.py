"""Every scheduling endpoint answers bad input with a 4xx JSON error, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from core.runtime import Runtime
from tests.integration.api.helpers import client_for, hold_body, make_provider

MON = "2027-03-08"
GOOD_SLOTS = {"start": f"{MON}T00:00:00Z", "end": f"{MON}T23:00:00Z", "duration": "30"}

# (method, path template, query or None, JSON body or raw bytes or None, admin?)
CASES: list[tuple[str, str, Any, Any, bool]] = [
    ("POST", "/providers", None, b"{not json", True),
    ("POST", "/providers", None, b"[1, 2]", True),
    (
        "POST",
        "/providers",
        None,
        {"name": "X", "email": "x@example.org", "timezone": "Mars/Base", "slug": "x"},
        True,
    ),
    (
        "POST",
        "/providers",
        None,
        {"name": "X", "email": "x@example.org", "timezone": "UTC", "slug": "Bad Slug!"},
        True,
    ),
    (
        "POST",
        "/providers",
        None,
        {"name": "X", "email": "not-an-email", "timezone": "UTC", "slug": "x"},
        True,
    ),
    (
        "POST",
        "/providers",
        None,
        {"name": 5, "email": "x@example.org", "timezone": "UTC", "slug": "x"},
        True,
    ),
    ("POST", "/providers", None, {"name": "X"}, True),
    ("GET", "/providers/prv_nope", None, None, True),
    ("PUT", "/providers/{p}/availability", None, {"timezone": "Nowhere/Zone"}, True),
    (
        "PUT",
        "/providers/{p}/availability",
        None,
        {"weekly": [{"days": ["mon"], "start": "17:00", "end": "09:00"}]},
        True,
    ),
    (
        "PUT",
        "/providers/{p}/availability",
        None,
        {"weekly": [{"days": ["funday"], "start": "09:00", "end": "17:00"}]},
        True,
    ),
    (
        "PUT",
        "/providers/{p}/availability",
        None,
        {"weekly": [{"days": ["mon"], "start": "9am", "end": "17:00"}]},
        True,
    ),
    (
        "PUT",
        "/providers/{p}/availability",
        None,
        {"exceptions": [{"date": "2027-02-30", "kind": "unavailable"}]},
        True,
    ),
    (
        "PUT",
        "/providers/{p}/availability",
        None,
        {"exceptions": [{"date": "2027-03-01", "kind": "maybe"}]},
        True,
    ),
    (
        "PUT",
        "/providers/{p}/availability",
        None,
        {"exceptions": [{"date": "2027-03-01", "kind": "available"}]},
        True,
    ),
    (
        "PUT",
        "/providers/{p}/availability",
        None,
        {"vacations": [{"from": "2027-08-14", "to": "2027-08-01"}]},
        True,
    ),
    ("PUT", "/providers/{p}/availability", None, {"slot_step_minutes": 0}, True),
    ("PUT", "/providers/{p}/availability", None, {"lead_time_hours": "24"}, True),
    ("PUT", "/providers/{p}/availability", None, {"instant_book": "yes"}, True),
    ("PUT", "/providers/prv_nope/availability", None, {}, True),
    ("GET", "/providers/{p}/slots", {}, None, False),
    ("GET", "/providers/{p}/slots", {**GOOD_SLOTS, "start": "tomorrow"}, None, False),
    ("GET", "/providers/{p}/slots", {**GOOD_SLOTS, "start": f"{MON}T00:00:00"}, None, False),
    ("GET", "/providers/{p}/slots", {**GOOD_SLOTS, "start": f"{MON}T25:00:00Z"}, None, False),
    ("GET", "/providers/{p}/slots", {**GOOD_SLOTS, "end": f"{MON}T00:00:00Z"}, None, False),
    ("GET", "/providers/{p}/slots", {**GOOD_SLOTS, "end": "2029-03-08T00:00:00Z"}, None, False),
    ("GET", "/providers/{p}/slots", {**GOOD_SLOTS, "duration": "15"}, None, False),
    ("GET", "/providers/{p}/slots", {**GOOD_SLOTS, "duration": "-30"}, None, False),
    ("GET", "/providers/{p}/slots", {**GOOD_SLOTS, "duration": "half"}, None, False),
    ("GET", "/providers/prv_nope/slots", GOOD_SLOTS, None, False),
    ("GET", "/providers/{p}/slots/explain", {"at": "noon", "duration": "30"}, None, False),
    (
        "GET",
        "/providers/{p}/slots/explain",
        {"at": f"{MON}T09:00:00", "duration": "30"},
        None,
        False,
    ),
    ("GET", "/providers/{p}/slots/explain", {"at": f"{MON}T09:00:00Z"}, None, False),
    ("POST", "/holds", None, b"", False),
    ("POST", "/holds", None, b"\xff\xfe", False),
    ("POST", "/holds", None, {"provider_id": "{p}", "start": f"{MON}T09:00:00Z"}, False),
    ("POST", "/holds", None, hold_body("{p}", f"{MON}T09:00:00", f"{MON}T09:00:00Z"), False),
    ("POST", "/holds", None, hold_body("{p}", f"{MON}T10:00:00Z", f"{MON}T09:00:00Z"), False),
    ("POST", "/holds", None, hold_body("{p}", f"{MON}T09:00:00Z", f"{MON}T09:00:00Z"), False),
    ("POST", "/holds", None, hold_body("{p}", f"{MON}T09:00:00Z", f"{MON}T09:15:00Z"), False),
    ("POST", "/holds", None, hold_body("{p}", f"{MON}T20:00:00Z", f"{MON}T20:30:00Z"), False),
    ("POST", "/holds", None, hold_body("prv_nope", f"{MON}T09:00:00Z", f"{MON}T09:30:00Z"), False),
    (
        "POST",
        "/holds",
        None,
        {"provider_id": "{p}", "start": 1, "end": 2, "guest_email": "g@example.net"},
        False,
    ),
    (
        "POST",
        "/holds",
        None,
        {
            "provider_id": "{p}",
            "start": f"{MON}T09:00:00Z",
            "end": f"{MON}T09:30:00Z",
            "guest_email": "nobody",
        },
        False,
    ),
    ("GET", "/holds/hld_nope", None, None, False),
    ("POST", "/holds/hld_nope/confirm", None, None, False),
    ("POST", "/holds/hld_nope/confirm", None, b"{", False),
    ("GET", "/bookings/bkg_nope", None, None, True),
    ("POST", "/bookings/bkg_nope/cancel", None, None, True),
    ("POST", "/bookings/bkg_nope/approve", None, None, True),
    ("POST", "/bookings/bkg_nope/decline", None, None, True),
    (
        "POST",
        "/bookings/bkg_nope/reschedule",
        None,
        {"start": f"{MON}T09:00:00Z", "end": f"{MON}T09:30:00Z"},
        True,
    ),
    ("POST", "/bookings/bkg_nope/reschedule", None, {"start": f"{MON}T09:00:00Z"}, True),
    ("POST", "/bookings/bkg_nope/reschedule", None, b"nope", True),
    ("GET", "/bookings/bkg_nope/reschedule-candidates", {"start": "x", "end": "y"}, None, True),
    ("GET", "/bookings/bkg_nope/reschedule-candidates", GOOD_SLOTS, None, True),
    ("GET", "/bookings/bkg_nope", None, None, False),
    ("PUT", "/providers/{p}/availability", None, {}, False),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_bad_request_gets_a_json_4xx(
    case: int, runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    method, path, query, body, admin = CASES[case]
    client = client_for(runtime)
    provider = make_provider(client, admin_headers)
    kwargs: dict[str, Any] = {"headers": admin_headers if admin else {}}
    if query is not None:
        kwargs["params"] = query
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = _fill(body, provider)
    answer = client.request(method, "/api/v1" + path.replace("{p}", provider), **kwargs)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    error = answer.json()["error"]
    assert error["code"] and error["message"]


def _fill(body: Any, provider: str) -> Any:
    if isinstance(body, dict):
        return {k: _fill(v, provider) for k, v in body.items()}
    return body.replace("{p}", provider) if isinstance(body, str) else body
