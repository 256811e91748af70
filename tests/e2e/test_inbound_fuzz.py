"""A bounded fuzz of the inbound path: 1,000 mutated MIME messages over SMTP, among answers.

The seeds are real-shaped mail: the fixtures under tests/data/mail and the answers
calendar apps send about bookings made for the purpose. Each message gets one to three
seeded mutations (byte flips, truncation, duplicated headers, broken boundaries, bad
charsets, huge folded headers, NULs and control bytes in Message-ID, ids without @, …).
Twenty valid answers about other bookings are sent in between. Every valid answer must
be applied, every stored message settled, none failed, and /healthz answer throughout.
"""

from __future__ import annotations

import os
import random
import re
import smtplib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from core.services.inbound import message_key
from tests.conftest import DATA
from tests.e2e.inbound import Invited, book_many, booking_statuses, wait_settled
from tests.e2e.relay import running_relay
from tests.e2e.test_negotiation_smtp import ORGANIZER, Parley, serve_parley, stop_parley
from tests.integration.negotiation import mails

pytestmark = pytest.mark.slow

# Fixed, so CI runs the same messages every time; PARLEY_FUZZ_SEED explores others.
SEED = int(os.environ.get("PARLEY_FUZZ_SEED", "20261202"))
FUZZED = 1_000
VALID = 20
Mutation = Callable[[random.Random, bytes], bytes]


@pytest.fixture
def parley(tmp_path: Path, db_url: str) -> Iterator[Parley]:
    with running_relay() as (sink, relay_port):
        proc, parley_ = serve_parley(
            tmp_path, db_url, sink, relay_port, PARLEY_PUBLIC_RATE_LIMIT_PER_MINUTE="0"
        )
        try:
            yield parley_
        finally:
            parley_.http.close()
            stop_parley(proc)


# --- seeds ---------------------------------------------------------------------------------


def crlf(raw: bytes) -> bytes:
    """CRLF line ends, and no line over 990 bytes (SMTP's limit), folded or cut."""
    lines = re.split(rb"\r?\n", raw)
    out = []
    for line in lines:
        while len(line) > 990:
            out.append(line[:990])
            line = b" " + line[990:]
        out.append(line)
    return b"\r\n".join(out)


def fixture_seeds() -> list[bytes]:
    return [crlf(path.read_bytes()) for path in sorted((DATA / "mail").glob("*.eml"))]


def answer_seeds(invited: Invited) -> list[bytes]:
    """What calendar apps and people send about this booking, to its private addresses."""
    guest, host = invited.to("guest"), invited.to("host")
    common = {"uid": invited.uid, "sequence": 0}
    return [
        mails.apple(**common, attendee=invited.guest, to=guest, partstat="DECLINED"),
        mails.gmail(method="REPLY", **common, attendee=invited.guest, to=guest,
                    partstat="ACCEPTED"),
        mails.outlook(method="COUNTER", **common, attendee=invited.guest, to=guest,
                      start_local="20300101T100000", end_local="20300101T103000"),
        mails.thunderbird(method="REPLY", **common, attendee="ada.host@hostmail.example",
                          to=host, partstat="TENTATIVE"),
        mails.ios_exchange_counter(**common, attendee=invited.guest, to=guest,
                                   start_utc="20300102T100000Z", end_utc="20300102T103000Z",
                                   note="later?"),
        mails.thunderbird(method="REFRESH", **common, attendee=invited.guest, to=guest),
        mails.plain(sender=invited.guest, to=guest, in_reply_to="<invite@parley.test>"),
    ]  # fmt: skip


# --- mutations -----------------------------------------------------------------------------


def _split(raw: bytes) -> tuple[list[bytes], bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body if sep else b""


def _join(headers: list[bytes], body: bytes) -> bytes:
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


def flip_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 12)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def truncate(rng: random.Random, raw: bytes) -> bytes:
    return raw[: rng.randrange(1, max(2, len(raw)))]


def duplicate_header(rng: random.Random, raw: bytes) -> bytes:
    headers, body = _split(raw)
    picked = rng.choice(headers) if headers else b"X-Empty: 1"
    at = rng.randrange(len(headers) + 1)
    return _join(headers[:at] + [picked] * rng.randint(1, 40) + headers[at:], body)


def break_boundary(rng: random.Random, raw: bytes) -> bytes:
    found = re.search(rb'boundary="?([^";\r\n]+)"?', raw, re.IGNORECASE)
    if found is None:
        return raw + b"\r\n--orphan-boundary\r\nContent-Type: text/calendar\r\n\r\nBEGIN:"
    boundary = found.group(1)
    choice = rng.randrange(4)
    if choice == 0:  # the closing delimiter gone
        return raw.replace(b"--" + boundary + b"--", b"")
    if choice == 1:  # the parts' delimiters no longer match the header's
        return raw.replace(b"--" + boundary, b"--" + boundary[::-1])
    if choice == 2:  # an empty boundary
        return raw.replace(b"boundary=" + found.group(0).split(b"=", 1)[1], b'boundary=""')
    return raw.replace(b"\r\n--" + boundary, b"\r\n--" + boundary + b"\r\n--" + boundary, 3)


def bad_charset(rng: random.Random, raw: bytes) -> bytes:
    label = rng.choice(
        [b"x-unknown", b"utf-7", b"utf-16", b"utf-32-be", b"iso-2022-jp", b"", b"\xff\xfe", b"'"]
    )
    replaced = re.sub(rb'charset="?[A-Za-z0-9_.:-]*"?', b'charset="' + label + b'"', raw)
    if replaced == raw:
        headers, body = _split(raw)
        return _join([*headers, b'Content-Type: text/plain; charset="' + label + b'"'], body)
    return replaced


def huge_header(rng: random.Random, raw: bytes) -> bytes:
    name = rng.choice([b"Subject", b"References", b"X-Junk", b"To", b"Received", b"Message-ID"])
    words = b" ".join(
        b"<w%d@x.example>" % rng.randrange(10**6) for _ in range(rng.randint(200, 3000))
    )
    folded = crlf(name + b": " + words).replace(b"\r\n", b"\r\n ")
    headers, body = _split(raw)
    return _join([folded, *headers], body)


def message_id_trouble(rng: random.Random, raw: bytes) -> bytes:
    value = rng.choice(
        [b"<no-at-sign-%d>", b"<ctl\x01\x02%d@x.example>", b"<nul\x00%d@x.example>",
         b"bare-%d", b"<%d@>", b"<@%d>", b"<a@b@%d>", b"<<%d@x>>", b"<\x7f%d@x>", b"%d"]
    ) % rng.randrange(10**9)  # fmt: skip
    headers, body = _split(raw)
    kept = [h for h in headers if not h.lower().startswith((b"message-id:", b"in-reply-to:"))]
    extra = [b"Message-ID: " + value, b"In-Reply-To: " + value, b"References: " + value]
    return _join(kept + extra[: rng.randint(1, 3)], body)


def control_bytes(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        data.insert(rng.randrange(len(data) + 1), rng.choice([0, 1, 8, 11, 12, 27, 127]))
    return bytes(data)


def drop_headers(rng: random.Random, raw: bytes) -> bytes:
    headers, body = _split(raw)
    return _join([h for h in headers if rng.random() < 0.5], body)


def eight_bit_headers(rng: random.Random, raw: bytes) -> bytes:
    headers, body = _split(raw)
    junk = bytes(rng.randrange(128, 256) for _ in range(rng.randint(1, 40)))
    extra = [b"Subject: " + junk, b"From: " + junk + b" <" + junk + b"@x.example>",
             b"Subject: =?" + junk + b"?B?" + junk + b"?="]  # fmt: skip
    return _join([*headers, rng.choice(extra)], body)


def nested_parts(rng: random.Random, raw: bytes) -> bytes:
    depth = rng.randint(10, 60)
    head = b"".join(
        b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (i, i + 1)
        for i in range(depth)
    )
    headers, body = _split(raw)
    kept = [h for h in headers if not h.lower().startswith(b"content-type")]
    return _join([*kept, b'Content-Type: multipart/mixed; boundary="b0"'], head + body)


def garbage_calendar(rng: random.Random, raw: bytes) -> bytes:
    lines = [b"BEGIN:VCALENDAR", b"METHOD:" + rng.choice([b"REPLY", b"COUNTER", b"X", b""]),
             b"BEGIN:VEVENT", b"UID:" + rng.choice([b"", b"\x00", b"x" * 900]),
             b"SEQUENCE:" + rng.choice([b"-1", b"99999999999999", b"x"]),
             b"DTSTART:" + rng.choice([b"99991231T235959Z", b"00010101T000000Z", b"2027"]),
             b"ATTENDEE;PARTSTAT=" + rng.choice([b"DECLINED", b"\xff"]) + b":mailto:",
             b"END:VEVENT"]  # fmt: skip
    rng.shuffle(lines)
    headers, _ = _split(raw)
    kept = [h for h in headers if not h.lower().startswith((b"content-type", b"content-trans"))]
    return _join([*kept, b"Content-Type: text/calendar; method=REPLY"], b"\r\n".join(lines))


MUTATIONS: list[Mutation] = [
    flip_bytes, truncate, duplicate_header, break_boundary, bad_charset, huge_header,
    message_id_trouble, control_bytes, drop_headers, eight_bit_headers, nested_parts,
    garbage_calendar,
]  # fmt: skip


def fuzzed(rng: random.Random, seeds: list[bytes], index: int) -> bytes:
    """A fresh Message-ID (so copies are not deduplicated away), then 1–3 mutations."""
    headers, body = _split(rng.choice(seeds))
    kept = [h for h in headers if not h.lower().startswith(b"message-id:")]
    raw = _join([b"Message-ID: <fuzz-%d-%d@fuzz.example>" % (SEED, index), *kept], body)
    for mutation in rng.sample(MUTATIONS, rng.randint(1, 3)):
        raw = mutation(rng, raw)
    return raw


# --- the run -------------------------------------------------------------------------------


class Sender:
    """One SMTP connection, opened again when the server drops it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.client: smtplib.SMTP | None = None
        self.refused = 0

    def send(self, raw: bytes, to: str) -> bool:
        """True on 250; a refusal (4xx/5xx or a dropped connection) is counted, not raised."""
        try:
            if self.client is None:
                self.client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
            self.client.sendmail("fuzz@fuzz.example", [to], raw)
            return True
        except smtplib.SMTPResponseException:
            self.refused += 1
            try:
                if self.client is not None:
                    self.client.rset()
            except (smtplib.SMTPException, OSError):
                self.close()
            return False
        except (smtplib.SMTPException, OSError):
            self.refused += 1
            self.close()
            return False

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (smtplib.SMTPException, OSError):
                self.client.close()
            self.client = None


def valid_answer(index: int, invited: Invited) -> tuple[bytes, str, str]:
    """(raw, recipient, expected reason) of one of four kinds of answer."""
    guest = invited.to("guest")
    kind = index % 4
    if kind == 0:
        raw = mails.apple(uid=invited.uid, sequence=0, attendee=invited.guest, to=guest,
                          partstat="DECLINED")  # fmt: skip
        return raw, guest, "guest declined: cancelled for both"
    if kind == 1:
        raw = mails.gmail(method="REPLY", uid=invited.uid, sequence=0, attendee=invited.guest,
                          to=guest, partstat="ACCEPTED")  # fmt: skip
        return raw, guest, "guest accepted"
    if kind == 2:
        host = invited.to("host")
        raw = mails.thunderbird(method="REPLY", uid=invited.uid, sequence=0,
                                attendee="ada.host@hostmail.example", to=host,
                                partstat="TENTATIVE")  # fmt: skip
        return raw, host, "host tentative"
    day = datetime.now(UTC) + timedelta(days=60 + index)
    raw = mails.outlook(method="COUNTER", uid=invited.uid, sequence=0, attendee=invited.guest,
                        to=guest, start_local=day.strftime("%Y%m%dT100000"),
                        end_local=day.strftime("%Y%m%dT103000"))  # fmt: skip
    return raw, guest, "COUNTER became proposal"


def test_a_thousand_mutated_messages_among_valid_answers(parley: Parley) -> None:
    rng = random.Random(SEED)
    bookings = book_many(parley.base, parley.relay, VALID + 4)
    valid, targets = bookings[:VALID], bookings[VALID:]
    seeds = fixture_seeds() + [raw for t in targets for raw in map(crlf, answer_seeds(t))]
    recipients = [ORGANIZER] + [t.to(role) for t in targets for role in ("guest", "host")]
    answers = [valid_answer(i, invited) for i, invited in enumerate(valid)]
    every = FUZZED // VALID
    sender = Sender(parley.smtp_port)
    accepted, keys = 0, set()  # keys: how Parley deduplicates what it stored
    started = time.monotonic()
    try:
        for index in range(FUZZED):
            raw = fuzzed(rng, seeds, index)
            if sender.send(raw, rng.choice(recipients)):
                accepted += 1
                keys.add(message_key(raw)[0])
            if index % every == every - 1:
                raw, to, _ = answers[index // every]
                assert sender.send(raw, to), "a valid answer was refused"
            if index % 250 == 249:
                assert httpx.get(f"{parley.base}/healthz", timeout=10).status_code == 200
    finally:
        sender.close()
    sent = time.monotonic() - started
    # Every accepted message was stored before its 250; identical copies only once.
    settled = wait_settled(parley.db_url, len(keys) + VALID, timeout=60)
    assert len(settled) == len(keys) + VALID
    assert accepted >= FUZZED * 0.9, f"only {accepted} of {FUZZED} accepted"
    by_key = {s.message_key: s for s in settled}
    for raw, _, reason in answers:
        key = re.search(rb"Message-ID: (<[^>]+>)", raw)
        assert key is not None
        row = by_key[key.group(1).decode()]
        assert (row.outcome, (row.reason or "")[: len(reason)]) == ("itip", reason), row
    declined = [b.id for i, b in enumerate(valid) if i % 4 == 0]
    assert set(booking_statuses(parley.db_url, declined).values()) == {"cancelled"}
    failed = [s for s in settled if s.outcome == "failed"]
    assert not failed, [s.reason for s in failed]
    assert httpx.get(f"{parley.base}/healthz", timeout=10).status_code == 200
    print(
        f"{FUZZED} fuzzed ({accepted} accepted, {sender.refused} refused) + {VALID} valid in"
        f" {sent:.1f} s; outcomes: "
        + ", ".join(
            f"{o}={sum(s.outcome == o for s in settled)}"
            for o in sorted({s.outcome for s in settled})
        )
    )
