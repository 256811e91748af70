"""A provider's meeting types: /providers/{id}/meeting-types (core.services.meeting_types).

Anyone may list the active types of a provider (the booking page shows them); a key that
may read the provider also sees inactive ones; writing needs a manager or owner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from core.db.models import MeetingType
from core.services import meeting_types
from core.services.access import Grant, visible_provider
from core.services.providers import booking_url, get_provider
from web.http import authorize, in_transaction, json_response, read_json, rfc3339, runtime_of
from web.openapi import ApiDoc, api_route

Minutes = StrictInt


class MeetingTypeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: StrictStr = Field(min_length=1, max_length=80)
    title: StrictStr = Field(min_length=1, max_length=200)
    durations: list[Minutes] = Field(min_length=1, max_length=meeting_types.MAX_DURATIONS)
    description: StrictStr | None = Field(default=None, max_length=5000)
    location: StrictStr | None = Field(default=None, max_length=500)
    buffer_before_minutes: StrictInt | None = None
    buffer_after_minutes: StrictInt | None = None
    lead_time_hours: StrictInt | None = None
    active: StrictBool = True


class MeetingTypePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: StrictStr | None = Field(default=None, min_length=1, max_length=80)
    title: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    durations: list[Minutes] | None = Field(
        default=None, min_length=1, max_length=meeting_types.MAX_DURATIONS
    )
    description: StrictStr | None = Field(default=None, max_length=5000)
    location: StrictStr | None = Field(default=None, max_length=500)
    buffer_before_minutes: StrictInt | None = None
    buffer_after_minutes: StrictInt | None = None
    lead_time_hours: StrictInt | None = None
    active: StrictBool | None = None


class MeetingTypeOut(BaseModel):
    id: str
    provider_id: str
    slug: str
    title: str
    description: str | None
    location: str | None
    durations: list[int]
    buffer_before_minutes: int | None
    buffer_after_minutes: int | None
    lead_time_hours: int | None
    active: bool
    booking_url: str
    updated_at: str


class MeetingTypesOut(BaseModel):
    items: list[MeetingTypeOut]


def type_json(row: MeetingType, booking_url: str) -> dict[str, Any]:
    return {
        "id": row.id, "provider_id": row.provider_id, "slug": row.slug, "title": row.title,
        "description": row.description, "location": row.location,
        "durations": meeting_types.durations_of(row),
        "buffer_before_minutes": row.buffer_before_minutes,
        "buffer_after_minutes": row.buffer_after_minutes,
        "lead_time_hours": row.lead_time_hours, "active": row.active,
        "booking_url": f"{booking_url}/{row.slug}", "updated_at": rfc3339(row.updated_at),
    }  # fmt: skip


def _page_url(request: Request, session: Session, provider_id: str) -> str:
    base = runtime_of(request).settings.effective_base_url
    return booking_url(session, get_provider(session, provider_id), base)


async def list_types(request: Request) -> JSONResponse:
    provider_id = request.path_params["provider_id"]
    caller = None
    if "authorization" in request.headers:
        caller = await authorize(request, Grant.READ)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        if caller is not None:
            visible_provider(session, caller, provider_id)
        page = _page_url(request, session, provider_id)
        rows = meeting_types.list_types(session, provider_id, active_only=caller is None)
        return {"items": [type_json(row, page) for row in rows]}

    return json_response(await in_transaction(request, work))


async def create_type(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    provider_id = request.path_params["provider_id"]
    body = await read_json(request, MeetingTypeIn)
    fields = meeting_types.TypeFields(**{**body.model_dump(), "durations": tuple(body.durations)})

    def work(session: Session, now: datetime) -> dict[str, Any]:
        row = meeting_types.create_type(session, caller, provider_id, fields, now)
        return type_json(row, _page_url(request, session, provider_id))

    return json_response(await in_transaction(request, work), status=201)


async def patch_type(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    provider_id, key = request.path_params["provider_id"], request.path_params["type_id"]
    body = await read_json(request, MeetingTypePatch)
    changes = body.model_dump(exclude_unset=True)
    for required in ("slug", "title", "durations", "active"):
        if required in changes and changes[required] is None:
            changes.pop(required)
    if "durations" in changes:
        changes["durations"] = tuple(changes["durations"])

    def work(session: Session, now: datetime) -> dict[str, Any]:
        row = meeting_types.update_type(session, caller, provider_id, key, changes, now)
        return type_json(row, _page_url(request, session, provider_id))

    return json_response(await in_transaction(request, work))


async def delete_type(request: Request) -> Response:
    caller = await authorize(request, Grant.WRITE)
    provider_id, key = request.path_params["provider_id"], request.path_params["type_id"]

    def work(session: Session, now: datetime) -> None:
        meeting_types.delete_type(session, caller, provider_id, key, now)

    await in_transaction(request, work)
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    return [
        api_route(
            "/providers/{provider_id}/meeting-types",
            list_types,
            "GET",
            ApiDoc(
                "The provider's meeting types (active ones only without a key)",
                response=MeetingTypesOut,
                errors=(404,),
            ),
        ),
        api_route(
            "/providers/{provider_id}/meeting-types",
            create_type,
            "POST",
            ApiDoc(
                "Offer a meeting type",
                request=MeetingTypeIn,
                response=MeetingTypeOut,
                status=201,
                errors=(400, 403, 404, 409),
            ),
        ),
        api_route(
            "/providers/{provider_id}/meeting-types/{type_id}",
            patch_type,
            "PATCH",
            ApiDoc(
                "Change a meeting type",
                request=MeetingTypePatch,
                response=MeetingTypeOut,
                errors=(400, 403, 404, 409),
            ),
        ),
        api_route(
            "/providers/{provider_id}/meeting-types/{type_id}",
            delete_type,
            "DELETE",
            ApiDoc("Stop offering a meeting type", status=204, errors=(403, 404)),
        ),
    ]
