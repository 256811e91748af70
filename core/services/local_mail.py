"""The local mail folder: what Parley "sent" while no relay is configured.

Without ``PARLEY_SMTP_RELAY_URL`` every outbound message is written into a Maildir
(``<data dir>/maildir/new``) as an ``.eml`` file. ``parley mail list|show`` and the
console's "Local mail" page read it through this module: newest first, decoded (subject,
the text part, the links in it, the iTIP method of the calendar part), so that a newcomer
can follow the sign-in and invitation links without a mail client.

A message is named by its key: the digest part of its file name (``<time>.<digest>.<host>
.eml``), or any unique prefix of at least four characters of it. Nothing outside the
folder's ``new/`` and ``cur/`` can be named.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime
from pathlib import Path

from core.services.errors import AmbiguousKey

MIN_KEY = 4
_LINK = re.compile(r"https?://[^\s<>\"')\]]+")
_METHOD = re.compile(r"^METHOD:([A-Z-]+)\s*$", re.MULTILINE)
_SUBFOLDERS = ("new", "cur")


@dataclass(frozen=True, slots=True)
class LocalMail:
    """One message of the folder, decoded for reading."""

    key: str
    path: Path
    received: datetime
    sender: str
    to: tuple[str, ...]
    subject: str
    method: str | None  # the iTIP METHOD of its text/calendar part, if any
    text: str
    links: tuple[str, ...]

    @property
    def raw(self) -> bytes:
        return self.path.read_bytes()


def _files(root: Path) -> Iterator[Path]:
    for sub in _SUBFOLDERS:
        folder = root / sub
        if folder.is_dir():
            yield from (p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _key_of(path: Path) -> str:
    parts = path.name.split(".")
    return parts[1] if len(parts) >= 3 and parts[0].isdigit() else path.stem


def _sort_key(path: Path) -> tuple[int, str]:
    head = path.name.split(".", 1)[0]
    return (int(head) if head.isdigit() else int(path.stat().st_mtime), path.name)


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset, a broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return str(content).strip()


def _method_of(message: EmailMessage) -> str | None:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            method = part.get_param("method")
            if isinstance(method, str) and method:
                return method.upper()
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found = _METHOD.search(payload.decode("utf-8", "replace"))
                if found:
                    return found.group(1)
    return None


def _received(message: EmailMessage, path: Path) -> datetime:
    try:
        parsed = parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return datetime.fromtimestamp(_sort_key(path)[0], UTC)
    return parsed.astimezone(UTC)


def read(path: Path) -> LocalMail:
    """The message in ``path``, decoded; an unreadable one still lists, with what is known."""
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    text = _text_of(message)
    links = tuple(dict.fromkeys(m.group(0).rstrip(".,;:") for m in _LINK.finditer(text)))
    return LocalMail(
        key=_key_of(path),
        path=path,
        received=_received(message, path),
        sender=parseaddr(str(message.get("From", "")))[1],
        to=tuple(a for _, a in getaddresses([str(v) for v in message.get_all("To", [])]) if a),
        subject=str(message.get("Subject", "")),
        method=_method_of(message),
        text=text,
        links=links,
    )


def list_mail(
    root: Path,
    *,
    limit: int = 50,
    to: str | None = None,
    sender_ok: Callable[[str], bool] | None = None,
) -> list[LocalMail]:
    """Newest first, at most ``limit``; ``to`` keeps messages to that address, ``sender_ok``
    those whose From it accepts (the console keeps its tenant's)."""
    wanted = to.strip().lower() if to else None
    found: list[LocalMail] = []
    for path in sorted(_files(root), key=_sort_key, reverse=True):
        mail = read(path)
        if wanted and wanted not in (a.lower() for a in mail.to):
            continue
        if sender_ok is not None and not sender_ok(mail.sender):
            continue
        found.append(mail)
        if len(found) >= limit:
            break
    return found


def find(root: Path, key: str) -> LocalMail | None:
    """The message whose key starts with ``key`` (at least MIN_KEY characters), else None."""
    key = key.strip().lower()
    if len(key) < MIN_KEY or not key.isalnum():
        return None
    matches = [p for p in _files(root) if _key_of(p).lower().startswith(key)]
    if len(matches) > 1:
        raise AmbiguousKey(f"{len(matches)} messages have keys starting with {key!r}")
    return read(matches[0]) if matches else None
