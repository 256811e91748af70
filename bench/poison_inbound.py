"""One poison message among many valid answers: how soon every valid answer is applied (not a test).

Run ``python bench/poison_inbound.py [--answers N] [--sqlite]``: creates its own
PostgreSQL database on 127.0.0.1:5432 (``--sqlite`` for the embedded default), starts
`parley serve` with a local relay sink and books N sessions over the JSON API. Then, over
one SMTP connection, the poison messages go first — a plain mail whose Message-ID has no
``@``, one with control bytes in it, and a COUNTER whose decision raises (year 9999 in a
zone east of UTC) — followed by one REPLY DECLINED per booking. Printed: the time from the
first message sent until every stored message is settled, the outcomes, and whether every
booking was cancelled. Seed issue #20 asks for at most 10 s with N = 1,000.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.inbound import book_many, booking_statuses, wait_settled
from tests.e2e.relay import running_relay
from tests.e2e.test_inbound_smtp import far_counter, plain_mail, send_all
from tests.e2e.test_negotiation_smtp import serve_parley, stop_parley
from tests.integration.negotiation import mails
from tests.pg import create_database, drop_database


def run(db_url: str, answers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_relay() as (sink, relay_port):
        proc, parley = serve_parley(
            Path(tmp), db_url, sink, relay_port, PARLEY_PUBLIC_RATE_LIMIT_PER_MINUTE="0"
        )
        try:
            started = time.monotonic()
            target, *others = book_many(parley.base, sink, answers + 1, zone="Asia/Tokyo")
            print(f"booked {answers + 1} sessions in {time.monotonic() - started:.1f} s")
            tagged = target.to("guest")
            poisons = [
                (plain_mail(target.guest, tagged, "<no-at-sign>", "poison"), target.guest, tagged),
                (plain_mail(target.guest, tagged, "<c\x01\x7f@x.example>", "poison"),
                 target.guest, tagged),
                (far_counter(target), target.guest, tagged),
            ]  # fmt: skip
            declines = [
                (mails.apple(uid=o.uid, sequence=0, attendee=o.guest, to=o.to("guest"),
                             partstat="DECLINED"), o.guest, o.to("guest"))
                for o in others
            ]  # fmt: skip
            sent = time.monotonic()
            send_all(parley, poisons + declines)
            accepted = time.monotonic() - sent
            settled = wait_settled(parley.db_url, len(poisons) + len(declines), timeout=300)
            elapsed = time.monotonic() - sent
            statuses = booking_statuses(parley.db_url, [o.id for o in others])
            cancelled = sum(status == "cancelled" for status in statuses.values())
            print(f"SMTP accepted all {len(poisons) + len(declines)} messages in {accepted:.1f} s")
            print(f"every message settled {elapsed:.2f} s after the first was sent")
            print("outcomes:", dict(collections.Counter(s.outcome for s in settled)))
            print(f"bookings cancelled by their DECLINE: {cancelled} of {len(others)}")
        finally:
            parley.http.close()
            stop_parley(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/parley.db", args.answers)
        return
    db_url = create_database()
    try:
        run(db_url, args.answers)
    finally:
        drop_database(db_url)


if __name__ == "__main__":
    main()
