"""One sync attempt of an external calendar source, and polling every due source.

Fetch (conditional GET or CalDAV query) outside any transaction; a 304 or an unchanged
body hash touches no event row and parses nothing. A changed body is read over the
booking window, diffed against what that source stored for the same window, and only
the delta is written; then the provider's sources are deduplicated and conflicts
recorded. A feed that suddenly loses most of its future events is held for confirmation.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.crypto import unseal
from core.db.models import (
    AvailabilitySettings,
    Conflict,
    ExternalEvent,
    ExternalSource,
    Provider,
    SyncLog,
)
from core.errors import CannotDecrypt
from core.events import record
from core.feeds import FeedError, FeedEvent, FeedResult, Platform, read_feed
from core.feeds.merge import (
    Delta,
    Settlement,
    SourcedEvent,
    dedup,
    diff,
    is_mass_removal,
    settle,
)
from core.feeds.platforms import EventKind, priority_of
from core.metrics import (
    CONFLICTS_DETECTED,
    ICS_EVENTS,
    ICS_PAYLOAD_BYTES,
    ICS_POLL_SECONDS,
    ICS_POLLS,
    POLL_HOST_WAIT_SECONDS,
    POLL_PRESSURE,
)
from core.services.errors import FetchFailed, NotHeld, SourceMissing, SourceNotFound
from core.services.source_urls import source_url
from core.settings import Settings

DEFAULT_BOOKING_DAYS = 60
_PAST_SLACK = timedelta(days=1)
# Parse a week past the booking window, so an unchanged feed needs a full re-read
# only weekly while the window slides forward day by day.
_HORIZON_SLACK = timedelta(days=8)
_ERROR_BASE_SECONDS = 120.0


# --- what fetchers see and return -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """What a fetcher needs; etag / last_modified are None when a full read is required."""

    source_id: str
    kind: str
    url: str
    username: str | None
    password: str | None
    etag: str | None
    last_modified: str | None
    window_start: datetime
    window_end: datetime


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetch's answer: status 304 with no body, or a body with its validators."""

    status: int
    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None


class Fetcher(Protocol):
    def __call__(self, request: FetchRequest) -> Fetched: ...


# --- policy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncPolicy:
    """Limits and polling cadence, from settings; rng is injectable for tests."""

    secret_key: bytes = field(repr=False)
    max_events: int = 50_000
    min_interval: timedelta = timedelta(minutes=15)
    max_interval: timedelta = timedelta(hours=6)
    peak_hours: tuple[int, int] = (14, 22)
    peak_factor: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    # The freshness gate's limit (PARLEY_SOURCE_STALE_MINUTES): a source that answers is
    # checked again well within it, however quiet it is, so it never goes stale.
    stale_after: timedelta = timedelta(minutes=180)
    per_host: int = 2  # fetches in flight to one host
    host_gap: timedelta = timedelta(milliseconds=250)  # between two requests to one host
    # Above 1 while more sources are due than the workers drain: the shortest interval
    # widens by this factor (never past healthy_max), so the queue can catch up.
    pressure: float = 1.0

    @property
    def healthy_max(self) -> timedelta:
        """The longest wait after a successful poll: PARLEY_POLL_MAX_MINUTES, but at most
        half the stale limit (room for jitter, a busy poll queue and one failed try)."""
        return max(self.min_interval, min(self.max_interval, self.stale_after / 2))

    @property
    def shortest(self) -> timedelta:
        """The shortest wait between polls now: min_interval, widened under pressure."""
        return min(self.min_interval * max(1.0, self.pressure), self.healthy_max)

    @classmethod
    def from_settings(cls, settings: Settings, secret_key: bytes) -> SyncPolicy:
        return cls(
            secret_key=secret_key,
            max_events=settings.feed_max_events,
            min_interval=timedelta(minutes=settings.poll_min_minutes),
            max_interval=timedelta(minutes=settings.poll_max_minutes),
            peak_hours=settings.poll_peak_hours,
            peak_factor=settings.poll_peak_factor,
            stale_after=timedelta(minutes=settings.source_stale_minutes),
            per_host=settings.poll_per_host,
            host_gap=timedelta(milliseconds=settings.poll_host_gap_ms),
        )


def next_interval(current: timedelta, changed: bool, policy: SyncPolicy) -> timedelta:
    """A source that changed is polled twice as often; a quiet one half again as rarely."""
    scaled = current / 2 if changed else current * 1.5
    return max(policy.shortest, min(policy.healthy_max, scaled))


def poll_delay(interval: timedelta, local_hour: int, policy: SyncPolicy) -> timedelta:
    """The wait before the next poll: the peak-hour factor, clamped, with ±10 % jitter."""
    start, end = policy.peak_hours
    peak = start <= local_hour < end if start <= end else local_hour >= start or local_hour < end
    delay = interval * (policy.peak_factor if peak else 1.0)
    delay = max(policy.shortest, min(policy.healthy_max, delay))
    return delay * policy.rng.uniform(0.9, 1.1)


def error_backoff(consecutive_errors: int, policy: SyncPolicy) -> timedelta:
    """Exponential back-off from two minutes, capped at the longest interval, ±20 % jitter."""
    seconds = _ERROR_BASE_SECONDS * 2 ** min(max(consecutive_errors - 1, 0), 16)
    capped = min(seconds, policy.max_interval.total_seconds())
    return timedelta(seconds=capped * policy.rng.uniform(0.8, 1.2))


# --- outcome --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What one attempt did; status is the source's status afterwards."""

    source_id: str
    status: str  # "ok", "error", "held"
    added: int = 0
    updated: int = 0
    removed: int = 0
    not_modified: bool = False
    parsed: bool = False
    skipped: int = 0
    conflicts: int = 0
    error: str | None = None
    next_poll_at: datetime | None = None


@dataclass(slots=True)
class _Timer:
    started: float = field(default_factory=time.perf_counter)
    http_ms: int = 0
    parse_ms: int = 0
    db_ms: int = 0
    payload_bytes: int = 0  # what the fetch downloaded (0 for a 304 or a failed fetch)

    def total_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What the attempt needs of the source, read in a short first transaction."""

    source_id: str
    tenant_id: str
    provider_id: str
    request: FetchRequest
    stored_hash: str | None
    zone: str
    booking_days: int
    window: tuple[datetime, datetime]
    held: bool
    platform: str


# --- one attempt ----------------------------------------------------------------------------


def sync_source(
    sessions: sessionmaker[Session],
    source_id: str,
    fetch: Fetcher,
    *,
    now: datetime,
    policy: SyncPolicy,
    accept_removal: bool = False,
) -> SyncOutcome:
    """Poll one source once and record the attempt; never raises for a bad feed."""
    timer = _Timer()
    with sessions.begin() as session:
        snap = _snapshot(session, source_id, now, policy)
    began = time.perf_counter()
    try:
        if not snap.request.url:
            raise FetchFailed(
                "the calendar's address cannot be decrypted with this PARLEY_SECRET_KEY"
                " (was the key changed?): remove the calendar and add it again"
            )
        fetched = fetch(snap.request)
    except FetchFailed as exc:
        timer.http_ms = _ms(began)
        return _record_error(sessions, snap, now, policy, timer, exc.message, exc.http_status)
    timer.http_ms = _ms(began)
    timer.payload_bytes = len(fetched.body or b"")
    if fetched.status == 304 or fetched.body is None:
        return _record_unchanged(sessions, snap, now, policy, timer, 304, None)
    # SHA-256 is hardware-accelerated almost everywhere: ~2 ms for a 3 MB feed.
    digest = hashlib.sha256(fetched.body).hexdigest()[:32]
    if _hash_still_good(snap, digest, now):
        return _record_unchanged(sessions, snap, now, policy, timer, fetched.status, fetched)
    began = time.perf_counter()
    try:
        result = read_feed(
            fetched.body,
            window_start=snap.window[0],
            window_end=snap.window[1],
            default_zone=snap.zone,
            max_events=policy.max_events,
        )
    except FeedError as exc:
        timer.parse_ms = _ms(began)
        return _record_error(sessions, snap, now, policy, timer, str(exc), fetched.status)
    timer.parse_ms = _ms(began)
    content = f"{digest}/{snap.window[1]:%Y%m%d}"
    return _apply(sessions, snap, now, policy, timer, fetched, result, content, accept_removal)


def _ms(began: float) -> int:
    return int((time.perf_counter() - began) * 1000)


def _snapshot(session: Session, source_id: str, now: datetime, policy: SyncPolicy) -> _Snapshot:
    # One round trip: an unchanged poll's whole budget is a few milliseconds.
    row = session.execute(
        select(ExternalSource, Provider.timezone, AvailabilitySettings.booking_window_days)
        .join(Provider, Provider.id == ExternalSource.provider_id)
        .outerjoin(AvailabilitySettings, AvailabilitySettings.provider_id == Provider.id)
        .where(ExternalSource.id == source_id)
    ).first()
    if row is None:
        raise SourceMissing(f"no source {source_id!r}")
    source, zone, days = row
    booking_days = days if days is not None else DEFAULT_BOOKING_DAYS
    window = _window(now, booking_days)
    fresh_enough = _horizon_of(source.content_hash) >= _needed_horizon(now, booking_days)
    password = None
    if source.secret_encrypted is not None:
        try:
            password = unseal(policy.secret_key, source.secret_encrypted)
        except CannotDecrypt:
            password = None
    request = FetchRequest(
        source_id=source.id,
        kind=source.kind,
        url=_url_or_empty(policy.secret_key, source),
        username=source.username,
        password=password,
        etag=source.etag if fresh_enough else None,
        last_modified=source.last_modified if fresh_enough else None,
        window_start=window[0],
        window_end=window[1],
    )
    return _Snapshot(
        source_id=source.id,
        tenant_id=source.tenant_id,
        provider_id=source.provider_id,
        request=request,
        stored_hash=source.content_hash,
        zone=zone,
        booking_days=booking_days,
        window=window,
        held=source.status == "held",
        platform=source.platform,
    )


def _url_or_empty(secret_key: bytes, source: ExternalSource) -> str:
    try:
        return source_url(secret_key, source)
    except CannotDecrypt:
        return ""


def _window(now: datetime, booking_days: int) -> tuple[datetime, datetime]:
    """From the start of yesterday (UTC) to a week past the booking window, on day bounds."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - _PAST_SLACK, today + timedelta(days=booking_days) + _HORIZON_SLACK


def _needed_horizon(now: datetime, booking_days: int) -> str:
    return f"{now.astimezone(UTC) + timedelta(days=booking_days + 1):%Y%m%d}"


def _horizon_of(content_hash: str | None) -> str:
    """The window end a stored body hash was read up to ("" when unknown)."""
    if not content_hash or "/" not in content_hash:
        return ""
    return content_hash.rpartition("/")[2]


def _hash_still_good(snap: _Snapshot, digest: str, now: datetime) -> bool:
    if not snap.stored_hash or snap.stored_hash.partition("/")[0] != digest:
        return False
    return _horizon_of(snap.stored_hash) >= _needed_horizon(now, snap.booking_days)


# --- recording the attempt ------------------------------------------------------------------


def _log(snap: _Snapshot, now: datetime, status: str, timer: _Timer, **values: Any) -> SyncLog:
    return SyncLog(
        tenant_id=snap.tenant_id,
        source_id=snap.source_id,
        started_at=now,
        completed_at=now + timedelta(milliseconds=timer.total_ms()),
        status=status,
        http_ms=timer.http_ms,
        parse_ms=timer.parse_ms,
        db_ms=timer.db_ms,
        duration_ms=timer.total_ms(),
        **values,
    )


def _local_hour(zone: str, now: datetime) -> int:
    try:
        return now.astimezone(ZoneInfo(zone)).hour
    except (KeyError, ValueError):
        return now.astimezone(UTC).hour


def _record_error(
    sessions: sessionmaker[Session],
    snap: _Snapshot,
    now: datetime,
    policy: SyncPolicy,
    timer: _Timer,
    message: str,
    http_status: int | None,
) -> SyncOutcome:
    """Keep every stored event; mark the source and back off."""
    message = message[:1000]
    with sessions.begin() as session:
        source = _locked(session, snap.source_id)
        if source is None:
            raise SourceMissing(f"source {snap.source_id} was deleted")
        source.status = "error"
        source.last_error = message
        source.last_attempt_at = now
        source.consecutive_errors += 1
        source.next_poll_at = now + error_backoff(source.consecutive_errors, policy)
        session.add(_log(snap, now, "error", timer, http_status=http_status, error=message))
        errors, next_poll = source.consecutive_errors, source.next_poll_at
    _polled(snap, "error", timer, http_status=http_status, consecutive_errors=errors)
    return SyncOutcome(snap.source_id, "error", error=message, next_poll_at=next_poll)


def _record_unchanged(
    sessions: sessionmaker[Session],
    snap: _Snapshot,
    now: datetime,
    policy: SyncPolicy,
    timer: _Timer,
    http_status: int,
    fetched: Fetched | None,
) -> SyncOutcome:
    """A 304 or the same body: no event row is touched; the source is fresh again."""
    with sessions.begin() as session:
        source = _locked(session, snap.source_id)
        if source is None:
            raise SourceMissing(f"source {snap.source_id} was deleted")
        _mark_success(source, now)
        if fetched is not None:
            source.etag, source.last_modified = fetched.etag, fetched.last_modified
        interval = next_interval(timedelta(seconds=source.poll_interval_seconds), False, policy)
        source.poll_interval_seconds = int(interval.total_seconds())
        source.next_poll_at = now + poll_delay(interval, _local_hour(snap.zone, now), policy)
        session.add(
            _log(snap, now, "not_modified", timer, http_status=http_status, not_modified=True)
        )
        next_poll = source.next_poll_at
    _polled(snap, "not_modified", timer, http_status=http_status, etag_matched=fetched is None)
    return SyncOutcome(snap.source_id, "ok", not_modified=True, next_poll_at=next_poll)


_PLATFORMS = frozenset(platform.value for platform in Platform)


def _polled(snap: _Snapshot, outcome: str, timer: _Timer, **fields: Any) -> None:
    """The metrics and the ``cal.ics.poll.*`` event of one attempt (a 304 is a poll.ok).

    The event carries the seed's tags: src_id, http_status, etag_matched (the feed
    answered 304 to our validators) and delta_event_count (events added, updated or
    removed; 0 when nothing changed).
    """
    platform = snap.platform if snap.platform in _PLATFORMS else "other"
    ICS_POLLS.labels(platform=platform, outcome=outcome).inc()
    ICS_POLL_SECONDS.labels(platform=platform).observe(timer.total_ms() / 1000)
    if timer.payload_bytes:
        ICS_PAYLOAD_BYTES.labels(platform=platform).inc(timer.payload_bytes)
    name = "ok" if outcome == "not_modified" else outcome
    tags = {"etag_matched": False, "delta_event_count": 0, **fields}
    record(
        f"cal.ics.poll.{name}",
        src_id=snap.source_id,
        platform=platform,
        outcome=outcome,
        payload_bytes=timer.payload_bytes,
        duration_ms=timer.total_ms(),
        **tags,
    )


def _mark_success(source: ExternalSource, now: datetime) -> None:
    source.status = "ok"
    source.held_reason = None
    source.last_error = None
    source.consecutive_errors = 0
    source.last_attempt_at = now
    source.last_success_at = now


def _locked(session: Session, source_id: str) -> ExternalSource | None:
    query = select(ExternalSource).where(ExternalSource.id == source_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalars(query).first()


# --- applying a changed feed ----------------------------------------------------------------


def _apply(
    sessions: sessionmaker[Session],
    snap: _Snapshot,
    now: datetime,
    policy: SyncPolicy,
    timer: _Timer,
    fetched: Fetched,
    result: FeedResult,
    content: str,
    accept_removal: bool,
) -> SyncOutcome:
    # Zero-length and free/cancelled events block nothing, so they are not stored.
    busy = [e for e in result.events if e.busy and e.end > e.start]
    began = time.perf_counter()
    with sessions.begin() as session:
        source = _locked(session, snap.source_id)
        if source is None:
            raise SourceMissing(f"source {snap.source_id} was deleted")
        stored = _stored_hashes(session, snap)
        delta = diff({key: value[0] for key, value in stored.items()}, busy)
        before = sum(1 for value in stored.values() if value[1] > now)
        after = sum(1 for event in busy if event.end > now)
        if not accept_removal and is_mass_removal(before, after):
            return _hold(session, source, snap, now, policy, timer, result, before, after, began)
        _write_delta(session, snap, delta, now)
        _adopt_platform(source, result)
        conflicts = 0
        if delta.added or delta.updated or delta.removed or source.status == "pending":
            conflicts = reconcile(session, snap.provider_id, snap.window, now)
        _finish_source(source, snap, now, policy, fetched, result, content, after, delta)
        timer.db_ms = _ms(began)
        session.add(_changed_log(snap, now, timer, fetched, result, delta, conflicts))
        next_poll = source.next_poll_at
    changes = {"added": delta.added, "updated": delta.updated, "removed": delta.removed}
    for change, events in changes.items():
        ICS_EVENTS.labels(change=change).inc(len(events))
    _polled(
        snap,
        "ok",
        timer,
        http_status=fetched.status,
        delta_event_count=sum(len(events) for events in changes.values()),
        **{change: len(events) for change, events in changes.items()},
        skipped=result.skipped,
        conflicts=conflicts,
    )
    return SyncOutcome(
        snap.source_id,
        "ok",
        added=len(delta.added),
        updated=len(delta.updated),
        removed=len(delta.removed),
        parsed=True,
        skipped=result.skipped,
        conflicts=conflicts,
        next_poll_at=next_poll,
    )


def _stored_hashes(
    session: Session, snap: _Snapshot
) -> dict[tuple[str, str | None], tuple[str, datetime]]:
    """{(uid, recurrence_id): (content_hash, end)} of this source's events touching the window."""
    lo, hi = snap.window
    rows = session.execute(
        select(
            ExternalEvent.uid,
            ExternalEvent.recurrence_id,
            ExternalEvent.content_hash,
            ExternalEvent.end_at,
        ).where(
            ExternalEvent.source_id == snap.source_id,
            ExternalEvent.start_at < hi,
            ExternalEvent.end_at > lo,
        )
    )
    return {(uid, rid or None): (digest, end) for uid, rid, digest, end in rows}


def _hold(
    session: Session,
    source: ExternalSource,
    snap: _Snapshot,
    now: datetime,
    policy: SyncPolicy,
    timer: _Timer,
    result: FeedResult,
    before: int,
    after: int,
    began: float,
) -> SyncOutcome:
    """Keep the stored busy time and the old validators, so every poll re-checks the feed."""
    reason = (
        f"feed dropped {before - after} of {before} future events; keeping them until "
        f"confirmed with POST /api/v1/sources/{snap.source_id}/confirm-removal"
    )
    source.status = "held"
    source.held_reason = reason
    source.last_attempt_at = now
    source.next_poll_at = now + poll_delay(policy.min_interval, 0, policy)
    timer.db_ms = _ms(began)
    log = _log(snap, now, "held", timer, http_status=200, error=reason)
    log.events_found, log.events_skipped = after, result.skipped
    session.add(log)
    _polled(snap, "held", timer, http_status=200, before=before, after=after)
    return SyncOutcome(
        snap.source_id, "held", parsed=True, error=reason, next_poll_at=source.next_poll_at
    )


def _event_row(snap: _Snapshot, event: FeedEvent, now: datetime) -> dict[str, Any]:
    code = event.platform.reservation_code
    return {
        "tenant_id": snap.tenant_id,
        "source_id": snap.source_id,
        "provider_id": snap.provider_id,
        "uid": event.uid[:512],
        "recurrence_id": event.recurrence_id or "",
        "start_at": event.start,
        "end_at": event.end,
        "all_day": event.all_day,
        "kind": event.platform.kind.value,
        "summary": event.summary[:500] or None,
        "reservation_code": code[:50] if code else None,
        "phone_last4": event.platform.phone_last4,
        "content_hash": event.content_hash,
        "dedup_key": f"code:{code}"[:255] if code else None,
        "first_seen_at": now,
        "last_seen_at": now,
    }


def _write_delta(session: Session, snap: _Snapshot, delta: Delta, now: datetime) -> None:
    if delta.added:
        session.execute(insert(ExternalEvent), [_event_row(snap, e, now) for e in delta.added])
    for event in delta.updated:
        values = _event_row(snap, event, now)
        for fixed in ("tenant_id", "source_id", "provider_id", "uid", "first_seen_at"):
            values.pop(fixed)
        session.execute(
            update(ExternalEvent)
            .where(
                ExternalEvent.source_id == snap.source_id,
                ExternalEvent.uid == event.uid[:512],
                ExternalEvent.recurrence_id == (event.recurrence_id or ""),
            )
            .values(**values)
        )
    for uid, rid in delta.removed:
        session.execute(
            delete(ExternalEvent).where(
                ExternalEvent.source_id == snap.source_id,
                ExternalEvent.uid == uid,
                ExternalEvent.recurrence_id == (rid or ""),
            )
        )
    lo, hi = snap.window
    # Rows the sliding window has left behind (past stays, or a shortened booking window).
    session.execute(
        delete(ExternalEvent).where(
            ExternalEvent.source_id == snap.source_id,
            or_(ExternalEvent.end_at <= lo, ExternalEvent.start_at >= hi),
        )
    )


def _adopt_platform(source: ExternalSource, result: FeedResult) -> None:
    """A source added as generic takes the platform its feed shows, and that priority."""
    detected = result.calendar_props.platform
    if source.platform == Platform.GENERIC.value and detected is not Platform.GENERIC:
        if source.priority == priority_of(Platform.GENERIC):
            source.priority = priority_of(detected)
        source.platform = detected.value


def _finish_source(
    source: ExternalSource,
    snap: _Snapshot,
    now: datetime,
    policy: SyncPolicy,
    fetched: Fetched,
    result: FeedResult,
    content: str,
    future: int,
    delta: Delta,
) -> None:
    _mark_success(source, now)
    source.etag, source.last_modified = fetched.etag, fetched.last_modified
    source.content_hash = content
    source.future_event_count = future
    changed = bool(delta.added or delta.updated or delta.removed)
    interval = next_interval(timedelta(seconds=source.poll_interval_seconds), changed, policy)
    source.poll_interval_seconds = int(interval.total_seconds())
    source.next_poll_at = now + poll_delay(interval, _local_hour(snap.zone, now), policy)


def _changed_log(
    snap: _Snapshot,
    now: datetime,
    timer: _Timer,
    fetched: Fetched,
    result: FeedResult,
    delta: Delta,
    conflicts: int,
) -> SyncLog:
    return _log(
        snap,
        now,
        "partial" if result.skipped else "success",
        timer,
        http_status=fetched.status,
        events_found=len(result.events),
        events_added=len(delta.added),
        events_updated=len(delta.updated),
        events_removed=len(delta.removed),
        events_skipped=result.skipped,
        conflicts_found=conflicts,
        bytes_received=len(fetched.body or b""),
        error=(
            ", ".join(f"{k}: {v}" for k, v in sorted(result.skip_reasons.items()))[:1000] or None
        ),
    )


# --- across the provider's sources ----------------------------------------------------------


def reconcile(
    session: Session, provider_id: str, window: tuple[datetime, datetime], now: datetime
) -> int:
    """Deduplicate the provider's events across sources and record conflicts; returns how many.

    Duplicates point at the copy kept (merged_into_id); they stay busy, so a busy loader
    may count or skip them. Conflicts are replaced by the current settlement.
    """
    lo, hi = window
    rows = session.execute(
        select(ExternalEvent, ExternalSource.platform, ExternalSource.priority)
        .join(ExternalSource, ExternalSource.id == ExternalEvent.source_id)
        .where(
            ExternalEvent.provider_id == provider_id,
            ExternalEvent.start_at < hi,
            ExternalEvent.end_at > lo,
        )
    ).all()
    by_ref: dict[tuple[str, str, str | None], ExternalEvent] = {}
    sourced: list[SourcedEvent] = []
    for row, platform, priority in rows:
        event = _sourced(row, platform, priority)
        by_ref[event.ref] = row
        sourced.append(event)
    found = dedup(sourced)
    merged = {d.dropped: by_ref[d.kept].id for d in found.duplicates}
    for ref, row in by_ref.items():
        target = merged.get(ref)
        if row.merged_into_id != target:
            row.merged_into_id = target
    settlements = settle(found.kept)
    return _store_conflicts(session, provider_id, settlements, by_ref, now)


def _sourced(row: ExternalEvent, platform: str, priority: int) -> SourcedEvent:
    return SourcedEvent(
        source_id=row.source_id,
        platform=platform,
        unit_id=row.provider_id,
        uid=row.uid,
        recurrence_id=row.recurrence_id or None,
        start=row.start_at,
        end=row.end_at,
        kind=EventKind(row.kind),
        reservation_code=row.reservation_code,
        priority_override=priority,
        phone_last4=row.phone_last4,
    )


def _store_conflicts(
    session: Session,
    provider_id: str,
    settlements: Sequence[Settlement],
    by_ref: dict[tuple[str, str, str | None], ExternalEvent],
    now: datetime,
) -> int:
    existing = {
        (c.event_a_id, c.event_b_id): c
        for c in session.scalars(select(Conflict).where(Conflict.provider_id == provider_id))
    }
    current: set[tuple[int, int]] = set()
    for found in settlements:
        a, b = by_ref[found.first], by_ref[found.second]
        pair = (min(a.id, b.id), max(a.id, b.id))
        current.add(pair)
        winner = by_ref[found.winner].id if found.winner is not None else None
        row = existing.get(pair)
        if row is None:
            row = Conflict(
                tenant_id=a.tenant_id, provider_id=provider_id, event_a_id=pair[0],
                event_b_id=pair[1], created_at=now,
            )  # fmt: skip
            session.add(row)
            CONFLICTS_DETECTED.inc()
        elif row.resolved_by and not row.resolved_by.startswith("rule:"):
            continue  # a person settled it (conflicts.resolve): later polls keep that
        row.conflict_type = found.conflict_type.value
        row.overlap_start, row.overlap_end = found.overlap_start, found.overlap_end
        row.resolution, row.winner_id, row.warning = found.strategy, winner, found.warning
        row.remaining = [[a.isoformat(), b.isoformat()] for a, b in found.loser_remaining] or None
        row.resolved_by = found.resolved_by
        row.resolved_at = None if found.needs_review else (row.resolved_at or now)
    for pair, row in existing.items():
        if pair not in current:
            session.delete(row)
    if settlements:
        record("cal.ics.conflicts", provider_id=provider_id, count=len(settlements))
    return len(settlements)


def confirm_removal(
    sessions: sessionmaker[Session],
    source_id: str,
    fetch: Fetcher,
    *,
    now: datetime,
    policy: SyncPolicy,
) -> SyncOutcome:
    """A human confirmed a held source's removals: read it again and apply them."""
    with sessions.begin() as session:
        source = session.get(ExternalSource, source_id)
        if source is None:
            raise SourceNotFound(f"no source {source_id!r}")
        if source.status != "held":
            raise NotHeld(f"source {source_id} is not held (status {source.status!r})")
    return sync_source(sessions, source_id, fetch, now=now, policy=policy, accept_removal=True)


# --- keeping the logs -----------------------------------------------------------------------

SYNC_LOG_DAYS = 90


def purge_sync_logs(session: Session, now: datetime, *, keep_days: int = SYNC_LOG_DAYS) -> int:
    """Delete poll records older than keep_days (90: MUVA §4's retention); how many."""
    cutoff = now - timedelta(days=keep_days)
    result = session.execute(delete(SyncLog).where(SyncLog.started_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


# --- polling many ---------------------------------------------------------------------------


def due_sources(session: Session, now: datetime, limit: int) -> list[str]:
    """Ids of sources whose next poll is due, most overdue first."""
    query = (
        select(ExternalSource.id)
        .where(ExternalSource.next_poll_at <= now)
        .order_by(ExternalSource.next_poll_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def sources_to_poll(
    session: Session, now: datetime, *, source_id: str | None = None, everything: bool = False
) -> list[str]:
    """One source (raises SourceNotFound when absent), every source, or those due now."""
    if source_id is not None:
        if session.get(ExternalSource, source_id) is None:
            raise SourceNotFound(f"no source {source_id!r}")
        return [source_id]
    if everything:
        query = select(ExternalSource.id).order_by(ExternalSource.next_poll_at)
        return list(session.scalars(query))
    return due_sources(session, now, limit=1_000_000)


class HostGate:
    """Politeness per calendar host: at most ``per_host`` fetches in flight to one host,
    and their starts at least ``gap`` apart (a tenant with 300 Airbnb calendars must not
    hammer Airbnb). Shared by the threads of one poll run."""

    def __init__(
        self,
        per_host: int,
        gap: timedelta,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._per_host, self._gap = per_host, gap.total_seconds()
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._next: dict[str, float] = {}

    @contextmanager
    def entered(self, host: str) -> Iterator[None]:
        with self._lock:
            slots = self._slots.setdefault(host, threading.BoundedSemaphore(self._per_host))
        with slots:
            with self._lock:
                now = self._clock()
                start = max(now, self._next.get(host, now))
                self._next[host] = start + self._gap
            if start > now:
                POLL_HOST_WAIT_SECONDS.inc(start - now)
                self._sleep(start - now)
            yield


def _by_host(session: Session, source_ids: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The ids taking hosts in turn (so the gate rarely holds a thread), and each id's host."""
    hosts: dict[str, str] = {}
    for start in range(0, len(source_ids), 500):
        chunk = source_ids[start : start + 500]
        rows = session.execute(
            select(ExternalSource.id, ExternalSource.url).where(ExternalSource.id.in_(chunk))
        ).all()
        hosts.update((ident, (urlsplit(url).hostname or "").lower()) for ident, url in rows)
    queues: dict[str, list[str]] = {}
    for ident in source_ids:
        queues.setdefault(hosts.get(ident, ""), []).append(ident)
    ordered = [
        ident
        for turn in itertools.zip_longest(*queues.values())
        for ident in turn
        if ident is not None
    ]
    return ordered, hosts


def poll_sources(
    sessions: sessionmaker[Session],
    source_ids: Sequence[str],
    fetch: Fetcher,
    *,
    now: Callable[[], datetime],
    policy: SyncPolicy,
    concurrency: int,
    on_done: Callable[[SyncOutcome], None] | None = None,
) -> list[SyncOutcome]:
    """Sync the given sources with at most `concurrency` fetches in flight, and at most
    ``policy.per_host`` to one host, ``policy.host_gap`` apart."""
    with sessions() as session:
        ordered, hosts = _by_host(session, source_ids)
    gate = HostGate(policy.per_host, policy.host_gap)

    def one(source_id: str) -> SyncOutcome | None:
        try:
            with gate.entered(hosts.get(source_id, "")):
                outcome = sync_source(sessions, source_id, fetch, now=now(), policy=policy)
        except SourceMissing:
            return None
        if on_done is not None:
            on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(one, ordered))
    return [r for r in results if r is not None]


def poll_due(
    sessions: sessionmaker[Session],
    fetch: Fetcher,
    *,
    now: Callable[[], datetime],
    policy: SyncPolicy,
    concurrency: int,
    limit: int = 1000,
) -> list[SyncOutcome]:
    """Poll every source that is due now (at most limit of them).

    When more are due than one run takes, the back-pressure factor (due / limit, at most
    4) widens the shortest interval of the sources polled, so the queue drains; the
    ``parley_poll_pressure`` gauge shows it.
    """
    with sessions.begin() as session:
        moment = now()
        ids = due_sources(session, moment, limit)
        due = len(ids)
        if due >= limit:
            due = (
                session.scalar(select(func.count()).where(ExternalSource.next_poll_at <= moment))
                or due
            )
    pressure = min(4.0, max(1.0, due / max(1, limit)))
    POLL_PRESSURE.set(pressure)
    if pressure > 1.0:
        record("cal.ics.poll.backpressure", due=due, limit=limit, factor=round(pressure, 2))
        policy = replace(policy, pressure=pressure)
    return poll_sources(sessions, ids, fetch, now=now, policy=policy, concurrency=concurrency)
