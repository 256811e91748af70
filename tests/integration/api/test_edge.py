"""The web edge over real HTTP (uvicorn): bad input is a 4xx, an error keeps the keep-alive
connection usable, X-Forwarded-For counts only from trusted proxies, and dead or missing
database connections are replaced or answered 503, never a 500 or a reset.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import structlog

from core.runtime import Runtime, open_runtime
from core.services import holds
from core.settings import Secrets
from tests.conftest import ADMIN_TOKEN, free_port
from tests.integration.api.helpers import Clock, hold_body, make_provider, served
from tests.pg import terminate_backends

MON = "2027-03-08"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _slot(i: int) -> tuple[str, str]:
    hour, half = divmod(i, 2)
    start = f"{MON}T{8 + hour:02d}:{30 * half:02d}:00Z"
    hour, half = divmod(i + 1, 2)
    return start, f"{MON}T{8 + hour:02d}:{30 * half:02d}:00Z"


def _bad_requests(provider_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Each of these answered 500 once, and reset the next request on the connection."""
    start, end = _slot(0)
    nul_name = hold_body(provider_id, start, end, guest_name="Ann\x00")
    return [
        ("POST", "/api/v1/holds", {"content": b"[" * 100_000 + b"]" * 100_000}),
        ("POST", "/api/v1/holds", {"content": b'{"a":' * 50 + b"1" + b"}" * 50}),
        ("POST", "/api/v1/holds", {"json": nul_name}),
        ("POST", "/api/v1/holds", {"content": b'{"provider_id": "\\ud800"}'}),
        ("POST", "/api/v1/holds", {"content": b'{"provider_id": NaN}'}),
        ("POST", "/api/v1/holds/hld_x/confirm", {"json": {"guest_name": "\x00"}}),
        (
            "GET",
            f"/api/v1/providers/{provider_id}/slots/explain",
            {"params": {"at": "9999-12-31T23:30:00Z", "duration": "30"}},
        ),
        (
            "GET",
            f"/api/v1/providers/{provider_id}/slots",
            {"params": {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z"}},
        ),
        ("GET", "/api/v1/providers/%00%00", {"headers": ADMIN}),
        ("GET", "/api/v1/holds/%00", {}),
        ("GET", "/book/ada", {"params": {"tz": "\x00"}}),
        ("POST", "/book/ada/hold", {"content": b"start=%00&end=x", "headers": _FORM}),
        ("POST", "/reschedule", {"data": {"r": "x\x00y"}}),
    ]


_FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_bad_input_is_a_4xx_and_the_connection_stays_usable(runtime: Runtime) -> None:
    runtime.clock = Clock()
    with served(runtime) as base, httpx.Client(base_url=base, timeout=20) as client:
        provider_id = make_provider(client, ADMIN)
        for method, path, kwargs in _bad_requests(provider_id):
            answer = client.request(method, path, **kwargs)
            assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
            if path.startswith("/api/"):
                assert set(answer.json()["error"]) == {"code", "message"}
            # The same connection answers the next request.
            assert client.get("/healthz").status_code == 200, path


def test_far_dates_on_the_booking_page_are_clamped(runtime: Runtime) -> None:
    runtime.clock = Clock()
    with served(runtime) as base, httpx.Client(base_url=base, timeout=20) as client:
        make_provider(client, ADMIN)
        for far in ("9999-12-25", "0001-01-01", "2201-01-01"):
            page = client.get("/book/ada", params={"from": far})
            assert page.status_code == 400, (far, page.text[:300])
            assert page.headers["content-type"].startswith("text/html")
            assert "That date cannot be booked" in page.text


def test_a_bare_app_password_post_means_an_empty_object(runtime: Runtime) -> None:
    runtime.clock = Clock()
    with served(runtime) as base, httpx.Client(base_url=base, timeout=20) as client:
        provider_id = make_provider(client, ADMIN)
        issued = client.post(f"/api/v1/providers/{provider_id}/app-passwords", headers=ADMIN)
        assert issued.status_code == 201, issued.text
        assert issued.json()["password"]
        # Required fields still are: an empty body to POST /providers names what is missing.
        missing = client.post("/api/v1/providers", headers=ADMIN)
        assert missing.status_code == 400
        assert "name" in missing.json()["error"]["message"]


def test_an_unexpected_exception_is_one_logged_500_and_the_connection_stays(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.clock = Clock()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /srv/parley")

    with served(runtime) as base, httpx.Client(base_url=base, timeout=20) as client:
        provider_id = make_provider(client, ADMIN)
        monkeypatch.setattr(holds, "get_hold", broken)
        monkeypatch.setattr(
            "web.pages.booking.providers.get_provider_by_slug", broken, raising=True
        )
        with structlog.testing.capture_logs() as logs:
            api = client.get("/api/v1/holds/hld_anything")
            assert client.get("/healthz").status_code == 200
            page = client.get("/book/ada")
            assert client.get(f"/api/v1/providers/{provider_id}", headers=ADMIN).status_code == 200
        assert api.status_code == 500
        assert api.json() == {
            "error": {"code": "internal", "message": "internal error; it has been logged"}
        }
        assert page.status_code == 500
        assert page.headers["content-type"].startswith("text/html")
        for body in (api.text, page.text):
            assert "secret internals" not in body and "RuntimeError" not in body
        unhandled = [e for e in logs if e["event"] == "http.unhandled"]
        assert len(unhandled) == 2
        assert all(isinstance(e["exc_info"], RuntimeError) for e in unhandled)


def _limited(runtime: Runtime, **settings: Any) -> None:
    runtime.settings = runtime.settings.model_copy(
        update={"public_rate_limit_per_minute": 3, **settings}
    )
    runtime.clock = Clock()


def _statuses(base: str, forwarded: list[str]) -> list[int]:
    """One public call per X-Forwarded-For value, all over one connection."""
    with httpx.Client(base_url=base, timeout=20) as client:
        return [
            client.get("/api/v1/holds/hld_none", headers={"X-Forwarded-For": ip}).status_code
            for ip in forwarded
        ]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(runtime: Runtime) -> None:
    _limited(runtime)
    with served(runtime) as base:
        spoofed = [f"203.0.113.{i}" for i in range(1, 6)]
        assert _statuses(base, spoofed) == [404, 404, 404, 429, 429]


def test_forwarded_for_from_a_trusted_proxy_names_the_client(runtime: Runtime) -> None:
    _limited(runtime, trusted_proxies=["127.0.0.0/8"])
    with served(runtime) as base:
        one = ["198.51.100.7"] * 4
        assert _statuses(base, one) == [404, 404, 404, 429]
        # Another client behind the same proxy has its own budget.
        assert _statuses(base, ["198.51.100.8"]) == [404]


def _in_parallel(count: int, work: Callable[[int], list[int]]) -> list[list[int] | Exception]:
    results: list[list[int] | Exception] = [[] for _ in range(count)]

    def run(i: int) -> None:
        try:
            results[i] = work(i)
        except Exception as exc:  # a reset or no answer
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_terminated_backends_are_replaced_not_500(runtime: Runtime, db_url: str) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    runtime.clock = Clock()
    with served(runtime) as base:
        with httpx.Client(base_url=base, timeout=20) as admin:
            provider_id = make_provider(admin, ADMIN)
        query = {"start": f"{MON}T00:00:00Z", "end": f"{MON}T23:00:00Z", "duration": "30"}

        def calls(i: int) -> list[int]:
            out = []
            with httpx.Client(base_url=base, timeout=20) as client:
                start, end = _slot(i)
                held = client.post("/api/v1/holds", json=hold_body(provider_id, start, end))
                out.append(held.status_code)
                if held.status_code == 201:
                    hold_id = held.json()["id"]
                    out.append(client.get(f"/api/v1/holds/{hold_id}").status_code)
                    out.append(client.post(f"/api/v1/holds/{hold_id}/confirm").status_code)
                out.append(
                    client.get(f"/api/v1/providers/{provider_id}/slots", params=query).status_code
                )
                out.append(
                    client.get(f"/api/v1/providers/{provider_id}", headers=ADMIN).status_code
                )
                out.append(client.get("/healthz").status_code)
            return out

        warm = _in_parallel(5, calls)  # 16 half-hours on the day: 5 + 5 + 5
        assert all(isinstance(r, list) and r[0] == 201 for r in warm), warm
        for round_ in range(2):
            assert terminate_backends(db_url) >= 2  # the pool's and the hot path's
            after = _in_parallel(5, lambda i, r=round_: calls(5 + 5 * r + i))
            # The database is up again at once: every dead connection is replaced.
            assert all(isinstance(r, list) for r in after), after
            assert {s for r in after if isinstance(r, list) for s in r} <= {200, 201}, after


def test_a_database_that_is_down_answers_503(make_settings: Any) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    settings = make_settings(database_url=url)
    runtime = open_runtime(
        settings, secrets=Secrets(settings.secret_key.encode(), ADMIN_TOKEN, False)
    )
    runtime.clock = Clock()
    try:
        with served(runtime) as base, httpx.Client(base_url=base, timeout=20) as client:
            start, end = _slot(0)
            for method, path, kwargs in [
                ("POST", "/api/v1/holds", {"json": hold_body("prv_x", start, end)}),
                ("GET", "/api/v1/holds/hld_x", {}),
                ("GET", "/api/v1/providers/prv_x", {"headers": ADMIN}),
                ("GET", "/book/ada", {}),
            ]:
                answer = client.request(method, path, **kwargs)
                assert answer.status_code == 503, (path, answer.text)
                assert answer.headers["retry-after"].isdigit()
                if path.startswith("/api/"):
                    assert answer.json()["error"]["code"] == "unavailable"
            assert client.get("/healthz").status_code == 503
    finally:
        runtime.close()
