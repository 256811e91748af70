"""CalDAV access endpoints: app passwords, the private feed URL, a calendar's blocking flag."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from core.services import app_passwords, dav, feeds
from core.services.access import Grant, visible_provider
from web.http import authorize, in_transaction, json_response, read_json, runtime_of
from web.openapi import ApiDoc, api_route

T = TypeVar("T")


class AppPasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str | None = Field(default=None, max_length=200)


class AppPasswordOut(BaseModel):
    id: str
    username: str
    password: str


class AppPasswordInfo(BaseModel):
    id: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class AppPasswordList(BaseModel):
    app_passwords: list[AppPasswordInfo]


class FeedTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_holds: StrictBool = False
    format: Literal["standard", "airbnb", "booking.com", "vrbo", "generic"] = "standard"


class FeedTokenOut(BaseModel):
    url: str


class CalendarIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    blocking: StrictBool


class CalendarOut(BaseModel):
    name: str
    kind: str
    blocking: bool


async def _for_provider(
    request: Request, needed: Grant, work: Callable[[Session, datetime, str], T]
) -> T:
    """``work(session, now, provider_id)`` in one transaction, for a provider the caller
    may see and an action its role includes."""
    caller = await authorize(request, needed)
    provider_id = request.path_params["provider_id"]

    def checked(session: Session, now: datetime) -> T:
        visible_provider(session, caller, provider_id)
        return work(session, now, provider_id)

    return await in_transaction(request, checked)


async def create_app_password(request: Request) -> JSONResponse:
    body = await read_json(request, AppPasswordIn)
    issued = await _for_provider(
        request, Grant.WRITE, lambda s, now, pid: app_passwords.issue(s, pid, now, body.label)
    )
    out = AppPasswordOut(id=issued.id, username=issued.username, password=issued.password)
    return json_response(out.model_dump(), status=201, headers={"Cache-Control": "no-store"})


async def list_app_passwords(request: Request) -> JSONResponse:
    rows = await _for_provider(
        request, Grant.READ, lambda s, now, pid: app_passwords.list_passwords(s, pid)
    )
    out = AppPasswordList(
        app_passwords=[
            AppPasswordInfo(
                id=r.id,
                label=r.label,
                created_at=r.created_at,
                last_used_at=r.last_used_at,
                revoked_at=r.revoked_at,
            )
            for r in rows
        ]
    )
    return json_response(out.model_dump(mode="json"))


async def revoke_app_password(request: Request) -> JSONResponse:
    password_id = request.path_params["password_id"]
    await _for_provider(
        request, Grant.WRITE, lambda s, now, pid: app_passwords.revoke(s, pid, password_id, now)
    )
    return json_response({"revoked": password_id})


async def create_feed_token(request: Request) -> JSONResponse:
    body = await read_json(request, FeedTokenIn)
    token = await _for_provider(
        request,
        Grant.WRITE,
        lambda s, now, pid: feeds.issue_token(
            s, pid, now, include_holds=body.include_holds, fmt=body.format
        ),
    )
    base = runtime_of(request).settings.effective_base_url
    out = FeedTokenOut(url=f"{base}/feeds/{token}.ics")
    return json_response(out.model_dump(), status=201, headers={"Cache-Control": "no-store"})


async def set_calendar(request: Request) -> JSONResponse:
    body = await read_json(request, CalendarIn)
    name = request.path_params["name"]
    row = await _for_provider(
        request, Grant.WRITE, lambda s, now, pid: dav.set_blocking(s, pid, name, body.blocking)
    )
    return json_response(
        CalendarOut(name=row.name, kind=row.kind, blocking=row.blocking).model_dump()
    )


class HoldsCalendarIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool


class HoldsCalendarOut(BaseModel):
    enabled: bool


async def set_holds_calendar(request: Request) -> JSONResponse:
    body = await read_json(request, HoldsCalendarIn)
    enabled = await _for_provider(
        request, Grant.WRITE, lambda s, now, pid: dav.show_holds_calendar(s, pid, body.enabled, now)
    )
    return json_response(HoldsCalendarOut(enabled=enabled).model_dump())


def routes() -> list[BaseRoute]:
    base = "/providers/{provider_id}"
    return [
        api_route(
            f"{base}/app-passwords",
            create_app_password,
            "POST",
            ApiDoc(
                summary="Issue a CalDAV app password (shown once)",
                request=AppPasswordIn,
                response=AppPasswordOut,
                status=201,
            ),
        ),
        api_route(
            f"{base}/app-passwords",
            list_app_passwords,
            "GET",
            ApiDoc(
                summary="List a provider's app passwords (no secrets)", response=AppPasswordList
            ),
        ),
        api_route(
            f"{base}/app-passwords/{{password_id}}",
            revoke_app_password,
            "DELETE",
            ApiDoc(summary="Revoke an app password"),
        ),
        api_route(
            f"{base}/feed-token",
            create_feed_token,
            "POST",
            ApiDoc(
                summary="Create (or regenerate) the private ICS feed URL",
                request=FeedTokenIn,
                response=FeedTokenOut,
                status=201,
            ),
        ),
        api_route(
            f"{base}/holds-calendar",
            set_holds_calendar,
            "PUT",
            ApiDoc(
                summary="Show or hide the read-only 'holds' calendar over CalDAV",
                request=HoldsCalendarIn,
                response=HoldsCalendarOut,
            ),
        ),
        api_route(
            f"{base}/calendars/{{name}}",
            set_calendar,
            "PATCH",
            ApiDoc(
                summary="Mark a CalDAV calendar as blocking busy time or not",
                request=CalendarIn,
                response=CalendarOut,
                errors=(400, 404, 409),
            ),
        ),
    ]
