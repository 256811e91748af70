"""The listener's fast reading of MAIL FROM / RCPT TO paths agrees with aiosmtpd's parser."""

from __future__ import annotations

from aiosmtpd.smtp import SMTP
from hypothesis import given, settings
from hypothesis import strategies as st

from mailagent.smtp import FastPathSMTP

FULL, FAST = SMTP(object()), FastPathSMTP(object())

SHAPES = [
    "<ada@example.org>",
    "<ada@example.org> SIZE=1200 BODY=8BITMIME",
    " <scheduling+k3v9x2@parley.example>",
    "\t<a.b-c@d-e.example>\tSMTPUTF8",
    "<a@b> (comment) SIZE=1",
    "<a@b> \r\n",
    "<>",
    "<a..b@c>",
    "<.a@b>",
    '<"two words"@example.org>',
    "<a@[192.0.2.1]>",
    "<a@b.> SIZE=1",
    "<@relay.example:a@b>",
    "<ü@example.org>",
    "a@b",
    "<a@b",
    "",
]


def _both(arg: str) -> tuple[object, object]:
    def read(server: SMTP) -> object:
        try:
            return server._getaddr(arg)
        except Exception as exc:  # the same failure counts as agreement
            return type(exc).__name__

    return read(FULL), read(FAST)


def test_known_shapes_read_the_same() -> None:
    for arg in SHAPES:
        full, fast = _both(arg)
        assert full == fast, arg


def test_a_plain_path_takes_the_fast_reading() -> None:
    assert FAST._getaddr("<ada@example.org> SIZE=9") == ("ada@example.org", "SIZE=9")


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet='ab.@<> \t()"-+_:;,[]\r\nü', max_size=24)
    | st.builds(
        lambda local, domain, tail: f"<{local}@{domain}>{tail}",
        st.from_regex(r"[a-z0-9.+_-]{0,10}", fullmatch=True),
        st.from_regex(r"[a-z0-9.-]{0,10}", fullmatch=True),
        st.text(alphabet=" \tSIZE=0123()\r\n", max_size=8),
    )
)
def test_any_path_reads_the_same(arg: str) -> None:
    full, fast = _both(arg)
    assert full == fast
