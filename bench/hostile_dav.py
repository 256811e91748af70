"""Hostile CalDAV requests against a real `parley serve`: time to answer and the server's
peak RSS growth during each (target for the hostile expand: <= +50 MB).

The calendar holds FREQ=SECONDLY events that began a month before the windows asked for,
and one daily event. Also measured: how long the server keeps burning CPU after a client
gives up on a heavy REPORT (work must stop when the client leaves, or soon after).
Run: .venv/bin/python bench/hostile_dav.py [--secondly 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import free_port

NS = 'xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"'
ADMIN = "bench-admin-token-0123456789abcdef"


def secondly(n: int) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:tick-{n}@bench\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300201T00000{n % 10}Z\r\n"
        "DTEND:20300201T000010Z\r\nRRULE:FREQ=SECONDLY\r\nSUMMARY:Tick\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )


DAILY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
    "UID:daily@bench\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300101T100000Z\r\n"
    "DTEND:20300101T110000Z\r\nRRULE:FREQ=DAILY\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


def expand_query(start: str, end: str) -> str:
    return (
        f'<?xml version="1.0"?><C:calendar-query {NS}><D:prop><D:getetag/><C:calendar-data>'
        f'<C:expand start="{start}" end="{end}"/></C:calendar-data></D:prop><C:filter>'
        '<C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter>'
        "</C:filter></C:calendar-query>"
    )


FREE_BUSY = (
    f'<?xml version="1.0"?><C:free-busy-query {NS}>'
    '<C:time-range start="20300304T000000Z" end="20300305T000000Z"/></C:free-busy-query>'
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, action: Callable[[], str]) -> tuple[str, float, float]:
    """(outcome, seconds, peak RSS growth in MB) of action, RSS sampled every 5 ms."""
    base = rss_kib(pid)
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        outcome = action()
    finally:
        took = time.monotonic() - started
        time.sleep(0.05)
        done.set()
        sampler.join()
    return outcome, took, (peak[0] - base) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secondly", type=int, default=5, help="FREQ=SECONDLY events")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        env.update(
            PARLEY_DATA_DIR=f"{folder}/data",
            PARLEY_HTTP_PORT=str(port),
            PARLEY_SMTP_PORT=str(free_port()),
            PARLEY_ADMIN_TOKEN=ADMIN,
            PARLEY_LOG_LEVEL="warning",
        )
        with open(f"{folder}/serve.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "parley.cli", "serve", "--no-worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            run(proc.pid, f"http://127.0.0.1:{port}", args.secondly)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def run(pid: int, base: str, hostile: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=base, timeout=120) as client:
        body = {"name": "Ada", "email": "ada@example.org", "timezone": "UTC", "slug": "ada"}
        provider = client.post("/api/v1/providers", headers=admin, json=body).json()["id"]
        issued = client.post(
            f"/api/v1/providers/{provider}/app-passwords", headers=admin, json={}
        ).json()
        client.auth = (issued["username"], issued["password"])
        assert client.request("MKCALENDAR", "/dav/ada/work/").status_code == 201
        for n in range(hostile):
            assert client.put(f"/dav/ada/work/tick-{n}.ics", content=secondly(n)).is_success
        assert client.put("/dav/ada/work/daily.ics", content=DAILY).is_success
        client.request("PROPFIND", "/dav/ada/work/", headers={"Depth": "1"})  # warm up

        def report(body: str) -> Callable[[], str]:
            headers = {"Depth": "1", "Content-Type": "application/xml"}

            def act() -> str:
                answer = client.request("REPORT", "/dav/ada/work/", content=body, headers=headers)
                return f"{answer.status_code} ({len(answer.content)} bytes)"

            return act

        def put_big(chunked: bool, size: int = 10_485_760) -> Callable[[], str]:
            folded = "\r\n ".join("x" * 74 for _ in range(size // 77))
            big = DAILY.replace("daily@bench", "big@bench").replace(
                "SUMMARY:", "DESCRIPTION:" + folded + "\r\nSUMMARY:"
            )

            def chunks() -> Iterator[bytes]:
                data = big.encode()
                for i in range(0, len(data), 65536):
                    yield data[i : i + 65536]

            def act() -> str:
                content = chunks() if chunked else big
                return str(client.put("/dav/ada/work/big.ics", content=content).status_code)

            return act

        print(f"calendar: {hostile} FREQ=SECONDLY events from 2030-02-01, one daily event")
        print(f"{'request':44} {'answer':22} {'seconds':>8} {'peak RSS':>10}")
        day = ("20300304T000000Z", "20300305T000000Z")
        plain_day = expand_query(*day).replace(f'<C:expand start="{day[0]}" end="{day[1]}"/>', "")
        cases: list[tuple[str, Callable[[], str]]] = [
            ("expand REPORT to 9999", report(expand_query("20300301T000000Z", "99991231T000000Z"))),
            (
                "expand REPORT, 3 years (cap 1100 days)",
                report(expand_query("20300101T000000Z", "20321201T000000Z")),
            ),
            ("expand REPORT, one day", report(expand_query(*day))),
            ("calendar-query, one day, no expand", report(plain_day)),
            ("free-busy REPORT, one day", report(FREE_BUSY)),
            ("PUT 10 MiB (Content-Length)", put_big(False)),
            ("PUT 10 MiB (chunked)", put_big(True)),
            ("PUT 1.5 MiB daily event (under the limit)", put_big(False, 1536 * 1024)),
            (
                "expand REPORT, 3 years, with that event",
                report(expand_query("20300101T000000Z", "20321201T000000Z")),
            ),
        ]
        for name, action in cases:
            outcome, took, grew = measured(pid, action)
            print(f"{name:44} {outcome:22} {took:8.2f} {grew:+9.1f} MB")

        # A client that gives up after 0.3 s: how long does the server keep working?
        body = expand_query("20300101T000000Z", "20321201T000000Z")
        before = cpu_seconds(pid)
        started = time.monotonic()
        with contextlib.suppress(httpx.TimeoutException):
            httpx.request(
                "REPORT",
                f"{base}/dav/ada/work/",
                content=body,
                auth=client.auth,
                headers={"Depth": "1"},
                timeout=0.3,
            )
        last, idle_since = cpu_seconds(pid), time.monotonic()
        while time.monotonic() - idle_since < 1.0 and time.monotonic() - started < 60:
            time.sleep(0.1)
            now = cpu_seconds(pid)
            if now - last > 0.02:
                last, idle_since = now, time.monotonic()
        print(
            f"client left after 0.3 s: server busy until {idle_since - started:.2f} s, "
            f"{last - before:.2f} CPU s in all"
        )


if __name__ == "__main__":
    main()
