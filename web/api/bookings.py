"""Booking endpoints (admin): read, cancel, reschedule, candidates, approve, decline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictStr
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from core.services import bookings
from core.services.access import Caller, Grant, visible_booking
from core.services.bookings import BookingView, actor_of, view_booking
from web.api.providers import SlotsOut, Strict, slots_json
from web.http import (
    authorize,
    in_transaction,
    json_response,
    parse_instant,
    read_json,
    rfc3339,
    runtime_of,
)
from web.openapi import ApiDoc, api_route


class PartyOut(BaseModel):
    email: str
    name: str | None
    partstat: str


class BookingOut(BaseModel):
    id: str
    uid: str
    sequence: int
    status: str
    start: str
    end: str
    provider_id: str
    title: str
    location: str | None
    description: str | None
    meeting_type_id: str | None
    host: PartyOut
    guest: PartyOut


class BookingEnvelope(BaseModel):
    booking: BookingOut


class CancelIn(Strict):
    reason: StrictStr | None = Field(default=None, max_length=2000)


class RescheduleIn(Strict):
    start: StrictStr
    end: StrictStr


def booking_json(view: BookingView) -> dict[str, Any]:
    booking = view.booking
    # "declined" is kept in the table for history; the API speaks of three states.
    status = "cancelled" if booking.status == "declined" else booking.status
    return {
        "id": booking.id,
        "uid": booking.uid,
        "sequence": booking.sequence,
        "status": status,
        "mode": booking.mode,
        "start": rfc3339(booking.start_at),
        "end": rfc3339(booking.end_at),
        "provider_id": booking.provider_id,
        "title": booking.title,
        "location": booking.location,
        "description": booking.description,
        "meeting_type_id": booking.meeting_type_id,
        "cancel_reason": booking.cancel_reason,
        "host": {"email": view.host.email, "name": view.host.name, "partstat": view.host.partstat},
        "guest": {
            "email": view.guest.email,
            "name": view.guest.name,
            "partstat": view.guest.partstat,
        },
    }


async def get_booking(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.READ)
    booking_id = request.path_params["booking_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return booking_json(view_booking(session, visible_booking(session, caller, booking_id)))

    return json_response(await in_transaction(request, work))


async def cancel_booking(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    body = await read_json(request, CancelIn)
    booking_id, actor = request.path_params["booking_id"], _actor(request, caller)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        visible_booking(session, caller, booking_id)
        booking = bookings.cancel_booking(session, booking_id, actor, now, reason=body.reason)
        return booking_json(view_booking(session, booking))

    return json_response(await in_transaction(request, work))


async def reschedule_booking(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    body = await read_json(request, RescheduleIn)
    start, end = parse_instant(body.start, "start"), parse_instant(body.end, "end")
    booking_id, actor = request.path_params["booking_id"], _actor(request, caller)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        visible_booking(session, caller, booking_id)
        booking = bookings.reschedule_booking(session, booking_id, start, end, actor, now)
        return booking_json(view_booking(session, booking))

    return json_response(await in_transaction(request, work))


async def reschedule_candidates(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.READ)
    query = request.query_params
    start, end = parse_instant(query.get("start"), "start"), parse_instant(query.get("end"), "end")
    booking_id = request.path_params["booking_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        visible_booking(session, caller, booking_id)
        found = bookings.reschedule_candidates(session, booking_id, start, end, now)
        return slots_json(found.timezone, found.slots)

    return json_response(await in_transaction(request, work))


async def approve_booking(request: Request) -> JSONResponse:
    return await _decide(request, bookings.approve_booking)


async def decline_booking(request: Request) -> JSONResponse:
    return await _decide(request, bookings.decline_booking)


async def _decide(request: Request, decide: Any) -> JSONResponse:
    caller = await authorize(request, Grant.OPERATE)
    booking_id, actor = request.path_params["booking_id"], _actor(request, caller)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        visible_booking(session, caller, booking_id)
        return booking_json(view_booking(session, decide(session, booking_id, actor, now)))

    return json_response(await in_transaction(request, work))


def _actor(request: Request, caller: Caller) -> bookings.Actor:
    return actor_of(runtime_of(request), caller.name)


def routes() -> list[BaseRoute]:
    one = "/bookings/{booking_id}"
    changes = (400, 404, 409)
    return [
        api_route(one, get_booking, "GET", ApiDoc("A booking", response=BookingOut)),
        api_route(
            f"{one}/cancel",
            cancel_booking,
            "POST",
            ApiDoc("Cancel a booking", request=CancelIn, response=BookingOut, errors=changes),
        ),
        api_route(
            f"{one}/reschedule",
            reschedule_booking,
            "POST",
            ApiDoc(
                "Move a booking",
                request=RescheduleIn,
                response=BookingOut,
                errors=(400, 404, 409, 422),
            ),
        ),
        api_route(
            f"{one}/reschedule-candidates",
            reschedule_candidates,
            "GET",
            ApiDoc("Free slots to move a booking to", response=SlotsOut, query=("start", "end")),
        ),
        api_route(
            f"{one}/approve",
            approve_booking,
            "POST",
            ApiDoc("Approve a requested booking", response=BookingOut, errors=changes),
        ),
        api_route(
            f"{one}/decline",
            decline_booking,
            "POST",
            ApiDoc("Decline a requested booking", response=BookingOut, errors=changes),
        ),
    ]
