"""Imported calendars' URLs, sealed at rest: an Airbnb or Booking.com export URL is itself
the secret (whoever has it reads the reservations).

Each source keeps its URL three ways: sealed with the secret key (what the poller
unseals to fetch), a keyed digest (to find the same URL added twice), and a masked form
for people and logs (``https://www.airbnb.com/calendar/ical/…``). Rows written before
sealing are sealed by the migration when it can read the secret key, else by the first
process that starts (``seal_plain_urls``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.crypto import URL_PURPOSE, keyed_digest, seal, unseal
from core.db.models import ExternalSource

# Path segments shown as they are: plain words (calendar, ical, export); the first that
# is not (an id, a token, a file name) and everything after it is masked.
_WORD = re.compile(r"[A-Za-z][A-Za-z_-]{0,23}")


@dataclass(frozen=True, slots=True)
class SealedUrl:
    shown: str
    sealed: bytes
    digest: str


def mask(url: str) -> str:
    """scheme://host/and/plain/words/… : enough to recognise, nothing to read with."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    shown = []
    hidden = bool(parts.query or parts.fragment)
    for segment in [s for s in parts.path.split("/") if s]:
        if not _WORD.fullmatch(segment):
            hidden = True
            break
        shown.append(segment)
    path = "/".join(shown)
    tail = "…" if hidden else ""
    return f"{parts.scheme}://{host}/{path}{'/' if path and tail else ''}{tail}"


def seal_url(secret_key: bytes, url: str) -> SealedUrl:
    return SealedUrl(
        mask(url), seal(secret_key, url, purpose=URL_PURPOSE), keyed_digest(secret_key, url)
    )


def digest(secret_key: bytes, url: str) -> str:
    return keyed_digest(secret_key, url)


def source_url(secret_key: bytes, source: ExternalSource) -> str:
    """The URL to fetch: unsealed, or as stored for a row not sealed yet."""
    if source.url_sealed is None:
        return source.url
    return unseal(secret_key, source.url_sealed, purpose=URL_PURPOSE)


def seal_plain_urls(session: Session, secret_key: bytes) -> int:
    """Seal the URLs of rows stored before sealing; returns how many."""
    rows = session.scalars(select(ExternalSource).where(ExternalSource.url_sealed.is_(None)))
    count = 0
    for source in rows:
        sealed = seal_url(secret_key, source.url)
        source.url, source.url_sealed, source.url_digest = (
            sealed.shown,
            sealed.sealed,
            sealed.digest,
        )
        count += 1
    return count
