"""The OpenAPI document of /api/v1, generated from the routes and their pydantic models.

An API route is declared with api_route(), which records its summary, request and
response models; the document is assembled from those records, so it cannot drift
from the routes actually served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


@dataclass(frozen=True)
class ApiDoc:
    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    admin: bool = True
    query: tuple[str, ...] = ()
    errors: tuple[int, ...] = field(default=(400, 404))


class ApiRoute(Route):
    """A Starlette route that carries its API documentation."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, methods: list[str], doc: ApiDoc):
        super().__init__(path, endpoint, methods=methods)
        self.doc = doc


def api_route(path: str, endpoint: Callable[..., Any], method: str, doc: ApiDoc) -> ApiRoute:
    return ApiRoute(path, endpoint, methods=[method], doc=doc)


def build_document(routes: Iterable[BaseRoute], *, prefix: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for route in routes:
        if not isinstance(route, ApiRoute):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            paths.setdefault(prefix + route.path, {})[method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Parley API", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas[name] = sub
    schemas[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _operation(route: ApiRoute, schemas: dict[str, Any]) -> dict[str, Any]:
    doc = route.doc
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.param_convertors
    ]
    params += [{"name": q, "in": "query", "schema": {"type": "string"}} for q in doc.query]
    op: dict[str, Any] = {"summary": doc.summary, "parameters": params}
    if doc.admin:
        op["security"] = [{"admin": []}]
    if doc.request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(doc.request, schemas)}},
        }
    ok: dict[str, Any] = {"description": "success"}
    if doc.response is not None:
        ok["content"] = {"application/json": {"schema": _ref(doc.response, schemas)}}
    error = {
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    responses = {str(doc.status): ok}
    for status in (*doc.errors, *((401,) if doc.admin else ())):
        responses[str(status)] = error
    op["responses"] = responses
    return op
