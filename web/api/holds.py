"""Hold endpoints (public, rate-limited): create a hold, read it, confirm it into a booking.

Knowing a hold's id is what lets its creator confirm it: ids are random and only
ever returned to the client that created the hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictStr
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from core.db.models import Hold
from core.i18n import negotiate
from core.services import holds
from core.services.bookings import actor_of, view_booking
from web.api.bookings import BookingEnvelope, booking_json
from web.api.providers import Strict
from web.http import (
    in_transaction,
    json_response,
    limit_public,
    parse_body,
    parse_instant,
    public_call_hot,
    read_json,
    rfc3339,
    runtime_of,
)
from web.openapi import ApiDoc, api_route


class HoldIn(Strict):
    provider_id: StrictStr = Field(min_length=1, max_length=40)
    start: StrictStr
    end: StrictStr
    guest_email: StrictStr = Field(min_length=3, max_length=320)
    guest_name: StrictStr | None = Field(default=None, max_length=200)
    guest_timezone: StrictStr | None = Field(default=None, max_length=64)
    idempotency_key: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    meeting_type: StrictStr | None = Field(default=None, min_length=1, max_length=80)


class ConfirmIn(Strict):
    guest_email: StrictStr | None = Field(default=None, min_length=3, max_length=320)
    guest_name: StrictStr | None = Field(default=None, max_length=200)
    # The language of the guest's mails (en, de, fr, es; others: English); without it, the
    # caller's Accept-Language (a browser booking for itself).
    guest_locale: StrictStr | None = Field(default=None, max_length=35)


class HoldOut(BaseModel):
    id: str
    provider_id: str
    start: str
    end: str
    expires_at: str
    status: str


def hold_json(hold: Hold, now: datetime) -> dict[str, Any]:
    return {
        "id": hold.id,
        "provider_id": hold.provider_id,
        "start": rfc3339(hold.start_at),
        "end": rfc3339(hold.end_at),
        "expires_at": rfc3339(hold.expires_at),
        "status": holds.hold_status(hold, now),
        "booking_id": hold.booking_id,
    }


async def create_hold(request: Request) -> JSONResponse:
    raw = await request.body()
    runtime = runtime_of(request)

    def asked() -> holds.HoldRequest:
        body = parse_body(raw, HoldIn)
        return holds.HoldRequest(
            provider_id=body.provider_id,
            start=parse_instant(body.start, "start"),
            end=parse_instant(body.end, "end"),
            guest_email=body.guest_email,
            guest_name=body.guest_name,
            guest_timezone=body.guest_timezone,
            idempotency_key=body.idempotency_key,
            meeting_type=body.meeting_type,
        )

    result = await public_call_hot(
        request, lambda budget: holds.place_hold(runtime, asked, budget=budget)
    )
    return json_response(hold_json(result.hold, runtime.clock()), status=201)


async def get_hold(request: Request) -> JSONResponse:
    await limit_public(request)
    hold_id = request.path_params["hold_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return hold_json(holds.get_hold(session, hold_id), now)

    return json_response(await in_transaction(request, work))


async def confirm_hold(request: Request) -> JSONResponse:
    await limit_public(request)
    body = await read_json(request, ConfirmIn)
    hold_id = request.path_params["hold_id"]
    actor = actor_of(runtime_of(request), "guest")

    def work(session: Session, now: datetime) -> dict[str, Any]:
        booking = holds.confirm_hold(
            session, hold_id, actor, now, guest_email=body.guest_email,
            guest_name=body.guest_name,
            guest_locale=body.guest_locale or negotiate(request.headers.get("accept-language")),
        )  # fmt: skip
        return {"booking": booking_json(view_booking(session, booking))}

    return json_response(await in_transaction(request, work), status=201)


def routes() -> list[BaseRoute]:
    errors = (400, 404, 409, 429)
    return [
        api_route(
            "/holds",
            create_hold,
            "POST",
            ApiDoc(
                "Hold a slot while the guest checks out",
                request=HoldIn,
                response=HoldOut,
                status=201,
                admin=False,
                errors=errors,
            ),
        ),
        api_route(
            "/holds/{hold_id}",
            get_hold,
            "GET",
            ApiDoc("A hold", response=HoldOut, admin=False, errors=errors),
        ),
        api_route(
            "/holds/{hold_id}/confirm",
            confirm_hold,
            "POST",
            ApiDoc(
                "Turn a hold into a booking",
                request=ConfirmIn,
                response=BookingEnvelope,
                status=201,
                admin=False,
                errors=errors,
            ),
        ),
    ]
