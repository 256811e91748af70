"""Holds: a slot kept for a guest while they check out, and its conversion to a booking.

Creating and confirming a hold are each one transaction serialized per provider and
re-check feasibility under that serialization, so of overlapping attempts exactly one
wins and the others get ``SlotTaken``. A hold blocks only while ``expires_at > now``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection, IntegrityError
from psycopg.pq import TransactionStatus
from sqlalchemy.orm import Session

from core.db.driver import Deferred, db_time, driver_batch, driver_rows, for_driver, pipelined_async
from core.db.models import Booking, Hold, MeetingType, new_id
from core.domain import AvailabilityPolicy, Busy
from core.domain.errors import InvalidInterval
from core.domain.slots import require_aware
from core.domain.zones import is_nonexistent
from core.events import record
from core.formatting import normalize_locale
from core.metrics import (
    BOOKING_ATTEMPTS,
    HOLD_OVERLAPS,
    HOLDS_CONVERTED,
    HOLDS_CREATED,
    HOLDS_RELEASED,
)
from core.runtime import Runtime
from core.services import meeting_types, ratelimit
from core.services.availability import (
    RULES,
    busy_for_span,
    check_bookable,
    check_free,
    check_rules,
    load_policy,
    padded,
    policy_from_rows,
)
from core.services.bookings import Actor, book_hold
from core.services.busy import (
    Exclude,
    as_busy,
    busy_from_unit_rows,
    own_busy_rows,
    related_units,
    unit_rows_statement,
)
from core.services.errors import (
    HoldExpired,
    IdempotencyMismatch,
    InvalidInput,
    NotFoundError,
    SlotTaken,
    SlotUnavailable,
)
from core.services.providers import (
    Scope,
    check_email,
    get_provider,
    lock_providers,
    scope_from_rows,
    scope_sql,
)

MAX_HOLD = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """What a guest asks to hold; ``guest_email`` may come later, at confirmation."""

    provider_id: str
    start: datetime
    end: datetime
    guest_email: str | None = None
    guest_name: str | None = None
    guest_timezone: str | None = None
    idempotency_key: str | None = None
    source: str = "api"  # where the request came from (api, page), for the metrics
    meeting_type: str | None = None  # the provider's meeting type, by id or slug


@dataclass(frozen=True, slots=True)
class HoldResult:
    """The hold, and whether this call created it (False: an idempotent replay)."""

    hold: Hold
    created: bool


def hold_status(hold: Hold, now: datetime) -> str:
    """The status as readers see it: an active hold past its TTL is already expired."""
    if hold.status == "active" and hold.expires_at <= now:
        return "expired"
    return hold.status


def get_hold(session: Session, hold_id: str) -> Hold:
    """The hold with ``hold_id`` or ``NotFoundError``."""
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise NotFoundError("hold", hold_id)
    return hold


def create_hold(
    session: Session, request: HoldRequest, now: datetime, *, ttl_seconds: int
) -> HoldResult:
    """Hold [start, end) for the guest, or return the hold already made with this key.

    The hot path of a public endpoint, so it is two round trips before the commit: one
    batch that locks the provider and its related units while reading the settings,
    reads the rules, what is busy around the span and any hold with the same key; then
    the insert.
    """
    _check_request(request)
    loaded = _load_for_hold(session, request, now)
    if isinstance(loaded, Hold):  # the same idempotency key was used before
        return HoldResult(_same_or_mismatch(loaded, request), created=False)
    scope, policy, busy = loaded.scope, loaded.policy, loaded.busy
    kind = None
    if request.meeting_type is not None:
        kind = meeting_types.bookable_type(session, scope.id, request.meeting_type)
        meeting_types.check_length(kind, request.end - request.start)
        typed = meeting_types.policy_for(policy, kind)
        if padded(typed, (request.start, request.end)) != padded(
            policy, (request.start, request.end)
        ):
            span = (request.start, request.end)
            busy = busy_for_span(session, scope.id, typed, span, now, related=scope.related)
        policy = typed
    check_rules(policy, request.start, request.end, now)
    _check_free(policy, busy, request, now)
    hold = _new_hold(scope, request, now, ttl_seconds)
    hold.meeting_type_id = kind.id if kind is not None else None
    _insert(session, hold, request)
    _created(hold, request.source)
    return HoldResult(hold, created=True)


async def create_hold_hot(
    conn: AsyncConnection[Any],
    request: HoldRequest,
    now: datetime,
    *,
    ttl_seconds: int,
    hit: Deferred | None = None,
) -> HoldResult | None:
    """``create_hold`` on an asyncio PostgreSQL connection, for the common case.

    One transaction of three round trips. The first is a pipeline like ``create_hold``'s
    batch: lock the provider while reading its settings, count ``hit`` (a rate-limit
    statement), read the rules, what is busy around the span (with the buffers guessed
    from the provider's last hold) and any hold with the same key. Then the insert,
    then the commit. A provider with related units, or a key used before, is left to
    ``create_hold``: then nothing is written here and the answer is None.
    """
    _check_request(request)
    if request.meeting_type is not None:
        return None  # its own buffers and lengths: create_hold reads the type
    provider_id = request.provider_id
    guess, low, high = _guessed_span(request)
    statements: list[tuple[str, Mapping[str, Any]]] = [
        ("BEGIN", {}),
        (_HOT_SCOPE, {"provider": provider_id}),
        (_HOT_RULES, {"provider": provider_id}),
        _hot_busy(provider_id, low, high, now),
    ]
    if hit is not None:  # after the provider lock, as in create_hold's batch
        statements.append((for_driver(hit.sql, "postgresql"), hit.params))
    if request.idempotency_key:
        by_key = {"provider": provider_id, "key": request.idempotency_key}
        statements.append((_HOT_BY_KEY, by_key))
    try:
        _, scope_rows, rules, busy_rows, *rest = await pipelined_async(conn, statements)
        scope = scope_from_rows(scope_rows, provider_id)
        if scope.related.ids or (request.idempotency_key and rest[-1]):
            await conn.execute("ROLLBACK")
            return None
        if hit is not None:
            hit.then(rest[0])
        policy = policy_from_rows(scope, rules)
        seen = ((), policy.buffer_before_minutes, policy.buffer_after_minutes)
        _remember(provider_id, seen)
        if seen != guess:
            low, high = padded(policy, (request.start, request.end))
            cursor = await conn.execute(*_hot_busy(provider_id, low, high, now))
            busy_rows = await cursor.fetchall()
        busy = as_busy(own_busy_rows(busy_rows))
        check_rules(policy, request.start, request.end, now)
        _check_free(policy, busy, request, now)
        hold = _new_hold(scope, request, now, ttl_seconds)
        try:
            await conn.execute(_HOT_INSERT, _insert_params(hold, lambda moment: moment))
        except IntegrityError:
            raise IdempotencyMismatch(request.idempotency_key or "") from None
        await conn.execute("COMMIT")
    except BaseException:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            with suppress(psycopg.Error):  # else the pool drops the connection
                await conn.execute("ROLLBACK")
        raise
    _created(hold, request.source)
    return HoldResult(hold, created=True)


async def place_hold(
    runtime: Runtime,
    asked: Callable[[], HoldRequest],
    *,
    budget: ratelimit.Budget,
    hot: bool = True,
) -> HoldResult:
    """Create the hold ``asked()`` describes, counting the call against ``budget``.

    The one entry point for callers on the event loop. On PostgreSQL the call goes
    through ``create_hold_hot``; what it leaves (related units, a reused idempotency
    key, a connection that failed) and every call on SQLite go to ``create_hold`` in a
    worker thread. ``asked`` is called inside the counted call, so a malformed request
    counts too. hot: False sends every call to ``create_hold``.
    """
    ttl = runtime.settings.hold_ttl_seconds

    async def fast(
        conn: AsyncConnection[Any], now: datetime, hit: Deferred | None
    ) -> HoldResult | None:
        return await create_hold_hot(conn, asked(), now, ttl_seconds=ttl, hit=hit)

    def full(session: Session, now: datetime) -> HoldResult:
        return create_hold(session, asked(), now, ttl_seconds=ttl)

    return await ratelimit.counted_call(runtime, budget, fast if hot else None, full)


def _check_free(
    policy: AvailabilityPolicy, busy: list[Busy], request: HoldRequest, now: datetime
) -> None:
    """``check_free`` for a hold, counting a refusal because the time is taken."""
    try:
        check_free(policy, busy, request.start, request.end, now)
    except SlotTaken:
        HOLD_OVERLAPS.labels(source=request.source).inc()
        record(
            "cal.hold.refused",
            provider_id=request.provider_id,
            source=request.source,
            overlap_detected=True,
        )
        raise


def hold_event(event: str, hold: Hold, **fields: Any) -> None:
    """A ``cal.hold.*`` event with the seed's tags; ttl_minutes is the hold's whole TTL."""
    ttl = (hold.expires_at - hold.created_at).total_seconds() / 60
    record(
        event,
        hold_id=hold.id,
        provider_id=hold.provider_id,
        ttl_minutes=round(ttl, 2),
        overlap_detected=False,
        **fields,
    )


def _created(hold: Hold, source: str) -> None:
    HOLDS_CREATED.labels(source=source).inc()
    hold_event("cal.hold.created", hold, source=source)


def _new_hold(scope: Scope, request: HoldRequest, now: datetime, ttl_seconds: int) -> Hold:
    return Hold(
        id=new_id("hld"),
        tenant_id=scope.tenant_id,
        provider_id=scope.id,
        start_at=request.start.astimezone(UTC),
        end_at=request.end.astimezone(UTC),
        expires_at=now + timedelta(seconds=ttl_seconds),
        status="active",
        purpose="checkout",
        idempotency_key=request.idempotency_key or None,
        guest_email=request.guest_email,
        guest_name=request.guest_name,
        guest_timezone=request.guest_timezone,
        created_at=now,
    )


@dataclass(frozen=True, slots=True)
class _Loaded:
    scope: Scope
    policy: AvailabilityPolicy
    busy: list[Busy]


# Per provider, the related units and buffers seen last time: what the busy query of the
# next hold needs, guessed so that it can go out in the same batch as the lock. The
# scope read under the lock decides; a wrong guess costs one more query.
_LAST_SEEN: dict[str, tuple[tuple[str, ...], int, int]] = {}
_LAST_SEEN_MAX = 50_000
# A key is the provider's tenant's: the same key in two tenants names two holds.
_BY_KEY = """
    SELECT id FROM holds
     WHERE tenant_id = (SELECT tenant_id FROM providers WHERE id = :provider)
       AND idempotency_key = :key
"""


def _load_for_hold(session: Session, request: HoldRequest, now: datetime) -> _Loaded | Hold:
    """What the hold check needs, read under the provider lock; or the hold already made
    with the request's idempotency key."""
    provider_id = request.provider_id
    guess, low, high = _guessed_span(request)
    units = guess[0]
    dialect = session.get_bind().dialect.name
    statements = [
        (scope_sql(dialect, lock=True), {"provider": provider_id}),
        (RULES, {"provider": provider_id}),
        unit_rows_statement(dialect, (provider_id, *units), low, high, now),
    ]
    if request.idempotency_key:
        by_key = {"provider": request.provider_id, "key": request.idempotency_key}
        statements.append((_BY_KEY, by_key))
    results = driver_batch(session, statements)
    scope = scope_from_rows(results[0], provider_id)
    if request.idempotency_key and results[3]:
        return get_hold(session, results[3][0][0])
    policy = policy_from_rows(scope, results[1])
    seen = (scope.related.ids, policy.buffer_before_minutes, policy.buffer_after_minutes)
    _remember(provider_id, seen)
    if seen == guess:
        busy = as_busy(busy_from_unit_rows(session, provider_id, results[2], scope.related))
    else:
        span = (request.start, request.end)
        busy = busy_for_span(session, scope.id, policy, span, now, related=scope.related)
    return _Loaded(scope, policy, busy)


def _guessed_span(
    request: HoldRequest,
) -> tuple[tuple[tuple[str, ...], int, int], datetime, datetime]:
    """What was seen of the provider last time, and the span its busy query reads with
    those buffers (both paths send that query before the scope under the lock decides)."""
    guess = _LAST_SEEN.get(request.provider_id, ((), 0, 0))
    _, before, after = guess
    low = request.start - timedelta(minutes=after)
    return guess, low, request.end + timedelta(minutes=before)


def _remember(provider_id: str, seen: tuple[tuple[str, ...], int, int]) -> None:
    if len(_LAST_SEEN) >= _LAST_SEEN_MAX:
        _LAST_SEEN.clear()
    _LAST_SEEN[provider_id] = seen


_INSERT = """
    INSERT INTO holds (id, tenant_id, provider_id, start_at, end_at, expires_at, status,
                       purpose, idempotency_key, guest_email, guest_name, guest_timezone,
                       meeting_type_id, created_at)
    VALUES (:id, :tenant_id, :provider_id, :start_at, :end_at, :expires_at, :status,
            :purpose, :idempotency_key, :guest_email, :guest_name, :guest_timezone,
            :meeting_type_id, :created_at)
"""
_TIMES = ("start_at", "end_at", "expires_at", "created_at")
_COLUMNS = (
    "id", "tenant_id", "provider_id", "status", "purpose", "idempotency_key", "guest_email",
    "guest_name", "guest_timezone", "meeting_type_id",
)  # fmt: skip


_HOT_SCOPE = for_driver(scope_sql("postgresql", lock=True), "postgresql")
_HOT_RULES = for_driver(RULES, "postgresql")
_HOT_BY_KEY = for_driver(_BY_KEY, "postgresql")
_HOT_INSERT = for_driver(_INSERT, "postgresql")


def _hot_busy(
    provider_id: str, low: datetime, high: datetime, now: datetime
) -> tuple[str, dict[str, Any]]:
    sql, params = unit_rows_statement("postgresql", (provider_id,), low, high, now)
    return for_driver(sql, "postgresql"), params


def _insert_params(hold: Hold, bind: Callable[[datetime], Any]) -> dict[str, Any]:
    params = {name: getattr(hold, name) for name in _COLUMNS}
    params.update({name: bind(getattr(hold, name)) for name in _TIMES})
    return params


def _insert(session: Session, hold: Hold, request: HoldRequest) -> None:
    """Insert ``hold``; a clash of idempotency keys becomes ``IdempotencyMismatch``."""
    params = _insert_params(hold, lambda moment: db_time(session, moment))
    dbapi = session.get_bind().dialect.loaded_dbapi
    try:
        driver_rows(session, _INSERT, params)
    except dbapi.IntegrityError:
        # The same key, concurrently, for another provider (one provider is serialized).
        raise IdempotencyMismatch(request.idempotency_key or "") from None


def _check_request(request: HoldRequest) -> None:
    require_aware(start=request.start, end=request.end)
    if request.end <= request.start:
        raise InvalidInterval("end must be after start")
    if request.end - request.start > MAX_HOLD:
        raise InvalidInput("a hold may last at most 31 days", code="range_too_long")
    if is_nonexistent(request.start):
        raise InvalidInput("start does not exist in its own time zone", code="invalid_time")
    if request.guest_email is not None:
        check_email(request.guest_email, "guest_email")
    if request.idempotency_key is not None and not 0 < len(request.idempotency_key) <= 200:
        raise InvalidInput("idempotency_key must be 1–200 characters", code="invalid_key")


def _same_or_mismatch(hold: Hold, request: HoldRequest) -> Hold:
    same = (hold.provider_id, hold.start_at, hold.end_at) == (
        request.provider_id,
        request.start,
        request.end,
    )
    if not same:
        raise IdempotencyMismatch(request.idempotency_key or "")
    return hold


def confirm_hold(
    session: Session,
    hold_id: str,
    actor: Actor,
    now: datetime,
    *,
    guest_email: str | None = None,
    guest_name: str | None = None,
    guest_locale: str | None = None,
) -> Booking:
    """Turn an active hold into a booking (confirmed, or requested without instant book).

    Confirming a hold that already became a booking returns that booking again.
    guest_locale: the language the guest booked in (a tag like "de-AT"); their mails
    speak it when Parley has it, English otherwise.
    """
    hold = get_hold(session, hold_id)
    lock_providers(session, [hold.provider_id, *related_units(session, hold.provider_id).ids])
    session.refresh(hold)
    if hold.status == "converted" and hold.booking_id is not None:
        booking = session.get(Booking, hold.booking_id)
        if booking is not None:
            return booking
    provider = get_provider(session, hold.provider_id)
    kind = session.get(MeetingType, hold.meeting_type_id) if hold.meeting_type_id else None
    policy = meeting_types.policy_for(load_policy(session, provider), kind)
    try:
        if hold_status(hold, now) != "active":
            raise HoldExpired(hold.id)
        _fill_guest(hold, guest_email, guest_name)
        check_bookable(
            session,
            provider.id,
            policy,
            hold.start_at,
            hold.end_at,
            now,
            exclude=Exclude(hold_id=hold.id),
        )
    except (HoldExpired, SlotTaken, SlotUnavailable):
        BOOKING_ATTEMPTS.labels(mode=_mode(policy), outcome="refused").inc()
        raise
    booking = book_hold(
        session, hold, provider, policy, actor, now, guest_locale=normalize_locale(guest_locale)
    )
    outcome = "ok" if booking.mode == _mode(policy) else "downgraded"
    BOOKING_ATTEMPTS.labels(mode=_mode(policy), outcome=outcome).inc()
    hold.status = "converted"
    hold.booking_id = booking.id
    HOLDS_CONVERTED.inc()
    hold_event("cal.hold.converted", hold, booking_id=booking.id)
    return booking


def _mode(policy: AvailabilityPolicy) -> str:
    """The booking mode the provider asks for (the freshness gate may downgrade it)."""
    return "instant" if policy.instant_book else "request"


def _fill_guest(hold: Hold, guest_email: str | None, guest_name: str | None) -> None:
    if guest_email is not None:
        hold.guest_email = check_email(guest_email, "guest_email")
    if guest_name is not None:
        if len(guest_name) > 200:
            raise InvalidInput("guest_name may be at most 200 characters", code="invalid_name")
        hold.guest_name = guest_name.strip() or None
    if not hold.guest_email:
        raise InvalidInput("a guest_email is needed to confirm", code="guest_email_required")


def release_hold(session: Session, hold_id: str, now: datetime) -> Hold:
    """Give an active hold's time back before its TTL (the guest went away)."""
    hold = get_hold(session, hold_id)
    if hold_status(hold, now) == "active":
        hold.status = "released"
        HOLDS_RELEASED.inc()
        hold_event("cal.hold.released", hold)
    return hold
