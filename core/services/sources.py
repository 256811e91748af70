"""External calendar sources of a provider: create (with limits and URL checks), read, delete.

A CalDAV password is sealed with the secret key (core.crypto) before it is stored. The
network check of a URL (the SSRF guard) is passed in by the caller, so this module does
no I/O beyond its session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.crypto import seal
from core.db.models import ExternalEvent, ExternalSource, Provider, new_id
from core.feeds import Platform, priority_of
from core.services.errors import (
    DuplicateSource,
    InvalidSource,
    ProviderNotFound,
    SourceLimitReached,
    SourceNotFound,
)
from core.services.source_urls import seal_url

MAX_URL_LENGTH = 2048
KINDS = ("ics", "caldav")


@dataclass(frozen=True, slots=True)
class NewSource:
    url: str
    kind: str = "ics"
    platform: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    priority: int | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SourceView:
    """A source as the API shows it; never the credentials."""

    id: str
    provider_id: str
    name: str | None
    url: str
    kind: str
    platform: str
    priority: int
    status: str
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    held_reason: str | None
    next_poll_at: datetime
    poll_interval_seconds: int
    events: int


def create_source(
    session: Session,
    provider_id: str,
    new: NewSource,
    *,
    now: datetime,
    secret_key: bytes,
    max_sources: int,
    check_url: Callable[[str], str | None] | None = None,
) -> str:
    """Add a source to a provider, due for its first poll at once; returns its id."""
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise ProviderNotFound(f"no provider {provider_id!r}")
    url = normalize_url(new.url, new.kind)
    platform, priority = _platform_and_priority(new)
    if new.password and not new.username:
        raise InvalidSource("a password needs a username")
    count = session.scalar(select(func.count()).where(ExternalSource.provider_id == provider_id))
    if (count or 0) >= max_sources:
        raise SourceLimitReached(f"a provider may have at most {max_sources} external sources")
    sealed = seal_url(secret_key, url)
    duplicate = session.scalar(
        select(ExternalSource.id).where(
            ExternalSource.provider_id == provider_id,
            (ExternalSource.url_digest == sealed.digest)
            | (ExternalSource.url_sealed.is_(None) & (ExternalSource.url == url)),
        )
    )
    if duplicate is not None:
        raise DuplicateSource(f"this provider already imports that URL (source {duplicate})")
    reason = check_url(url) if check_url is not None else None
    if reason is not None:
        raise InvalidSource(f"URL refused: {reason}", code="url_refused")
    source = ExternalSource(
        id=new_id("src"), tenant_id=provider.tenant_id, provider_id=provider_id,
        name=(new.name or None), url=sealed.shown, url_sealed=sealed.sealed,
        url_digest=sealed.digest, kind=new.kind, platform=platform, priority=priority,
        username=new.username or None,
        secret_encrypted=seal(secret_key, new.password) if new.password else None,
        status="pending", next_poll_at=now, created_at=now,
    )  # fmt: skip
    session.add(source)
    session.flush()
    return source.id


def normalize_url(url: str, kind: str) -> str:
    """The URL to store: trimmed, webcal:// read as https://; raises InvalidSource."""
    if kind not in KINDS:
        raise InvalidSource(f"kind must be one of {', '.join(KINDS)}")
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidSource(f"url must be 1 to {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError for a bad port
    except ValueError:
        raise InvalidSource("url is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme in ("webcal", "webcals") and kind == "ics":
        scheme = "https"
    if scheme not in ("http", "https"):
        allowed = "http, https or webcal" if kind == "ics" else "http or https"
        raise InvalidSource(f"url scheme must be {allowed}")
    if not parts.hostname:
        raise InvalidSource("url has no host")
    if parts.username or parts.password:
        raise InvalidSource("put credentials in username and password, not in the url")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def _platform_and_priority(new: NewSource) -> tuple[str, int]:
    platform = new.platform or Platform.GENERIC.value
    if platform not in {p.value for p in Platform}:
        names = ", ".join(p.value for p in Platform)
        raise InvalidSource(f"platform must be one of {names}")
    priority = new.priority if new.priority is not None else priority_of(platform)
    if not 1 <= priority <= 10:
        raise InvalidSource("priority must be between 1 (wins) and 10")
    return platform, priority


def get_source(session: Session, source_id: str) -> SourceView:
    source = session.get(ExternalSource, source_id)
    if source is None:
        raise SourceNotFound(f"no source {source_id!r}")
    return _view(session, source)


def list_sources(session: Session, provider_id: str) -> list[SourceView]:
    query = (
        select(ExternalSource)
        .where(ExternalSource.provider_id == provider_id)
        .order_by(ExternalSource.created_at, ExternalSource.id)
    )
    return source_views(session, list(session.scalars(query)))


def _view(session: Session, source: ExternalSource) -> SourceView:
    return source_views(session, [source])[0]


def source_views(session: Session, sources: Sequence[ExternalSource]) -> list[SourceView]:
    """The API's view of each source, the stored events of all counted in one query."""
    ids = [source.id for source in sources]
    counts: dict[str, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(ExternalEvent.source_id, func.count())
            .where(ExternalEvent.source_id.in_(ids))
            .group_by(ExternalEvent.source_id)
        ).all()
    )
    return [
        SourceView(
            id=source.id,
            provider_id=source.provider_id,
            name=source.name,
            url=source.url,
            kind=source.kind,
            platform=source.platform,
            priority=source.priority,
            status=source.status,
            last_attempt_at=source.last_attempt_at,
            last_success_at=source.last_success_at,
            last_error=source.last_error,
            held_reason=source.held_reason,
            next_poll_at=source.next_poll_at,
            poll_interval_seconds=source.poll_interval_seconds,
            events=counts.get(source.id, 0),
        )
        for source in sources
    ]


def delete_source(session: Session, source_id: str) -> None:
    """Remove a source and, with it, every event it imported (their busy time is freed)."""
    source = session.get(ExternalSource, source_id)
    if source is None:
        raise SourceNotFound(f"no source {source_id!r}")
    # Copies merged into this source's events stand on their own again, or their busy
    # time would vanish with the copy they point at.
    own = select(ExternalEvent.id).where(ExternalEvent.source_id == source_id)
    session.execute(
        update(ExternalEvent)
        .where(ExternalEvent.merged_into_id.in_(own))
        .values(merged_into_id=None)
    )
    # Explicit, so it does not depend on the database enforcing ON DELETE CASCADE.
    session.execute(delete(ExternalEvent).where(ExternalEvent.source_id == source_id))
    session.delete(source)
