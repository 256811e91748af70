"""Unit relationships: /relationships and /providers/{id}/relationships (seed 003 §3.5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from core.services import units
from core.services.access import Grant
from web.http import authorize, in_transaction, json_response, read_json, rfc3339
from web.openapi import ApiDoc, api_route


class RelationshipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parent_id: StrictStr = Field(min_length=1, max_length=40)
    child_id: StrictStr = Field(min_length=1, max_length=40)
    block_child_on_parent: StrictBool = True
    block_parent_on_all_children: StrictBool = False


class RelationshipOut(BaseModel):
    id: str
    parent_id: str
    parent_name: str
    child_id: str
    child_name: str
    block_child_on_parent: bool
    block_parent_on_all_children: bool
    created_at: str


class RelationshipsOut(BaseModel):
    items: list[RelationshipOut]


def relationship_json(link: units.Link) -> dict[str, Any]:
    row = link.row
    return {
        "id": row.id, "parent_id": row.parent_id, "parent_name": link.parent_name,
        "child_id": row.child_id, "child_name": link.child_name,
        "block_child_on_parent": row.block_child_on_parent,
        "block_parent_on_all_children": row.block_parent_on_all_children,
        "created_at": rfc3339(row.created_at),
    }  # fmt: skip


async def create_relationship(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    body = await read_json(request, RelationshipIn)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        link = units.create_relationship(
            session, caller, parent_id=body.parent_id, child_id=body.child_id,
            block_child_on_parent=body.block_child_on_parent,
            block_parent_on_all_children=body.block_parent_on_all_children, now=now,
        )  # fmt: skip
        return relationship_json(link)

    return json_response(await in_transaction(request, work), status=201)


async def list_relationships(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.READ)
    provider_id = request.path_params["provider_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        links = units.relationships_of(session, caller, provider_id)
        return {"items": [relationship_json(link) for link in links]}

    return json_response(await in_transaction(request, work))


async def delete_relationship(request: Request) -> Response:
    caller = await authorize(request, Grant.WRITE)
    relationship_id = request.path_params["relationship_id"]

    def work(session: Session, now: datetime) -> None:
        units.delete_relationship(session, caller, relationship_id, now)

    await in_transaction(request, work)
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    return [
        api_route(
            "/relationships",
            create_relationship,
            "POST",
            ApiDoc(
                "Make one unit the child of another",
                request=RelationshipIn,
                response=RelationshipOut,
                status=201,
                errors=(400, 403, 404, 409),
            ),
        ),
        api_route(
            "/providers/{provider_id}/relationships",
            list_relationships,
            "GET",
            ApiDoc("The unit's parents and children", response=RelationshipsOut),
        ),
        api_route(
            "/relationships/{relationship_id}",
            delete_relationship,
            "DELETE",
            ApiDoc("Remove a relationship", status=204, errors=(403, 404)),
        ),
    ]
