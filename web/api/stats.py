"""GET /stats: the KPIs of a period, computed from the database (admin).

``from`` and ``to`` take RFC 3339 date-times, date-times without an offset (read as UTC)
or dates: a date as ``from`` starts at its midnight UTC, as ``to`` it includes the whole
day. The answer names the period it covers, so nobody has to guess.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from core.services import stats
from core.services.access import Caller, Grant
from core.services.errors import Forbidden
from web.errors import BadRequest
from web.http import authorize, in_transaction, json_response, parse_instant, rfc3339
from web.openapi import ApiDoc, api_route

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class DurationsOut(BaseModel):
    median: float | None
    p95: float | None
    count: int


class StatsOut(BaseModel):
    """Counts and KPIs; a rate without data for the period is null."""

    from_: str = Field(alias="from")
    to: str
    scope: dict[str, str]
    instant_book_success_rate: float | None
    time_to_reschedule_seconds: DurationsOut
    holds_expired_unused_ratio: float | None
    ics_error_rate: float | None
    ics_error_rate_basis: str
    ics_polls: dict[str, int]
    bookings: dict[str, int]
    holds: dict[str, int]
    proposals: dict[str, int]
    feasibility_p95_ms: float | None
    feasibility_scope: str


def scope_of(caller: Caller) -> stats.Scope:
    """The tenant the figures are about: the caller's. They cover the whole tenant, so a
    key limited to some providers may not read them."""
    if caller.providers is not None:
        raise Forbidden("the figures cover the whole tenant; this key sees only some providers")
    return stats.Scope(tenant_id=caller.tenant_id)


def moment(value: str | None, name: str, *, end: bool) -> datetime | None:
    """A bound of the period from the query (None when absent), read by ``parse_instant``."""
    if value is None:
        return None
    text = value.strip()
    if _DATE.fullmatch(text):
        midnight = _date(text, name)
        return midnight + timedelta(days=1) if end else midnight
    try:
        return parse_instant(text, name)
    except BadRequest as exc:
        if exc.code != "naive_datetime":
            raise
    return parse_instant(f"{text}Z", name)


def _date(text: str, name: str) -> datetime:
    """Midnight UTC of a YYYY-MM-DD date; the message of a 400 names the date as given."""
    try:
        return parse_instant(f"{text}T00:00:00Z", name)
    except BadRequest as exc:
        if exc.code != "invalid_time":
            raise
    raise BadRequest(f"{name} {text!r} is not a valid date", code="invalid_time")


def stats_json(found: stats.Stats) -> dict[str, Any]:
    waited = found.time_to_reschedule
    return {
        "from": rfc3339(found.period.start),
        "to": rfc3339(found.period.end),
        "scope": {"tenant": found.scope.tenant_id},
        "instant_book_success_rate": found.instant_book_success_rate,
        "time_to_reschedule_seconds": {
            "median": waited.median, "p95": waited.p95, "count": waited.count,
        },
        "holds_expired_unused_ratio": found.holds_expired_unused_ratio,
        "ics_error_rate": found.ics_error_rate,
        "ics_error_rate_basis": "polls",  # one sync_logs row per poll, not per source
        "ics_polls": found.ics_polls,
        "bookings": found.bookings,
        "holds": found.holds,
        "proposals": found.proposals,
        "feasibility_p95_ms": found.feasibility_p95_ms,
        "feasibility_scope": "process",  # this process's histogram since it started
    }  # fmt: skip


async def get_stats(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.READ)
    query, scope = request.query_params, scope_of(caller)
    start = moment(query.get("from"), "from", end=False)
    end = moment(query.get("to"), "to", end=True)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        period = stats.Period.of(start, end, now)
        return stats_json(stats.compute(session, period, now, scope))

    return json_response(await in_transaction(request, work))


def routes() -> list[BaseRoute]:
    return [
        api_route(
            "/stats", get_stats, "GET",
            ApiDoc("KPIs and counts of a period (default: the 7 days before now), at most"
                   " 366 days; from/to: RFC 3339, UTC without an offset, or dates (to"
                   " includes its day)", response=StatsOut, query=("from", "to"),
                   errors=(400,)),
        ),
    ]  # fmt: skip
