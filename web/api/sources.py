"""External calendar source endpoints: add, read, delete, sync now, confirm a held removal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from caldav_bridge import importers
from core.runtime import Runtime
from core.services import sources, sync
from core.services.access import Grant, visible_provider, visible_source
from web.http import authorize, json_response, read_json, runtime_of
from web.openapi import ApiDoc, api_route

T = TypeVar("T")


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: StrictStr = Field(min_length=1, max_length=sources.MAX_URL_LENGTH)
    kind: Literal["ics", "caldav"] = "ics"
    platform: StrictStr | None = Field(default=None, max_length=32)
    username: StrictStr | None = Field(default=None, max_length=320)
    password: StrictStr | None = Field(default=None, max_length=1000)
    priority: StrictInt | None = Field(default=None, ge=1, le=10)
    name: StrictStr | None = Field(default=None, max_length=200)


class CreatedOut(BaseModel):
    id: str


class SourceOut(BaseModel):
    id: str
    provider_id: str
    name: str | None
    url: str
    kind: str
    platform: str
    priority: int
    status: str
    last_attempt_at: str | None
    last_success_at: str | None
    last_error: str | None
    held_reason: str | None
    next_poll_at: str
    poll_interval_seconds: int
    events: int


class SyncOut(BaseModel):
    status: str
    added: int
    updated: int
    removed: int
    not_modified: bool
    skipped: int
    conflicts: int
    error: str | None


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def source_json(view: sources.SourceView) -> dict[str, Any]:
    return {
        "id": view.id, "provider_id": view.provider_id, "name": view.name, "url": view.url,
        "kind": view.kind, "platform": view.platform, "priority": view.priority,
        "status": view.status, "last_attempt_at": _time(view.last_attempt_at),
        "last_success_at": _time(view.last_success_at), "last_error": view.last_error,
        "held_reason": view.held_reason, "next_poll_at": _time(view.next_poll_at),
        "poll_interval_seconds": view.poll_interval_seconds, "events": view.events,
    }  # fmt: skip


def sync_json(outcome: sync.SyncOutcome) -> dict[str, Any]:
    return {
        "status": outcome.status, "added": outcome.added, "updated": outcome.updated,
        "removed": outcome.removed, "not_modified": outcome.not_modified,
        "skipped": outcome.skipped, "conflicts": outcome.conflicts, "error": outcome.error,
    }  # fmt: skip


async def _run(request: Request, work: Callable[[Runtime], T]) -> T:
    return await run_in_threadpool(work, runtime_of(request))


def _in_transaction(work: Callable[[Session, datetime], T]) -> Callable[[Runtime], T]:
    def run(runtime: Runtime) -> T:
        with runtime.sessions.begin() as session:
            return work(session, runtime.clock())

    return run


async def create_source(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    body = await read_json(request, SourceIn)
    provider_id = request.path_params["provider_id"]
    new = sources.NewSource(
        url=body.url, kind=body.kind, platform=body.platform, username=body.username,
        password=body.password, priority=body.priority, name=body.name,
    )  # fmt: skip
    runtime = runtime_of(request)

    def work(session: Session, now: datetime) -> str:
        visible_provider(session, caller, provider_id)
        return sources.create_source(
            session, provider_id, new, now=now, secret_key=runtime.secrets.secret_key,
            max_sources=runtime.settings.max_sources_per_provider,
            check_url=importers.check_url(runtime.settings),
        )  # fmt: skip

    source_id = await _run(request, _in_transaction(work))
    return json_response({"id": source_id}, status=201)


async def get_source(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.READ)
    source_id = request.path_params["source_id"]

    def work(session: Session, now: datetime) -> sources.SourceView:
        visible_source(session, caller, source_id)
        return sources.get_source(session, source_id)

    return json_response(source_json(await _run(request, _in_transaction(work))))


async def delete_source(request: Request) -> Response:
    caller = await authorize(request, Grant.WRITE)
    source_id = request.path_params["source_id"]

    def work(session: Session, now: datetime) -> None:
        visible_source(session, caller, source_id)
        sources.delete_source(session, source_id)

    await _run(request, _in_transaction(work))
    return Response(status_code=204)


def _syncing(source_id: str, *, confirm: bool) -> Callable[[Runtime], sync.SyncOutcome]:
    return partial(importers.sync_now, source_id=source_id, confirm=confirm)


async def sync_now(request: Request) -> JSONResponse:
    return await _sync(request, Grant.OPERATE, confirm=False)


async def confirm_removal(request: Request) -> JSONResponse:
    return await _sync(request, Grant.WRITE, confirm=True)


async def _sync(request: Request, needed: Grant, *, confirm: bool) -> JSONResponse:
    caller = await authorize(request, needed)
    source_id = request.path_params["source_id"]
    await _run(request, _in_transaction(lambda s, _: visible_source(s, caller, source_id)))
    outcome = await _run(request, _syncing(source_id, confirm=confirm))
    return json_response(sync_json(outcome))


def routes() -> list[BaseRoute]:
    return [
        api_route(
            "/providers/{provider_id}/sources", create_source, "POST",
            ApiDoc("Add an external calendar source (ICS URL or CalDAV calendar)",
                   request=SourceIn, response=CreatedOut, status=201, errors=(400, 404, 409)),
        ),
        api_route(
            "/sources/{source_id}", get_source, "GET",
            ApiDoc("Read a source's sync state", response=SourceOut, errors=(404,)),
        ),
        api_route(
            "/sources/{source_id}", delete_source, "DELETE",
            ApiDoc("Delete a source and the busy time it imported", status=204, errors=(404,)),
        ),
        api_route(
            "/sources/{source_id}/sync", sync_now, "POST",
            ApiDoc("Poll a source now", response=SyncOut, errors=(404,)),
        ),
        api_route(
            "/sources/{source_id}/confirm-removal", confirm_removal, "POST",
            ApiDoc("Accept the removals a held source announced, and apply them",
                   response=SyncOut, errors=(404, 409)),
        ),
    ]  # fmt: skip
