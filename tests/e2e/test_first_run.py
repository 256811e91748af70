"""A newcomer's first run: the landing page at /, `parley demo` in local times with the way
to sign in, `parley provider add`, and a new provider's home asking for hours first.

The commands run as real subprocesses on a data folder; what they made is then read over
HTTP (the app on the same folder), as a user would see it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.formatting import format_datetime
from core.runtime import Runtime, open_runtime
from core.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.e2e.helpers import PARLEY, parley_env, serving
from tests.integration.api.helpers import HOURS, TestClient, client_for, make_provider
from tests.integration.me.helpers import sign_in
from web.app import create_app

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def test_the_landing_page_says_what_this_is_and_lists_no_provider(
    runtime: Runtime, admin_headers: dict[str, str]
) -> None:
    # Catches: `/` answering a bare "Not Found", or naming who uses this server.
    client = client_for(runtime)
    make_provider(client, admin_headers, slug="ada")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<h1>Parley scheduling</h1>" in html and "prefers-color-scheme: dark" in html
    for link in ('href="/me"', 'href="/api/v1/openapi.json"', 'href="/healthz"'):
        assert link in html, link
    assert "Ada Host" not in html and "/book/ada" not in html
    assert client.head("/").status_code == 200
    for path in ("/me", "/api/v1/openapi.json", "/healthz"):
        assert client.get(path).status_code == 200, path


def _run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = parley_env(data)
    return subprocess.run(
        [*PARLEY, *args], env=env, cwd=data.parent, capture_output=True, text=True, timeout=120
    )


@contextmanager
def _app_on(make_settings: Callable[..., Settings], data: Path) -> Iterator[tuple[Any, Runtime]]:
    """The web app on the data folder the command wrote (its SQLite database)."""
    settings = make_settings(data_dir=data)
    runtime = open_runtime(settings)
    try:
        with TestClient(create_app(settings, runtime=runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


@pytest.mark.slow
def test_demo_prints_local_times_and_how_to_sign_in(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    # Catches: UTC ISO times, no /me hint and no address to sign in with.
    data = tmp_path / "data"
    with serving(data, tmp_path) as (env, base):
        result = subprocess.run(
            [*PARLEY, "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert f"{base}/book/demo" in out
    assert f"open {base}/me" in out and "enter dana@demo.parley.localhost" in out
    found = re.search(r"Demo booking: +(\S+) on (.+) \(Europe/Berlin\)", out)
    assert found, out
    assert "+00:00" not in out and not re.search(r"\d{4}-\d{2}-\d{2}T", out)
    with _app_on(make_settings, data) as (app, _):
        booking = app.get(f"/api/v1/bookings/{found[1]}", headers=ADMIN)
        assert booking.status_code == 200, booking.text
    start = datetime.fromisoformat(booking.json()["start"]).astimezone(ZoneInfo("Europe/Berlin"))
    assert found[2] == format_datetime(start, "Europe/Berlin")  # "Thu, 3 Dec 2026, 11:00 CET"
    assert found[2].endswith((" CET", " CEST"))


@pytest.mark.slow
def test_provider_add_then_sign_in_and_set_hours(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    data = tmp_path / "data"
    args = ["--name", "Noor Host", "--email", "noor@example.org", "--slug", "noor"]
    made = _run(data, "provider", "add", *args, "--timezone", "Asia/Dubai")
    assert made.returncode == 0, made.stderr[-2000:]
    provider_id = re.search(r"Provider: +(prv_\w+)", made.stdout)
    assert provider_id, made.stdout
    assert "Booking page: http://127.0.0.1:8000/book/noor" in made.stdout
    assert "sign in at http://127.0.0.1:8000/me with noor@example.org" in made.stdout
    again = _run(data, "provider", "add", *args, "--timezone", "Asia/Dubai")
    assert again.returncode == 1 and "already taken" in again.stderr
    assert "Traceback" not in again.stderr
    bad = _run(data, "provider", "add", *args[:-1], "other", "--timezone", "Mars/Olympus")
    assert bad.returncode == 1 and "unknown time zone 'Mars/Olympus'" in bad.stderr
    assert _run(data, "provider", "add", "--name", "X").returncode == 2
    with _app_on(make_settings, data) as (app, runtime):
        page = app.get("/book/noor")
        assert page.status_code == 200 and "Book a time with Noor Host" in page.text
        assert 'id="no-times"' in page.text
        sign_in(app, runtime, "noor@example.org")
        home = app.get("/me").text
        assert "Set your hours to start taking bookings" in home
        assert re.search(r'id="set-hours".*href="/me/availability"', home)
        hours = {**HOURS, "timezone": "Asia/Dubai", "lead_time_hours": 0}
        put = app.put(f"/api/v1/providers/{provider_id[1]}/availability", json=hours, headers=ADMIN)
        assert put.status_code == 200, put.text
        assert "Set your hours" not in app.get("/me").text
        assert 'id="no-times"' not in app.get("/book/noor").text
