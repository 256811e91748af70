"""Hypothesis over the booking page's query parameters: whatever the address holds, the
answer is an HTML page (200, or a 4xx error page), never a 500 or JSON, and ``?m=`` never
prints its text. The ASGI app in-process through Starlette's test client, for the volume."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.runtime import Runtime
from tests.integration.api.helpers import client_for, make_provider

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)  # NUL too
dates = st.one_of(
    st.dates().map(lambda d: d.isoformat()),  # year 1 to 9999
    st.sampled_from(["2027-03-02", "2027-04-30", "2027-05-01", "2027-02-30", "2027-3-2"]),
    texts,
)
VALUES: dict[str, Any] = {
    "day": dates,
    "from": dates,
    "view": st.one_of(st.sampled_from(["week", "month", "Month", "year", ""]), texts),
    "h": st.one_of(st.sampled_from(["12", "24", "0", "12 ", "-24"]), texts),
    "tz": st.one_of(
        st.sampled_from(["UTC", "Asia/Tokyo", "Factory", "W-SU", "Etc/GMT-14", "EST", ""]), texts
    ),
    "auto": st.sampled_from(["1", "0", ""]),
    "m": st.one_of(st.sampled_from(["taken", "expired", "slow_down"]), texts),
    "duration": st.one_of(st.sampled_from(["30", "45", "0", "-5", "1e9"]), texts),
}
queries = st.fixed_dictionaries({}, optional=VALUES)


@pytest.fixture
def client(runtime: Runtime, admin_headers: dict[str, str]) -> Iterator[Any]:
    runtime.settings = runtime.settings.model_copy(update={"public_rate_limit_per_minute": 0})
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")  # no meeting types
    provider = make_provider(client, admin_headers, slug="bea")
    kind = {"slug": "planning", "title": "Planning", "durations": [30, 45]}
    made = client.post(
        f"/api/v1/providers/{provider}/meeting-types", json=kind, headers=admin_headers
    )
    assert made.status_code == 201, made.text
    with client:
        yield client


def test_no_query_makes_a_500_or_prints_the_message_text(client: Any) -> None:
    paths = ["/book/ada", "/book/bea", "/book/bea/planning", "/book/bea/nothing", "/book/nobody"]

    @FUZZ
    @given(query=queries, path=st.sampled_from(paths))
    def run(query: dict[str, str], path: str) -> None:
        answer = client.get(path, params=query)
        assert answer.status_code in (200, 400, 404), (query, answer.status_code)
        assert answer.headers["content-type"].startswith("text/html"), query
        assert '{"error"' not in answer.text
        message = query.get("m", "")
        if len(message) > 3 and message not in ("taken", "expired", "slow_down"):
            assert 'role="alert"' not in answer.text, query

    run()
