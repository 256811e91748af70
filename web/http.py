"""Small helpers every endpoint uses: the runtime, who is calling (``authorize``), JSON
in and out, running a service in one transaction off the event loop, strict RFC 3339
parsing, and the per-IP limiter for public calls. Service and domain errors pass
through: web.app answers them.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from core.runtime import Runtime
from core.services import access, ratelimit
from core.services.access import Caller, Grant
from web.errors import BadRequest, Unauthorized
from web.inputs import check_date, json_value

T = TypeVar("T")
_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:?\d{2})?"
)
_PLUS_LOST = re.compile(r"(.*[Tt]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})")
MAX_DURATION_MINUTES = 14 * 24 * 60

M = TypeVar("M", bound=BaseModel)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


TENANT_HEADER = "x-parley-tenant"


async def authorize(request: Request, needed: Grant) -> Caller:
    """The caller behind the bearer token, once it may take an action needing ``needed``.

    The system token (PARLEY_ADMIN_TOKEN) acts in the tenant ``X-Parley-Tenant`` names,
    or in ``default``; a tenant key in its own tenant (a header naming another is a
    404). No or an unknown token: Unauthorized; a role without ``needed``: Forbidden.
    """
    caller: Caller | None = getattr(request.state, "caller", None)
    if caller is None:
        caller = _system_in_default(request)
    if caller is None:
        caller = await run_in_threadpool(_authenticate, request)
    request.state.caller = caller
    caller.require(needed)
    return caller


def _system_in_default(request: Request) -> Caller | None:
    """The common case, answered without the database: the system token, no tenant named."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if request.headers.get(TENANT_HEADER) or scheme.lower() != "bearer":
        return None
    expected = runtime_of(request).secrets.admin_token.encode()
    return access.SYSTEM if hmac.compare_digest(token.strip().encode(), expected) else None


def _authenticate(request: Request) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("this call needs 'Authorization: Bearer <admin token or API key>'")
    runtime = runtime_of(request)
    named = request.headers.get(TENANT_HEADER) or None
    with runtime.sessions() as session:
        caller = access.authenticate(session, token, runtime.secrets.admin_token, named)
    if caller is None:
        raise Unauthorized("this token is not the admin token nor a live API key")
    return caller


def validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(validation_message(exc), code="invalid_request") from None


async def read_json(request: Request, model: type[M]) -> M:
    """The request body as model (empty means ``{}``); bad JSON or fields raise BadRequest."""
    return parse_body(await request.body(), model)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=headers)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def in_transaction(request: Request, work: Callable[[Session, datetime], T]) -> T:
    """Run ``work(session, now)`` in one transaction in the threadpool."""
    runtime = runtime_of(request)

    def run() -> T:
        with runtime.sessions.begin() as session:
            return work(session, runtime.clock())

    return await run_in_threadpool(_once_more_if_read, request, run)


def connection_lost(exc: BaseException) -> bool:
    """True when exc says the database connection went away midway (SQLAlchemy invalidated it)."""
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _once_more_if_read(request: Request, run: Callable[[], T]) -> T:
    """run(), and once more when a read (GET, HEAD) lost its database connection midway.

    A write is not repeated: its COMMIT may have been applied before the connection went.
    """
    try:
        return run()
    except DBAPIError as exc:
        if not _retried(request, exc):
            raise
    return run()


def _retried(request: Request, exc: BaseException) -> bool:
    """True when ``_once_more_if_read`` runs a request again after exc."""
    return connection_lost(exc) and request.method in ("GET", "HEAD")


def public_budget(request: Request) -> ratelimit.Budget:
    """The per-IP budget every public call is counted against."""
    client = request.client.host if request.client else "unknown"
    return ratelimit.Budget(
        f"public:{client}", runtime_of(request).settings.public_rate_limit_per_minute
    )


async def public_call(request: Request, work: Callable[[Session, datetime], T]) -> T:
    """``work`` in one transaction that also counts the call against its client's budget
    (``ratelimit.counted``, in the threadpool). Parse request values inside ``work``."""
    runtime, budget = runtime_of(request), public_budget(request)

    def run() -> T:
        return ratelimit.counted(
            runtime, budget, work, count_failure=lambda exc: not _retried(request, exc)
        )  # a read run again is counted by its second run

    return await run_in_threadpool(_once_more_if_read, request, run)


async def public_call_hot(request: Request, door: Callable[[ratelimit.Budget], Awaitable[T]]) -> T:
    """Await a core door that counts its own call against the client's budget (such as
    ``holds.place_hold``, which picks its hot path itself); its errors reach the app's
    exception handlers."""
    return await door(public_budget(request))


async def limit_public(request: Request) -> None:
    """Count this request against its client's budget; 429 once exceeded."""
    await ratelimit.count(runtime_of(request), public_budget(request))


def parse_body(raw: bytes, model: type[M]) -> M:
    """``read_json`` for a body already read (so it can be parsed in the threadpool)."""
    data = json_value(raw)
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="invalid_request")
    return parse_model(model, data)


def parse_instant(value: object, name: str) -> datetime:
    """An aware datetime from RFC 3339 text; naive or unparsable values are 400s."""
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} is required (RFC 3339 with an offset)", code="invalid_time")
    text = value.strip()
    lost = _PLUS_LOST.fullmatch(text)
    if lost:  # "+01:00" arrived as " 01:00": an unescaped '+' in a query string
        text = f"{lost[1]}+{lost[2]}"
    if not _INSTANT.fullmatch(text):
        raise BadRequest(f"{name} {value!r} is not an RFC 3339 date-time", code="invalid_time")
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise BadRequest(
            f"{name} {value!r} is not a valid date-time", code="invalid_time"
        ) from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} must carry an offset, e.g. Z or +01:00", code="naive_datetime")
    return check_date(parsed, name)


def parse_minutes(value: object, name: str) -> timedelta:
    """A positive whole number of minutes from a query parameter."""
    if not isinstance(value, str) or not value.strip().isdigit():
        raise BadRequest(f"{name} must be a whole number of minutes", code="invalid_duration")
    minutes = int(value.strip())
    if not 0 < minutes <= MAX_DURATION_MINUTES:
        raise BadRequest(
            f"{name} must be 1–{MAX_DURATION_MINUTES} minutes", code="invalid_duration"
        )
    return timedelta(minutes=minutes)


def rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
