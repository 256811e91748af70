"""Duplicate mails after kill -9 during sending, and how soon a restart delivers the backlog.

Run ``python bench/kill_outbox.py [--answers N] [--kills K] [--connections C]`` (not a
test): creates its own PostgreSQL database on 127.0.0.1:5432, books N sessions in
process (their invitations marked delivered), starts `parley serve` with a local relay
sink, and sends every guest's DECLINED reply over SMTP (each retried by its sender until
it gets a 250). While the CANCELs go out, the server is killed with SIGKILL K times, each
restarted at once on the same data folder. Prints the duplicate CANCELs the relay got
per kill (the target: at most C, the relay connections) and, for each restart, the backlog
the dead process left (answers pending, mails unsent), the time from the restarted
server's first 200 to its first CANCEL at the relay, and after the last one the time
until every CANCEL was delivered.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sqlalchemy import func, select

from core.db.migrate import upgrade
from core.db.models import InboundMessage, OutboundMessage
from core.logging import configure_logging
from core.runtime import open_runtime
from core.settings import Settings
from tests.e2e import test_kill_outbox as kill
from tests.e2e.relay import running_relay
from tests.e2e.test_negotiation_smtp import stop_parley
from tests.pg import create_database, drop_database


def backlog(runtime: object) -> tuple[int, int]:
    """(inbound messages pending, outbox rows unsent)."""
    with runtime.sessions() as session:  # type: ignore[attr-defined]
        inbound = session.scalar(select(func.count()).where(InboundMessage.outcome == "pending"))
        outbox = session.scalar(
            select(func.count()).where(OutboundMessage.status.in_(("pending", "sending")))
        )
    return int(inbound or 0), int(outbox or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=500)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    configure_logging("warning", json=True)
    kill.CONNECTIONS = args.connections
    url = create_database(prefix="parley_bench")
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    try:
        upgrade(url)
        settings = Settings(
            data_dir=workdir / "seed", database_url=url, smtp_port=0,
            secret_key="bench-secret-key-0123456789abcdef", admin_token="bench-admin-token-0123",
        )  # fmt: skip
        runtime = open_runtime(settings)
        booked = kill.seed(runtime, args.answers)
        answers = kill.declines(runtime, booked)
        expected = 2 * args.answers
        with running_relay() as (sink, relay_port):
            arrived = kill.Cancels(sink)
            server = kill.Server(workdir, url, relay_port)
            server.start()
            stop = threading.Event()
            senders = [
                threading.Thread(
                    target=kill.send_until_accepted,
                    args=(server.smtp, answers[i :: kill.SENDERS], stop),
                )
                for i in range(kill.SENDERS)
            ]
            for thread in senders:
                thread.start()
            restarts = []
            try:
                for n in range(1, args.kills + 1):
                    at = expected * n // (args.kills + 1)
                    sink.wait_for(lambda got, at=at: len(arrived) >= at, timeout=120)
                    before = len(arrived)
                    server.kill()
                    pending = backlog(runtime)
                    server.start()
                    restarts.append((time.monotonic(), before, pending))
                for thread in senders:
                    thread.join(timeout=120)
                sink.wait_for(lambda got: arrived.unique() >= expected, timeout=300)
            finally:
                stop.set()
                if server.proc is not None:
                    stop_parley(server.proc)
        duplicates = len(arrived) - arrived.unique()
        print(
            f"kill -9 during sending: {args.answers} DECLINEs -> {expected} CANCELs, "
            f"{args.kills} kills, {args.connections} relay connections"
        )
        print(
            f"duplicate CANCELs at the relay: {duplicates} in all, "
            f"{duplicates / max(args.kills, 1):.1f} per kill (target <= {args.connections})"
        )
        ordered = sorted(arrived.times)
        for index, (restarted, before, (inbound, outbox)) in enumerate(restarts, 1):
            first = min((t for t in ordered if t > restarted), default=restarted)
            print(
                f"restart {index}: killed with {before} CANCELs out, leaving {inbound} answers "
                f"pending and {outbox} mails unsent; first CANCEL {first - restarted:.2f} s "
                "after the restarted server answered"
            )
        if restarts:
            last = restarts[-1]
            print(
                f"after the last restart: {last[2][0]} answers and {last[2][1]} mails of backlog "
                f"delivered {ordered[-1] - last[0]:.2f} s after the server answered"
            )
        runtime.close()
    finally:
        drop_database(url)


if __name__ == "__main__":
    main()
