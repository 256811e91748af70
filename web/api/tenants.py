"""Tenants, API keys and operators: /tenants (system token), /tenants/{id}/api-keys and
/tenants/{id}/operators (owner)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from core.db.models import ApiKey, Operator, Tenant
from core.services import mailboxes, operators, tenants
from core.services.access import Grant
from web.http import authorize, in_transaction, json_response, read_json, rfc3339, runtime_of
from web.openapi import ApiDoc, api_route


class TenantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr = Field(min_length=1, max_length=200)
    slug: StrictStr = Field(min_length=1, max_length=40)
    organizer_email: StrictStr = Field(min_length=3, max_length=320)
    organizer_name: StrictStr | None = Field(default=None, max_length=200)
    host: StrictStr | None = Field(default=None, max_length=260)


class TenantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: StrictStr | None = Field(max_length=260)


class TenantOut(BaseModel):
    id: str
    slug: str
    name: str
    organizer_email: str | None
    organizer_name: str | None
    host: str | None


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: StrictStr
    label: StrictStr | None = Field(default=None, max_length=200)
    providers: list[StrictStr] | None = Field(default=None, max_length=1000)


class KeyOut(BaseModel):
    id: str
    key: str
    role: str


class OperatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: StrictStr = Field(min_length=3, max_length=320)
    role: StrictStr


class OperatorOut(BaseModel):
    id: str
    email: str
    role: str
    created_at: str


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id, "slug": tenant.slug, "name": tenant.name,
        "organizer_email": tenant.organizer_email, "organizer_name": tenant.organizer_name,
        "host": tenant.host,
    }  # fmt: skip


def _reserved_hosts(request: Request) -> tuple[str, ...]:
    return (tenants.deployment_host(runtime_of(request).settings.effective_base_url),)


def key_json(row: ApiKey) -> dict[str, Any]:
    """A key as listed: never its secret."""
    return {
        "id": row.id, "role": row.role, "label": row.label, "providers": row.providers,
        "created_at": rfc3339(row.created_at),
        "revoked_at": rfc3339(row.revoked_at) if row.revoked_at else None,
    }  # fmt: skip


async def create_tenant(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.SYSTEM)
    body = await read_json(request, TenantIn)

    settings = runtime_of(request).settings
    reserved = (settings.organizer_email, *settings.organizer_aliases)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        made = tenants.create_tenant(
            session, caller, name=body.name, slug=body.slug,
            organizer_email=body.organizer_email, organizer_name=body.organizer_name, now=now,
            reserved=reserved, host=body.host, reserved_hosts=_reserved_hosts(request),
        )  # fmt: skip
        return tenant_json(made)

    created = await in_transaction(request, work)
    mailboxes.changed()  # the mail listener accepts the new address at once
    return json_response(created, status=201)


async def patch_tenant(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.SYSTEM)
    body = await read_json(request, TenantPatch)
    tenant_id = request.path_params["tenant_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        changed = tenants.set_host(
            session, caller, tenant_id, body.host, reserved_hosts=_reserved_hosts(request)
        )
        return tenant_json(changed)

    answer = await in_transaction(request, work)
    mailboxes.changed()  # links and pages use the new host at once
    return json_response(answer)


async def list_tenants(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.SYSTEM)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return {"items": [tenant_json(t) for t in tenants.list_tenants(session, caller)]}

    return json_response(await in_transaction(request, work))


async def create_key(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.KEYS)
    body = await read_json(request, KeyIn)
    tenant_id = request.path_params["tenant_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        issued = tenants.create_key(
            session, caller, tenant_id, role=body.role, label=body.label,
            providers=body.providers, now=now,
        )  # fmt: skip
        return {"id": issued.row.id, "key": issued.key, "role": issued.row.role}

    made = await in_transaction(request, work)
    return json_response(made, status=201, headers={"Cache-Control": "no-store"})


async def list_keys(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.KEYS)
    tenant_id = request.path_params["tenant_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return {"items": [key_json(k) for k in tenants.list_keys(session, caller, tenant_id)]}

    return json_response(await in_transaction(request, work))


async def revoke_key(request: Request) -> Response:
    caller = await authorize(request, Grant.KEYS)
    tenant_id, key_id = request.path_params["tenant_id"], request.path_params["key_id"]

    def work(session: Session, now: datetime) -> None:
        tenants.revoke_key(session, caller, tenant_id, key_id, now)

    await in_transaction(request, work)
    return Response(status_code=204)


def operator_json(row: Operator) -> dict[str, Any]:
    return {"id": row.id, "email": row.email, "role": row.role,
            "created_at": rfc3339(row.created_at)}  # fmt: skip


async def add_operator(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.KEYS)
    body = await read_json(request, OperatorIn)
    tenant_id = request.path_params["tenant_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        made = operators.add_operator(
            session, caller, tenant_id, email=body.email, role=body.role, now=now
        )
        return operator_json(made)

    return json_response(await in_transaction(request, work), status=201)


async def list_operators(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.KEYS)
    tenant_id = request.path_params["tenant_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        found = operators.list_operators(session, caller, tenant_id)
        return {"items": [operator_json(row) for row in found]}

    return json_response(await in_transaction(request, work))


async def remove_operator(request: Request) -> Response:
    caller = await authorize(request, Grant.KEYS)
    tenant_id, operator_id = request.path_params["tenant_id"], request.path_params["operator_id"]

    def work(session: Session, now: datetime) -> None:
        operators.remove_operator(session, caller, tenant_id, operator_id, now)

    await in_transaction(request, work)
    return Response(status_code=204)


def routes() -> list[BaseRoute]:
    keys = "/tenants/{tenant_id}/api-keys"
    people = "/tenants/{tenant_id}/operators"
    return [
        api_route(
            "/tenants", create_tenant, "POST",
            ApiDoc("Create a tenant (system token)", request=TenantIn, response=TenantOut,
                   status=201, errors=(400, 403, 409)),
        ),
        api_route("/tenants", list_tenants, "GET", ApiDoc("Tenants (system token)", errors=(403,))),
        api_route(
            "/tenants/{tenant_id}", patch_tenant, "PATCH",
            ApiDoc("Give a tenant a host of its own, or none (system token)",
                   request=TenantPatch, response=TenantOut, errors=(400, 403, 404, 409)),
        ),
        api_route(
            keys, create_key, "POST",
            ApiDoc("Create an API key (shown once)", request=KeyIn, response=KeyOut, status=201,
                   errors=(400, 403, 404)),
        ),
        api_route(keys, list_keys, "GET", ApiDoc("The tenant's API keys, without secrets")),
        api_route(
            f"{keys}/{{key_id}}", revoke_key, "DELETE",
            ApiDoc("Revoke an API key at once", status=204, errors=(403, 404)),
        ),
        api_route(
            people, add_operator, "POST",
            ApiDoc("Add an operator of the console at /admin", request=OperatorIn,
                   response=OperatorOut, status=201, errors=(400, 403, 404, 409)),
        ),
        api_route(people, list_operators, "GET", ApiDoc("The tenant's operators")),
        api_route(
            f"{people}/{{operator_id}}", remove_operator, "DELETE",
            ApiDoc("Remove an operator and end their sessions", status=204, errors=(403, 404)),
        ),
    ]  # fmt: skip
