"""The operator's list endpoints: providers, bookings, sources, conflicts, mail, audit.

Each answers ``{"items": [...], "next_cursor": ...}`` newest first; pass ``cursor`` back
for the next page and ``limit`` (1–200, default 50) for its size.
Any role may read them; a key limited to some providers sees only theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from core.db.models import AuditEntry, InboundMessage, OutboundMessage, Provider
from core.services import lists
from core.services.access import Caller, Grant
from core.services.lists import ConflictSide, ConflictView, Page, PageRequest
from web.api.bookings import booking_json
from web.api.providers import provider_json
from web.api.sources import source_json
from web.errors import BadRequest
from web.http import authorize, in_transaction, json_response, parse_instant, rfc3339
from web.openapi import ApiDoc, api_route

T = TypeVar("T")
_HEADERS = BytesHeaderParser(policy=default_policy)


class ListOut(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


def _page_request(request: Request) -> PageRequest:
    query = request.query_params
    raw = query.get("limit", str(lists.DEFAULT_LIMIT)).strip()
    if not raw.isdigit():
        raise BadRequest(f"limit must be a whole number 1–{lists.MAX_LIMIT}", code="invalid_limit")
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > 500:
        raise BadRequest("cursor is not one this API gave out", code="invalid_cursor")
    return PageRequest(limit=int(raw), cursor=cursor)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


async def _listed(
    request: Request,
    fetch: Callable[[Session, Caller, PageRequest], Page[T]],
    shape: Callable[[Session, T], dict[str, Any]],
) -> JSONResponse:
    """One page of a list as JSON, each row shaped by ``shape(session, row)``."""
    caller = await authorize(request, Grant.READ)
    page = _page_request(request)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        found = fetch(session, caller, page)
        items = [shape(session, item) for item in found.items]
        return {"items": items, "next_cursor": found.next_cursor}

    return json_response(await in_transaction(request, work))


def _plain(shape: Callable[[T], dict[str, Any]]) -> Callable[[Session, T], dict[str, Any]]:
    """A row shape that needs no session."""
    return lambda session, item: shape(item)


# --- rows as JSON ---------------------------------------------------------------------------


def _conflict_side(side: ConflictSide) -> dict[str, Any]:
    return {
        "event_id": side.event_id, "source_id": side.source_id, "platform": side.platform,
        "summary": side.summary, "reservation_code": side.reservation_code, "kind": side.kind,
        "start": rfc3339(side.start), "end": rfc3339(side.end),
    }  # fmt: skip


def conflict_json(view: ConflictView) -> dict[str, Any]:
    return {
        "id": view.id, "provider_id": view.provider_id, "unit": view.unit_name,
        "description": view.description, "type": view.conflict_type,
        "overlap_start": rfc3339(view.overlap_start), "overlap_end": rfc3339(view.overlap_end),
        "status": "open" if view.resolved_at is None else "resolved",
        "resolution": view.resolution, "winner_event_id": view.winner_event_id,
        "warning": view.warning, "resolved_by": view.resolved_by,
        "resolved_at": _time(view.resolved_at), "created_at": rfc3339(view.created_at),
        "first": _conflict_side(view.first), "second": _conflict_side(view.second),
        "remaining": [{"start": rfc3339(a), "end": rfc3339(b)} for a, b in view.remaining],
    }  # fmt: skip


def inbound_json(row: InboundMessage) -> dict[str, Any]:
    return {
        "id": row.id, "received_at": rfc3339(row.received_at), "channel": row.channel,
        "from": row.from_address or row.envelope_from, "to": row.envelope_to,
        "subject": row.subject, "method": row.method, "uid": row.uid,
        "sequence": row.sequence, "attendee": row.attendee, "partstat": row.partstat,
        "outcome": row.outcome, "reason": row.outcome_reason, "booking_id": row.booking_id,
        "processed_at": _time(row.processed_at), "size": row.size,
    }  # fmt: skip


def _subject(mime: bytes) -> str | None:
    subject = _HEADERS.parsebytes(mime).get("subject")
    return None if subject is None else str(subject)


def outbound_json(row: OutboundMessage) -> dict[str, Any]:
    return {
        "id": row.id, "kind": row.kind, "recipient": row.recipient,
        "subject": _subject(row.mime), "method": row.method, "uid": row.uid,
        "sequence": row.sequence, "booking_id": row.booking_id, "status": row.status,
        "attempts": row.attempts, "last_error": row.last_error,
        "next_attempt_at": _time(row.next_attempt_at) if row.status == "pending" else None,
        "created_at": rfc3339(row.created_at), "sent_at": _time(row.sent_at),
    }  # fmt: skip


def audit_json(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id, "at": rfc3339(row.at), "actor": row.actor, "action": row.action,
        "subject_type": row.subject_type, "subject_id": row.subject_id, "data": row.data,
    }  # fmt: skip


# --- endpoints ------------------------------------------------------------------------------


async def list_providers(request: Request) -> JSONResponse:
    def shape(session: Session, provider: Provider) -> dict[str, Any]:
        return {
            **provider_json(request, session, provider),
            "created_at": rfc3339(provider.created_at),
        }

    return await _listed(request, lists.list_providers, shape)


async def list_bookings(request: Request) -> JSONResponse:
    query = request.query_params
    wanted = lists.BookingFilter(
        status=query.get("status") or None,
        provider_id=query.get("provider_id") or None,
        email=query.get("email") or None,
        start_from=parse_instant(query["from"], "from") if query.get("from") else None,
        start_to=parse_instant(query["to"], "to") if query.get("to") else None,
    )

    def fetch(session: Session, caller: Caller, page: PageRequest) -> Page[Any]:
        return lists.list_bookings(session, caller, wanted, page)

    return await _listed(
        request,
        fetch,
        _plain(lambda view: {**booking_json(view), "created_at": rfc3339(view.booking.created_at)}),
    )


def _filtered(
    name: str, fetch: Callable[[Session, Caller, str | None, PageRequest], Page[T]]
) -> Callable[[Request], Callable[[Session, Caller, PageRequest], Page[T]]]:
    """A fetch with the one query filter ``name`` of the request bound."""

    def bound(request: Request) -> Callable[[Session, Caller, PageRequest], Page[T]]:
        value = request.query_params.get(name) or None
        return lambda session, caller, page: fetch(session, caller, value, page)

    return bound


async def list_sources(request: Request) -> JSONResponse:
    return await _listed(
        request, _filtered("status", lists.list_sources)(request), _plain(source_json)
    )


async def list_conflicts(request: Request) -> JSONResponse:
    fetch = _filtered("status", lists.list_conflicts)(request)
    return await _listed(request, fetch, _plain(conflict_json))


async def list_inbound(request: Request) -> JSONResponse:
    return await _listed(
        request, _filtered("outcome", lists.list_inbound)(request), _plain(inbound_json)
    )


async def list_outbound(request: Request) -> JSONResponse:
    return await _listed(
        request, _filtered("status", lists.list_outbound)(request), _plain(outbound_json)
    )


async def list_audit(request: Request) -> JSONResponse:
    return await _listed(
        request, _filtered("booking_id", lists.list_audit)(request), _plain(audit_json)
    )


async def retry_outbound(request: Request) -> JSONResponse:
    caller = await authorize(request, Grant.WRITE)
    raw = request.path_params["message_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest("message id must be a whole number", code="invalid_id")

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return outbound_json(lists.retry_outbound(session, caller, int(raw), now))

    return json_response(await in_transaction(request, work))


def routes() -> list[BaseRoute]:
    paging = ("limit", "cursor")

    def listed(path: str, endpoint: Callable[..., Any], what: str, *filters: str) -> BaseRoute:
        doc = ApiDoc(f"{what}, newest first", response=ListOut, query=(*filters, *paging))
        return api_route(path, endpoint, "GET", doc)

    return [
        listed("/providers", list_providers, "Providers"),
        listed(
            "/bookings", list_bookings, "Bookings", "status", "provider_id", "email", "from", "to"
        ),
        listed("/sources", list_sources, "Imported calendars", "status"),
        listed("/conflicts", list_conflicts, "Overlapping imported reservations", "status"),
        listed("/inbound-messages", list_inbound, "Mail the organizer mailbox received", "outcome"),
        listed("/outbound-messages", list_outbound, "Mail Parley sent or will send", "status"),
        listed("/audit", list_audit, "The audit log", "booking_id"),
        api_route(
            "/outbound-messages/{message_id}/retry",
            retry_outbound,
            "POST",
            ApiDoc("Send a failed message again now", errors=(400, 404, 409)),
        ),
    ]
