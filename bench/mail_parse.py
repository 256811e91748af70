"""Benchmark inbound mail parsing: parse_message against email's default policy + icalendar.

Run: python bench/mail_parse.py [--count N]. Parses a mix of the fixtures in tests/data/mail
(at least 2,000 messages) and prints messages per second for both ways.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import icalendar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailagent.mime import parse_message  # noqa: E402

MAIL = ROOT / "tests" / "data" / "mail"


def messages(count: int) -> list[bytes]:
    fixtures = [p.read_bytes() for p in sorted(MAIL.glob("*.eml"))]
    return [fixtures[i % len(fixtures)] for i in range(count)]


def reference(raw: bytes) -> object:
    """What the obvious code does: default policy, then icalendar on each calendar part."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    result: list[object] = [msg["subject"], msg["from"], msg["message-id"]]
    if isinstance(msg, EmailMessage):
        for part in msg.walk():
            if part.get_content_type() in ("text/calendar", "application/ics"):
                try:
                    result.append(icalendar.Calendar.from_ical(part.get_content()))
                except Exception as exc:  # broken fixtures are part of the mix
                    result.append(exc)
    return result


def rate(label: str, fn: Callable[[bytes], object], batch: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in batch:
        fn(raw)
    elapsed = time.perf_counter() - start
    per_second = len(batch) / elapsed
    print(f"{label:<42} {len(batch):>6} msgs  {elapsed:7.3f} s  {per_second:9.0f} msgs/s")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    batch = messages(max(args.count, 2000))
    parse_message(batch[0])  # warm imports and caches
    ours = rate("parse_message (compat32 + own iTIP reader)", parse_message, batch)
    theirs = rate("email default policy + icalendar", reference, batch)
    verdict = "met" if ours >= 1000 else "MISSED"
    print(f"speed-up {ours / theirs:.1f}x; target >= 1,000 msgs/s: {verdict}")


if __name__ == "__main__":
    main()
