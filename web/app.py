"""The Starlette application: JSON API, pages, feeds, health and metrics.

create_app() assembles it from a literal route list; a lifespan opens the runtime
(engine, sessions, secrets) unless one is passed in, and disposes it at shutdown.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from caldav_bridge.app import DavMount, well_known_caldav
from core.logging import get_logger
from core.runtime import Runtime, open_runtime
from core.services import gauges
from core.services.errors import LinkProblem, RateLimited
from core.services.health import database_ok
from core.settings import Settings, load_settings
from web.api import api_routes
from web.edge import ClientAddress, ErrorBoundary, InputGuard
from web.errors import (
    STATUS,
    Answered,
    ApiError,
    link_purpose,
    link_rejected,
    link_reply,
    reply_for,
)
from web.http import error_response, runtime_of
from web.i18n import LanguageCookie
from web.openapi import build_document
from web.pages import page_routes
from web.tenant_hosts import TenantHosts

_log = get_logger("parley.web")

HTTP_REQUESTS = Counter("parley_http_requests_total", "HTTP requests served", ["method", "status"])
HTTP_LATENCY = Histogram(
    "parley_http_request_seconds",
    "HTTP request latency",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
API_VERSION = "1.0.0"


async def healthz(request: Request) -> JSONResponse:
    ok = await run_in_threadpool(database_ok, runtime_of(request).engine)
    body = {"status": "ok" if ok else "unavailable", "database": "ok" if ok else "unreachable"}
    return JSONResponse(body, status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    gauges.bind_runtime(runtime_of(request))
    # Off the event loop: the database gauges may query (at most every few seconds).
    body = await run_in_threadpool(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.openapi)


async def api_not_found(request: Request) -> JSONResponse:
    return error_response(404, "not_found", f"no API endpoint at {request.url.path}")


class MetricsMiddleware:
    """Counts requests by method and status and observes latency (pure ASGI, cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_REQUESTS.labels(scope["method"], str(status)).inc()
            HTTP_LATENCY.observe(time.perf_counter() - started)


async def _answered(request: Request, exc: Exception) -> Response:
    """The JSON error for an ApiError or a core error listed in web.errors.STATUS."""
    reply = reply_for(cast(Answered, exc))
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return error_response(reply.status, reply.code, reply.message, headers)


async def _link_problem(request: Request, exc: Exception) -> Response:
    problem = cast(LinkProblem, exc)
    link_rejected(link_purpose(request.url.path), problem.reason)
    reply = link_reply(problem)
    return error_response(reply.status, reply.code, reply.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=exc.headers)


def exception_handlers() -> dict[Any, ExceptionHandler]:
    """Handlers by class; Starlette picks the one of the nearest class in an error's MRO."""
    handlers: dict[Any, ExceptionHandler] = dict.fromkeys([ApiError, *STATUS], _answered)
    return {**handlers, LinkProblem: _link_problem, HTTPException: _http_error}


def build_routes() -> list[BaseRoute]:
    api = [*api_routes(), Route("/openapi.json", openapi), Route("/{rest:path}", api_not_found)]
    return [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Mount("/api/v1", routes=api),
        *page_routes(),
        *dav_routes(),
    ]


def dav_routes() -> list[BaseRoute]:
    """The CalDAV bridge (Radicale through a2wsgi) and its RFC 6764 discovery redirect."""
    methods = ["GET", "HEAD", "OPTIONS", "PROPFIND"]
    return [
        Route("/.well-known/caldav", well_known_caldav, methods=methods),
        Mount("/dav", app=DavMount()),
    ]


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Starlette:
    """The ASGI app; with no runtime given, the lifespan opens one from settings."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or open_runtime(settings or load_settings())
        try:
            yield
        finally:
            if owned:
                app.state.runtime.close()

    routes = build_routes()
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=exception_handlers(),
    )
    # Outermost last: the client address, metrics, the error boundary, the input guard,
    # tenants' own hosts; the language cookie innermost.
    app.add_middleware(LanguageCookie)
    app.add_middleware(TenantHosts)
    app.add_middleware(InputGuard)
    app.add_middleware(ErrorBoundary)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(ClientAddress)
    api_mount = next(r for r in routes if isinstance(r, Mount) and r.path == "/api/v1")
    app.state.openapi = build_document(api_mount.routes, prefix="/api/v1", version=API_VERSION)
    if runtime is not None:
        app.state.runtime = runtime
    return app
