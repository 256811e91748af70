"""Importers that fetch external calendars for core.services.sync: ICS over HTTP, CalDAV.

make_fetcher(settings) returns one callable that picks the importer by source kind;
check_url(settings) returns the URL check the sources service runs on creation;
sync_now(runtime, source_id) is "sync this source now", as the API and /me pages ask it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from caldav_bridge.importers.caldav_source import CalDavFetcher
from caldav_bridge.importers.guard import Guard, parse_networks
from caldav_bridge.importers.http_ics import HttpIcsFetcher, refusal_reason
from core.db.models import ExternalSource
from core.runtime import Runtime
from core.services import ratelimit
from core.services.errors import FetchFailed, RateLimited, SyncThrottled
from core.services.sync import (
    Fetched,
    FetchRequest,
    SyncOutcome,
    SyncPolicy,
    confirm_removal,
    sync_source,
)
from core.settings import Settings


class SourceFetcher:
    """Dispatches a FetchRequest to the importer of its kind; share one per process."""

    def __init__(self, settings: Settings) -> None:
        guard = guard_of(settings)
        self.http = HttpIcsFetcher(
            timeout=settings.fetch_timeout_seconds,
            max_bytes=settings.feed_max_bytes,
            max_redirects=settings.fetch_max_redirects,
            guard=guard,
        )
        self.caldav = CalDavFetcher(
            timeout=settings.fetch_timeout_seconds,
            max_bytes=settings.feed_max_bytes,
            guard=guard,
        )

    def __call__(self, request: FetchRequest) -> Fetched:
        if request.kind == "caldav":
            return self.caldav(request)
        if request.kind == "ics":
            return self.http(request)
        raise FetchFailed(f"unknown source kind {request.kind!r}")

    def close(self) -> None:
        self.http.close()


def guard_of(settings: Settings) -> Guard:
    return Guard(
        allow_private=settings.import_allow_private,
        allowed=parse_networks(settings.import_allow_networks),
    )


def make_fetcher(settings: Settings) -> SourceFetcher:
    return SourceFetcher(settings)


def check_url(settings: Settings) -> Callable[[str], str | None]:
    """A check returning why a URL may not be imported (SSRF guard), or None."""

    guard = guard_of(settings)

    def check(url: str) -> str | None:
        return refusal_reason(url, allow_private=guard.allow_private, guard=guard)

    return check


def sync_now(runtime: Runtime, source_id: str, *, confirm: bool = False) -> SyncOutcome:
    """Sync one source at once (with confirm, accept its held removals first), blocking.

    Throttled per source and per tenant (PARLEY_SYNC_NOW_PER_SOURCE_PER_MINUTE, _PER_TENANT_):
    past that, ``SyncThrottled`` says when to try again. The fetcher is made for this one
    call and closed after it, so a request never shares connections with the poller.
    """
    _throttle(runtime, source_id)
    fetcher = make_fetcher(runtime.settings)
    policy = SyncPolicy.from_settings(runtime.settings, runtime.secrets.secret_key)
    action = confirm_removal if confirm else sync_source
    try:
        return action(runtime.sessions, source_id, fetcher, now=runtime.clock(), policy=policy)
    finally:
        fetcher.close()


def _throttle(runtime: Runtime, source_id: str) -> None:
    settings, now = runtime.settings, runtime.clock()
    with runtime.sessions() as session:
        tenant_id = session.scalar(
            select(ExternalSource.tenant_id).where(ExternalSource.id == source_id)
        )
    if tenant_id is None:
        return  # sync_source says the source is missing
    for key, limit, what in (
        (
            f"sync-now:source:{source_id}",
            settings.sync_now_per_source_per_minute,
            "this calendar was",
        ),
        (f"sync-now:tenant:{tenant_id}", settings.sync_now_per_tenant_per_minute, "calendars were"),
    ):
        try:
            ratelimit.check(runtime.sessions, key, now, limit=limit)
        except RateLimited as limited:
            raise SyncThrottled(limited.retry_after, what) from None
