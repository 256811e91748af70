"""parse_message over the shared corpus of real client mail (skipped when it is absent)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import icalendar
import pytest

from core.imip.mail import Outcome
from mailagent.mime import parse_message

CORPUS = Path(__file__).parents[3] / ".." / "shared" / "corpus" / "imip-email"
FILES = sorted(p for p in CORPUS.glob("*/*") if p.is_file()) if CORPUS.exists() else []

pytestmark = pytest.mark.skipif(not FILES, reason="shared corpus not present")

# (file, method, uid prefix, dtstart in UTC or None, first attendee, message id)
EXPECTED = [
    (
        "mail/request_outlook_com.txt",
        "REQUEST",
        "1F0BD3F6FEFC421AAA5BE992D6992B6A",
        datetime(2025, 2, 26, 7, 0, tzinfo=UTC),  # 08:00 W. Europe Standard Time
        "bob@example.org",
        "imip-testing-1234@example.org",
    ),
    (
        "comm-central/outlook-test-invite.eml",
        "REQUEST",
        "030000008200E00074C5B7101A82E008",
        datetime(2021, 11, 27, 7, 0, tzinfo=UTC),  # 09:00 FLE Standard Time (Helsinki, EET)
        "homer@example.org",
        "HE1P190MB0540579ABA18FCE320901B31E39C9@HE1P190MB0540.EURP190.PROD.OUTLOOK.COM",
    ),
    ("comm-central/cancel-single-event.eml", "CANCEL", "02e79b96", None, None, None),
    ("comm-central/single-event.eml", "REQUEST", "02e79b96", None, None, None),
]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_corpus_mail_parses_and_agrees_with_icalendar(path: Path) -> None:
    mail = parse_message(path.read_bytes())
    assert mail.outcome is Outcome.ITIP, mail.error
    assert mail.itip is not None
    assert not mail.defects
    own = next(p for p in mail.calendar_parts if not p.forwarded)
    reference = icalendar.Calendar.from_ical(own.data)
    event = next(iter(reference.walk("VEVENT")))
    assert mail.itip.uid == str(event["UID"])
    assert mail.itip.method == str(reference.get("METHOD", own.method)).upper()
    assert mail.itip.sequence == int(event.get("SEQUENCE", 0))
    if "DTSTART" in event and isinstance(event.decoded("DTSTART"), datetime):
        theirs = event.decoded("DTSTART")
        if theirs.tzinfo is not None:
            assert mail.itip.dtstart == theirs.astimezone(UTC)


@pytest.mark.parametrize(("name", "method", "uid", "start", "attendee", "message_id"), EXPECTED)
def test_known_corpus_fields(
    name: str,
    method: str,
    uid: str,
    start: datetime | None,
    attendee: str | None,
    message_id: str | None,
) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{name} not in corpus")
    mail = parse_message(path.read_bytes())
    assert mail.itip is not None
    assert mail.itip.method == method
    assert mail.itip.uid.startswith(uid)
    if start is not None:
        assert mail.itip.dtstart == start
    if attendee is not None:
        assert mail.itip.attendees[0].address == attendee
    assert mail.message_id == message_id


def test_google_meet_invite_has_inline_and_attached_calendar() -> None:
    path = CORPUS / "comm-central" / "meet-meeting-invite.eml"
    if not path.exists():
        pytest.skip("not in corpus")
    mail = parse_message(path.read_bytes())
    kinds = [(p.content_type, p.attachment) for p in mail.calendar_parts]
    assert kinds == [("text/calendar", False), ("application/ics", True)]
    assert mail.text.startswith("Du har blivit inbjuden")
