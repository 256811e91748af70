"""parse_message is total: arbitrary and mutated bytes always give a ParsedMail."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.imip.mail import Outcome, ParsedMail
from mailagent.mime import parse_message

MAIL = Path(__file__).parents[2] / "data" / "mail"
FIXTURES = [p.read_bytes() for p in sorted(MAIL.glob("*.eml"))]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(raw: bytes) -> ParsedMail:
    mail = parse_message(raw)
    assert isinstance(mail, ParsedMail)
    assert isinstance(mail.outcome, Outcome)
    if mail.outcome in (Outcome.UNPARSEABLE, Outcome.BAD_CALENDAR):
        assert mail.error
    assert (mail.itip is not None) == (mail.outcome is Outcome.ITIP)
    # The safety net must stay a net: no input should reach it.
    assert not (mail.error or "").startswith("internal error"), mail.error
    assert not any(d.startswith("internal error") for d in mail.defects), mail.defects
    return mail


@FAST
@given(st.binary(max_size=4000))
@example(b"")
@example(b"\r\n\r\n")
@example(b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n")
@example(b"From: a@b\r\nContent-Type: message/rfc822\r\n\r\n" * 40)
@example(b"From: =?utf-8?B?====?= <x>\r\nSubject: =?\xff?Q?=ZZ?=\r\n\r\n")
@example(b"Content-Type: text/calendar; charset=utf-16\r\nFrom: a@b\r\n\r\n\xff\xfe\x00")
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    check(raw)


@FAST
@given(
    st.sampled_from(FIXTURES),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=12),
)
def test_byte_flips_never_raise(raw: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(raw)
    for position, value in flips:
        data[position % len(data)] = value
    check(bytes(data))


@FAST
@given(st.sampled_from(FIXTURES), st.floats(0.0, 1.0))
def test_truncation_never_raises(raw: bytes, fraction: float) -> None:
    check(raw[: int(len(raw) * fraction)])


@FAST
@given(st.sampled_from(FIXTURES), st.integers(1, 30), st.integers(0, 40))
def test_header_duplication_never_raises(raw: bytes, copies: int, line: int) -> None:
    head, _sep, body = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    chosen = lines[line % len(lines)]
    check(b"\n".join([chosen] * copies + lines) + b"\n\n" + body)


@FAST
@given(st.sampled_from(FIXTURES), st.binary(min_size=1, max_size=200), st.integers(0, 10**6))
def test_spliced_garbage_never_raises(raw: bytes, junk: bytes, at: int) -> None:
    cut = at % (len(raw) + 1)
    check(raw[:cut] + junk + raw[cut:])
