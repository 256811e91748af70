"""Settling a conflict by hand: POST /conflicts/{id}/resolve {"keep": "first"|"second"|"both"}."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from core.db.models import Conflict
from core.services import conflicts
from core.services.access import Grant
from web.errors import BadRequest
from web.http import authorize, in_transaction, json_response, read_json, rfc3339
from web.openapi import ApiDoc, api_route


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keep: Literal["first", "second", "both"]


class ResolvedOut(BaseModel):
    id: int
    status: str
    resolution: str | None
    winner_event_id: int | None
    resolved_by: str | None
    resolved_at: str | None


def resolved_json(row: Conflict) -> dict[str, Any]:
    return {
        "id": row.id, "status": "open" if row.resolved_at is None else "resolved",
        "resolution": row.resolution, "winner_event_id": row.winner_id,
        "resolved_by": row.resolved_by,
        "resolved_at": rfc3339(row.resolved_at) if row.resolved_at else None,
    }  # fmt: skip


def conflict_id(request: Request) -> int:
    raw = request.path_params["conflict_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest("conflict id must be a whole number", code="invalid_id")
    return int(raw)


async def resolve(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    ident = conflict_id(request)
    body = await read_json(request, ResolveIn)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return resolved_json(conflicts.resolve(session, caller, ident, body.keep, now))

    return json_response(await in_transaction(request, work))


def routes() -> list[BaseRoute]:
    return [
        api_route(
            "/conflicts/{conflict_id}/resolve", resolve, "POST",
            ApiDoc("Settle a conflict by hand: keep the first, the second, or both",
                   request=ResolveIn, response=ResolvedOut, errors=(400, 403, 404, 409)),
        ),
    ]  # fmt: skip
