"""Hypothesis-driven input to the public endpoints: never a 5xx, whatever arrives.

Random JSON values and near-valid bodies (NUL and lone surrogates in strings, huge and
non-finite numbers, deep nesting, dates from year 1 to 9999, wrong types) to POST /holds,
confirm, the reschedule proposal, the slot queries and the booking page's forms. In-process
(the ASGI app through Starlette's test client) for the volume; test_edge.py sends the same
kinds of input over a real uvicorn connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.runtime import Runtime
from tests.integration.negotiation.helpers import GUEST, booked, links, outbox

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EDGE_TIMES = [
    "9999-12-31T23:30:00Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "2027-02-30T10:00:00Z",
    "2027-03-02T24:00:00Z",
    "2027-03-02T10:00:00",
    "2027-03-02 10:00 01:00",
    "",
]


@dataclass
class Target:
    client: Any
    provider_id: str
    hold_id: str
    token: str


@pytest.fixture
def target(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[Target]:
    runtime.settings = runtime.settings.model_copy(update={"public_rate_limit_per_minute": 0})
    client, booking_id = booked(runtime, admin_headers)
    provider_id = client.get(f"/api/v1/bookings/{booking_id}", headers=admin_headers).json()[
        "provider_id"
    ]
    hold = client.post(
        "/api/v1/holds",
        json={
            "provider_id": provider_id,
            "start": "2027-03-03T09:00:00Z",
            "end": "2027-03-03T09:30:00Z",
            "guest_email": GUEST,
        },
    )
    assert hold.status_code == 201, hold.text
    guest_mail = next(r for r in outbox(runtime) if r.recipient == GUEST)
    token = unquote(links(guest_mail)["reschedule"])
    with client:
        yield Target(client, provider_id, hold.json()["id"], token)


texts = st.text(st.characters(exclude_categories=()), max_size=40)  # NUL, surrogates too
url_texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)  # NUL too
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([10**400, -(10**400), 1e308]),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


def _instant(moment: datetime, offset_minutes: int) -> str:
    return moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat()


instants = st.one_of(
    st.builds(
        _instant,
        st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
        st.integers(min_value=-23 * 60, max_value=23 * 60),
    ),
    st.datetimes(
        min_value=datetime(2027, 3, 1), max_value=datetime(2027, 6, 1), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.sampled_from(EDGE_TIMES),
    texts,
)
url_instants = instants.map(lambda text: text.encode("utf-8", "replace").decode())
field_values = st.one_of(instants, json_values)


def _mutated(fields: dict[str, Any], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The endpoint's own fields, each kept or replaced by a random value, a few left out."""
    each = {
        name: st.one_of(st.just(value), st.just(value), values) for name, value in fields.items()
    }
    dropped = st.sets(st.sampled_from(sorted(fields)), max_size=2)
    return st.tuples(st.fixed_dictionaries(each), dropped).map(
        lambda pair: {k: v for k, v in pair[0].items() if k not in pair[1]}
    )


def _raw_bodies() -> st.SearchStrategy[bytes]:
    deep = st.integers(min_value=1, max_value=100_000).map(lambda n: b"[" * n + b"]" * n)
    deep_objects = st.integers(min_value=1, max_value=5_000).map(
        lambda n: b'{"a":' * n + b"1" + b"}" * n
    )
    literal = st.sampled_from(
        [b"NaN", b'{"start": Infinity}', b"1" * 5000, b"\xff\xfe", b'{"a": "\\u0000"}', b""]
    )
    return st.one_of(deep, deep_objects, literal, st.binary(max_size=200))


def _bodies(fields: dict[str, Any]) -> st.SearchStrategy[tuple[str, Any]]:
    near = _mutated(fields, field_values).map(lambda v: ("json", v))
    anything = json_values.map(lambda v: ("json", v))
    return st.one_of(near, near, near, anything, _raw_bodies().map(lambda b: ("content", b)))


def _post(target: Target, path: str, body: tuple[str, Any]) -> Any:
    kind, value = body
    content = json.dumps(value).encode() if kind == "json" else value
    headers = {"content-type": "application/json"}
    return target.client.post(path, content=content, headers=headers)


def _no_5xx(answer: Any) -> None:
    assert answer.status_code < 500, (answer.request.url, answer.status_code, answer.text[:500])


def _fuzz_post(target: Target, path: str, fields: dict[str, Any]) -> None:
    """Fuzzed bodies near fields (and anything else) posted to path: never a 5xx."""

    @FUZZ
    @given(body=_bodies(fields))
    def run(body: tuple[str, Any]) -> None:
        _no_5xx(_post(target, path, body))

    run()


def test_post_holds(target: Target) -> None:
    fields = {
        "provider_id": target.provider_id,
        "start": "2027-03-04T09:00:00Z",
        "end": "2027-03-04T09:30:00Z",
        "guest_email": "fuzz@example.net",
        "guest_name": "Fuzz",
        "guest_timezone": "Europe/Berlin",
        "idempotency_key": "k",
    }
    _fuzz_post(target, "/api/v1/holds", fields)


def test_confirm_hold(target: Target) -> None:
    fields = {"guest_email": "fuzz@example.net", "guest_name": "Fuzz"}

    @FUZZ
    @given(hold_id=st.one_of(st.just(target.hold_id), url_texts), body=_bodies(fields))
    def run(hold_id: str, body: tuple[str, Any]) -> None:
        path = f"/api/v1/holds/{quote(hold_id, safe='') or 'x'}/confirm"
        _no_5xx(_post(target, path, body))

    run()


def test_slot_queries(target: Target) -> None:
    fields = {
        "start": "2027-03-04T00:00:00Z",
        "end": "2027-03-11T00:00:00+01:00",
        "at": "2027-03-04T09:00:00Z",
        "duration": "30",
    }
    values = st.one_of(url_instants, url_texts, st.integers(-(10**20), 10**20).map(str))
    params = _mutated(fields, values)

    @FUZZ
    @given(params=params, explain=st.booleans(), provider=st.sampled_from([True, False]))
    def run(params: dict[str, str], explain: bool, provider: bool) -> None:
        provider_id = target.provider_id if provider else "prv_nope"
        path = f"/api/v1/providers/{provider_id}/slots" + ("/explain" if explain else "")
        _no_5xx(target.client.get(path, params=params))

    run()


def test_reschedule_propose(target: Target) -> None:
    fields = {
        "token": target.token,
        "start": "2027-03-05T13:00:00Z",
        "end": "2027-03-05T13:30:00Z",
        "note": "later please",
    }
    _fuzz_post(target, "/api/v1/reschedule/propose", fields)


def test_booking_page_and_its_forms(target: Target) -> None:
    fields = {
        "start": "2027-03-04T09:00:00Z",
        "end": "2027-03-04T09:30:00Z",
        "tz": "Europe/Berlin",
        "name": "Fuzz",
        "email": "fuzz@example.net",
        "slot": "2027-03-05T13:00:00+00:00",
        "date": "2027-03-05",
        "time": "14:00",
    }
    form_values = _mutated(fields, st.one_of(url_instants, url_texts))
    pages = st.sampled_from(
        ["/book/ada", "/book/ada/hold", f"/book/ada/hold/{target.hold_id}", "/reschedule"]
    )

    @FUZZ
    @given(page=pages, form=form_values, query=form_values, from_=url_instants)
    def run(page: str, form: dict[str, str], query: dict[str, str], from_: str) -> None:
        if page == "/book/ada":
            answer = target.client.get(page, params={**query, "from": from_[:10]})
        else:
            if page == "/reschedule":
                form = {"r": target.token, **form}
            answer = target.client.post(page, data=form, follow_redirects=False)
        _no_5xx(answer)

    run()
