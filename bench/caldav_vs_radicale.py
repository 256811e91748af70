"""CalDAV bridge vs stock Radicale (filesystem storage), both holding the same 10,000 events.

Measured in one run, median of several requests each: a 30-day calendar-query REPORT, an
unchanged sync-collection REPORT, and a PUT of one new event. Prints both times and ratios.
Run: /work/venv/bin/python bench/caldav_vs_radicale.py [--events 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import DavObject, Provider, new_id
from core.runtime import Runtime
from core.services import app_passwords, dav
from core.settings import Secrets, Settings
from tests.conftest import free_port
from web.app import create_app

FIRST = datetime(2030, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=105)  # 10,000 events cover about two years
WINDOW = (datetime(2030, 6, 1, tzinfo=UTC), datetime(2030, 7, 1, tzinfo=UTC))
FMT = "%Y%m%dT%H%M%SZ"
QUERY = (
    '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    '<D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR">'
    '<C:comp-filter name="VEVENT"><C:time-range start="{0}" end="{1}"/></C:comp-filter>'
    "</C:comp-filter></C:filter></C:calendar-query>"
)
SYNC = (
    '<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>{0}</D:sync-token>'
    "<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"
)


def event_text(n: int, start: datetime) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:ev-{n}@bench\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:{start:{FMT}}\r\n"
        f"DTEND:{start + timedelta(minutes=45):{FMT}}\r\nSUMMARY:Busy {n}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def events(count: int) -> list[tuple[str, str, datetime]]:
    return [
        (f"ev-{n}.ics", event_text(n, FIRST + n * STEP), FIRST + n * STEP) for n in range(count)
    ]


# --- stock Radicale -------------------------------------------------------------------------


def start_radicale(
    folder: Path, items: list[tuple[str, str, datetime]]
) -> tuple[subprocess.Popen[bytes], str]:
    calendar = folder / "collection-root" / "bench" / "blocks"
    calendar.mkdir(parents=True)
    (calendar.parent / ".Radicale.props").write_text("{}")
    (calendar / ".Radicale.props").write_text(json.dumps({"tag": "VCALENDAR"}))
    for href, text, _ in items:
        (calendar / href).write_text(text, newline="")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            "--storage-filesystem-folder",
            str(folder),
            "--auth-type",
            "none",
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--logging-level",
            "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_up(base + "/")
    return process, base + "/bench/blocks/"


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(url)


# --- Parley ---------------------------------------------------------------------------------


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


def start_parley(
    folder: Path, items: list[tuple[str, str, datetime]]
) -> tuple[_Server, str, tuple[str, str]]:
    url = f"sqlite:///{folder / 'parley.db'}"
    upgrade(url)
    settings = Settings(data_dir=folder, database_url=url, smtp_port=0)
    engine = make_engine(url)
    runtime = Runtime(settings, engine, make_sessionmaker(engine), Secrets(b"k" * 32, "t", False))
    now = datetime.now(UTC)
    with runtime.sessions.begin() as session:
        provider = Provider(
            id=new_id("prv"),
            name="Bench",
            slug="bench",
            email="b@example.org",
            timezone="UTC",
            dav_username="bench",
            created_at=now,
            updated_at=now,
        )
        session.add(provider)
        session.flush()
        issued = app_passwords.issue(session, provider.id, now)
        blocks = next(c for c in dav.ensure_calendars(session, provider, now) if c.name == "blocks")
        session.add_all(
            DavObject(
                calendar_id=blocks.id,
                href=href,
                uid=href[:-4] + "@bench",
                ics=text,
                etag=hashlib.sha256(text.encode()).hexdigest(),
                start_at=start,
                end_at=start + timedelta(minutes=45),
                recurring=False,
                revision=1,
                updated_at=now,
            )
            for href, text, start in items
        )
        blocks.revision = 1
    port = free_port()
    app = create_app(settings, runtime=runtime)
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}/dav/bench/blocks/", (issued.username, issued.password)


# --- measurements ---------------------------------------------------------------------------


def median_seconds(action: Callable[[int], None], runs: int) -> float:
    timings = []
    for n in range(runs):
        started = time.perf_counter()
        action(n)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def measure(base: str, auth: tuple[str, str] | None, runs: int, tag: str) -> dict[str, float]:
    client = httpx.Client(auth=auth, timeout=120)
    headers = {"Depth": "1", "Content-Type": "application/xml"}
    query = QUERY.format(WINDOW[0].strftime(FMT), WINDOW[1].strftime(FMT))

    def report(_: int) -> None:
        response = client.request("REPORT", base, content=query, headers=headers)
        assert response.status_code == 207 and response.text.count("BEGIN:VEVENT") > 300

    initial = client.request("REPORT", base, content=SYNC.format(""), headers=headers)
    token = initial.text.split("sync-token>")[1].split("<")[0]

    def sync(_: int) -> None:
        response = client.request("REPORT", base, content=SYNC.format(token), headers=headers)
        assert response.status_code == 207 and "<D:response>" not in response.text.replace(
            "ns0:", "D:"
        )

    def put(n: int) -> None:
        text = event_text(900_000 + n, WINDOW[0] + timedelta(hours=n))
        response = client.put(
            f"{base}{tag}-{n}.ics", content=text, headers={"Content-Type": "text/calendar"}
        )
        assert response.status_code == 201, response.status_code

    results = {
        "30-day calendar-query": median_seconds(report, runs),
        "unchanged sync-collection": median_seconds(sync, runs),
        "PUT into blocks": median_seconds(put, runs),
    }
    client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    items = events(args.events)
    targets = {
        "30-day calendar-query": 0.25,
        "unchanged sync-collection": 0.1,
        "PUT into blocks": 0.1,
    }
    with tempfile.TemporaryDirectory() as tmp:
        radicale, radicale_url = start_radicale(Path(tmp) / "radicale", items)
        server, parley_url, auth = start_parley(Path(tmp), items)
        try:
            stock = measure(radicale_url, None, args.runs, "r")
            ours = measure(parley_url, auth, args.runs, "p")
        finally:
            radicale.terminate()
            radicale.wait(timeout=10)
            server.should_exit = True
    print(f"{args.events} events, median of {args.runs} runs each")
    print(f"{'request':28} {'Radicale s':>11} {'Parley s':>10} {'ratio':>7} {'target':>7}")
    for name, target in targets.items():
        ratio = ours[name] / stock[name]
        verdict = "ok" if ratio <= target else "MISSED"
        limit = f"≤{target}"
        print(f"{name:28} {stock[name]:11.4f} {ours[name]:10.4f} {ratio:7.3f} {limit:>7} {verdict}")


if __name__ == "__main__":
    main()
