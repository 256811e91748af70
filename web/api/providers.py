"""Provider endpoints: create, read, availability, slots and explanations."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from core.db.models import Provider
from core.domain import (
    AvailabilityPolicy,
    Explanation,
    Slot,
    date_exception,
    vacation,
    weekly_windows,
)
from core.formatting import DEFAULT_LOCALE
from core.services import availability, page_look, providers
from core.services.access import Grant, visible_provider
from core.services.errors import Forbidden
from web.http import (
    MAX_DURATION_MINUTES,
    authorize,
    in_transaction,
    json_response,
    limit_public,
    parse_instant,
    parse_minutes,
    public_call,
    read_json,
    rfc3339,
    runtime_of,
)
from web.openapi import ApiDoc, api_route

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def slots_body(timezone: str, slots: list[Slot]) -> bytes:
    """The slots answer as JSON bytes, written directly: a 60-day answer has 300+ slots.

    Engine slots are aware UTC datetimes on whole seconds, so ``isoformat()[:19]`` is
    exactly the RFC 3339 text without its offset.
    """
    items = ",".join(
        f'{{"start":"{s.start.isoformat()[:19]}Z","end":"{s.end.isoformat()[:19]}Z"}}'
        for s in slots
    )
    return f'{{"timezone":{json.dumps(timezone)},"slots":[{items}]}}'.encode()


def slots_json(timezone: str, slots: list[Slot]) -> dict[str, Any]:
    return {
        "timezone": timezone,
        "slots": [{"start": rfc3339(s.start), "end": rfc3339(s.end)} for s in slots],
    }


# --- models --------------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ProviderIn(Strict):
    name: StrictStr = Field(min_length=1, max_length=200)
    email: StrictStr = Field(min_length=3, max_length=320)
    timezone: StrictStr = Field(min_length=1, max_length=64)
    slug: StrictStr = Field(min_length=1, max_length=80)
    kind: Literal["person", "unit"] = "person"
    # The language of the provider's pages and mails: en, de, fr or es.
    locale: StrictStr | None = Field(default=None, min_length=2, max_length=16)


class ProviderPatch(Strict):
    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    timezone: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    kind: Literal["person", "unit"] | None = None
    # The language of the provider's mails: en, de, fr or es.
    locale: StrictStr | None = Field(default=None, min_length=2, max_length=16)
    # The booking page's look; null clears it.
    accent_colour: StrictStr | None = Field(default=None, max_length=7)
    photo_url: StrictStr | None = Field(default=None, max_length=500)


class ProviderOut(BaseModel):
    id: str
    slug: str
    name: str
    email: str
    timezone: str
    dav_username: str
    kind: str
    locale: str
    booking_url: str
    accent_colour: str | None
    photo_url: str | None


class WeeklyIn(Strict):
    days: list[StrictStr] = Field(min_length=1, max_length=7)
    start: StrictStr
    end: StrictStr


class ExceptionIn(Strict):
    date: StrictStr
    kind: StrictStr
    start: StrictStr | None = None
    end: StrictStr | None = None


class VacationIn(Strict):
    first: StrictStr = Field(alias="from")
    last: StrictStr = Field(alias="to")


class AvailabilityIn(Strict):
    timezone: StrictStr | None = None
    weekly: list[WeeklyIn] = Field(default_factory=list, max_length=200)
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=2000)
    vacations: list[VacationIn] = Field(default_factory=list, max_length=500)
    lead_time_hours: StrictInt = Field(default=24, ge=0, le=24 * 366)
    booking_window_days: StrictInt = Field(default=60, ge=0, le=3660)
    min_duration_minutes: StrictInt = Field(default=30, ge=1, le=MAX_DURATION_MINUTES)
    slot_step_minutes: StrictInt = Field(default=30, ge=1, le=1440)
    buffer_before_minutes: StrictInt = Field(default=0, ge=0, le=1440)
    buffer_after_minutes: StrictInt = Field(default=0, ge=0, le=1440)
    instant_book: StrictBool = True


class SlotOut(BaseModel):
    start: str
    end: str


class SlotsOut(BaseModel):
    timezone: str
    slots: list[SlotOut]


class ReasonOut(BaseModel):
    code: str
    message: str
    kind: str | None = None
    ref: str | None = None
    label: str | None = None
    start: str | None = None
    end: str | None = None


class ExplainOut(BaseModel):
    bookable: bool
    reasons: list[ReasonOut]


# --- rendering -----------------------------------------------------------------------------


def provider_json(request: Request, session: Session, provider: Provider) -> dict[str, Any]:
    base = runtime_of(request).settings.effective_base_url
    return {
        "id": provider.id,
        "slug": provider.slug,
        "name": provider.name,
        "email": provider.email,
        "timezone": provider.timezone,
        "dav_username": provider.dav_username,
        "kind": provider.kind,
        "locale": provider.locale or DEFAULT_LOCALE,
        "booking_url": providers.booking_url(session, provider, base),
        "accent_colour": provider.accent_colour,
        "photo_url": provider.photo_url,
    }


def availability_json(policy: AvailabilityPolicy) -> dict[str, Any]:
    def clock(minute: int | None) -> str | None:
        return None if minute is None else f"{minute // 60:02d}:{minute % 60:02d}"

    return {
        "timezone": policy.timezone,
        "weekly": [
            {
                "days": [_WEEKDAYS[w.weekday]],
                "start": clock(w.start_minute),
                "end": clock(w.end_minute),
            }
            for w in policy.weekly
        ],
        "exceptions": [
            _exception_json(e.day, e.kind.value, clock(e.start_minute), clock(e.end_minute))
            for e in policy.exceptions
        ],
        "vacations": [
            {"from": v.first.isoformat(), "to": v.last.isoformat()} for v in policy.vacations
        ],
        "lead_time_hours": policy.lead_time_hours,
        "booking_window_days": policy.booking_window_days,
        "min_duration_minutes": policy.min_duration_minutes,
        "slot_step_minutes": policy.slot_step_minutes,
        "buffer_before_minutes": policy.buffer_before_minutes,
        "buffer_after_minutes": policy.buffer_after_minutes,
        "instant_book": policy.instant_book,
    }


def _exception_json(day: date, kind: str, start: str | None, end: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"date": day.isoformat(), "kind": kind}
    if start is not None:
        body.update(start=start, end=end)
    return body


def explanation_json(explanation: Explanation) -> dict[str, Any]:
    reasons = []
    for reason in explanation.reasons:
        item: dict[str, Any] = {"code": reason.code.value, "message": reason.message}
        if reason.kind is not None:
            item["kind"] = reason.kind.value
            item["ref"], item["label"] = reason.ref, reason.label
        if reason.busy_start is not None and reason.busy_end is not None:
            item["start"], item["end"] = rfc3339(reason.busy_start), rfc3339(reason.busy_end)
        reasons.append(item)
    return {"bookable": explanation.bookable, "reasons": reasons}


def to_policy(body: AvailabilityIn, timezone: str) -> AvailabilityPolicy:
    """The domain policy from the request body; bad values raise DomainError."""
    weekly = tuple(
        w for rule in body.weekly for w in weekly_windows(rule.days, rule.start, rule.end)
    )
    return AvailabilityPolicy(
        timezone,
        weekly=weekly,
        exceptions=tuple(date_exception(e.date, e.kind, e.start, e.end) for e in body.exceptions),
        vacations=tuple(vacation(v.first, v.last) for v in body.vacations),
        lead_time_hours=body.lead_time_hours,
        booking_window_days=body.booking_window_days,
        min_duration_minutes=body.min_duration_minutes,
        slot_step_minutes=body.slot_step_minutes,
        buffer_before_minutes=body.buffer_before_minutes,
        buffer_after_minutes=body.buffer_after_minutes,
        instant_book=body.instant_book,
    )


# --- endpoints -----------------------------------------------------------------------------


async def create_provider(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    if caller.providers is not None:
        raise Forbidden("a key limited to some providers may not create providers")
    body = await read_json(request, ProviderIn)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        provider = providers.create_provider(
            session,
            name=body.name,
            email=body.email,
            timezone=body.timezone,
            slug=body.slug,
            now=now,
            kind=body.kind,
            tenant_id=caller.tenant_id,
            locale=body.locale,
        )
        return provider_json(request, session, provider)

    return json_response(await in_transaction(request, work), status=201)


async def patch_provider(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    provider_id = request.path_params["provider_id"]
    body = await read_json(request, ProviderPatch)
    given = body.model_fields_set

    def work(session: Session, now: datetime) -> dict[str, Any]:
        provider = visible_provider(session, caller, provider_id)
        changed = providers.update_provider(
            session, provider, now=now, name=body.name, timezone=body.timezone, kind=body.kind,
            locale=body.locale,
        )  # fmt: skip
        look: dict[str, str | None] = {
            k: getattr(body, k) for k in ("accent_colour", "photo_url") if k in given
        }
        page_look.set_look(changed, look)
        return provider_json(request, session, changed)

    return json_response(await in_transaction(request, work))


async def get_provider(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.READ)
    provider_id = request.path_params["provider_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return provider_json(request, session, visible_provider(session, caller, provider_id))

    return json_response(await in_transaction(request, work))


async def get_availability(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.READ)
    provider_id = request.path_params["provider_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        provider = visible_provider(session, caller, provider_id)
        return availability_json(availability.get_availability(session, provider.id))

    return json_response(await in_transaction(request, work))


async def put_availability(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    body = await read_json(request, AvailabilityIn)
    provider_id = request.path_params["provider_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        provider = visible_provider(session, caller, provider_id)
        policy = to_policy(body, body.timezone or provider.timezone)
        stored = availability.put_availability(session, provider.id, policy, now, actor=caller.name)
        return availability_json(stored)

    return json_response(await in_transaction(request, work))


async def get_slots(request: Request) -> Response:
    query = request.query_params
    provider_id = request.path_params["provider_id"]

    def work(session: Session, now: datetime) -> bytes:
        start = parse_instant(query.get("start"), "start")
        end = parse_instant(query.get("end"), "end")
        kind = query.get("type") or None
        duration = (
            parse_minutes(query.get("duration"), "duration")
            if query.get("duration") or kind is None
            else None
        )
        found = availability.find_slots(
            session, provider_id, start, end, duration, now, meeting_type=kind
        )
        if any(s.start.microsecond or s.start.utcoffset() for s in found.slots[:1]):
            return json.dumps(slots_json(found.timezone, found.slots)).encode()
        return slots_body(found.timezone, found.slots)

    return Response(await public_call(request, work), media_type="application/json")


async def explain_slot(request: Request) -> JSONResponse:
    await limit_public(request)
    at = parse_instant(request.query_params.get("at"), "at")
    duration = parse_minutes(request.query_params.get("duration"), "duration")
    provider_id = request.path_params["provider_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return explanation_json(availability.explain_slot(session, provider_id, at, duration, now))

    return json_response(await in_transaction(request, work))


def routes() -> list[BaseRoute]:
    return [
        api_route(
            "/providers",
            create_provider,
            "POST",
            ApiDoc(
                "Create a provider",
                request=ProviderIn,
                response=ProviderOut,
                status=201,
                errors=(400, 409),
            ),
        ),
        api_route(
            "/providers/{provider_id}",
            get_provider,
            "GET",
            ApiDoc("A provider", response=ProviderOut),
        ),
        api_route(
            "/providers/{provider_id}",
            patch_provider,
            "PATCH",
            ApiDoc(
                "Change a provider's name, zone or kind",
                request=ProviderPatch,
                response=ProviderOut,
                errors=(400, 404),
            ),
        ),
        api_route(
            "/providers/{provider_id}/availability",
            get_availability,
            "GET",
            ApiDoc("The provider's availability", response=AvailabilityIn),
        ),
        api_route(
            "/providers/{provider_id}/availability",
            put_availability,
            "PUT",
            ApiDoc(
                "Replace the provider's availability",
                request=AvailabilityIn,
                response=AvailabilityIn,
            ),
        ),
        api_route(
            "/providers/{provider_id}/slots",
            get_slots,
            "GET",
            ApiDoc(
                "Free slots whose start lies in [start, end)",
                response=SlotsOut,
                admin=False,
                query=("start", "end", "duration"),
                errors=(400, 404, 429),
            ),
        ),
        api_route(
            "/providers/{provider_id}/slots/explain",
            explain_slot,
            "GET",
            ApiDoc(
                "Why a slot is or is not bookable",
                response=ExplainOut,
                admin=False,
                query=("at", "duration"),
                errors=(400, 404, 429),
            ),
        ),
    ]
