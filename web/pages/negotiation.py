"""The no-login pages behind emailed links: request a new time, approve, decline.

Opening a link never changes anything (mail scanners and link previews open links):
GET shows what the link would do, and only the page's POST button acts. A link that is
tampered, expired or used gets a page saying so, with a fresh "request a new time"
button where that makes sense; never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.db.models import Booking, Invitation
from core.domain.zones import is_nonexistent
from core.runtime import Runtime
from core.services import accounts
from core.services import bookings as booking_service
from core.services.errors import BookingFacts, LinkProblem, ServiceError
from core.services.notify import Mailer, attendee_zone, invitations_of, link_zone
from core.services.proposals import (
    approve,
    decline,
    fresh_link_for_token,
    open_link,
    propose_with_link,
)
from core.services.providers import get_provider
from core.tzids import zone_for_tzid
from web.errors import LINK_STATUS, ApiError, BadRequest, link_purpose, link_rejected
from web.http import json_response, read_json, runtime_of
from web.inputs import Instant, check_date, in_range
from web.openapi import ApiDoc, api_route
from web.templating import templates

CANDIDATE_DAYS = 14
MAX_CANDIDATES = 40


@dataclass(frozen=True)
class Shown:
    """What a link page shows: the booking, the viewer's invitation and zone."""

    booking: Booking
    invitation: Invitation | None
    zone: str
    other_name: str
    purpose: str
    proposal: Any
    candidates: list[Any]


def _zone_for(session: Session, booking: Booking, invitation: Invitation | None) -> str:
    """The zone the page shows times in: the mails' choice, else the provider's."""

    def provider_zone() -> str:
        return get_provider(session, booking.provider_id).timezone

    found = attendee_zone(booking, invitation, provider_zone) if invitation else None
    return found or provider_zone()


def _look(runtime: Runtime, token: str, want: set[str]) -> Shown:
    mailer = Mailer.from_runtime(runtime)
    now = runtime.clock()
    with runtime.sessions.begin() as session:  # committed, so the rows stay loaded
        use = open_link(session, mailer, token, now=now, lock=False)
        if use.link.purpose not in want:
            raise LinkProblem("invalid", "This link is for something else.", use.booking)
        booking = use.booking
        invitation = next(
            (i for i in invitations_of(session, booking) if i.role == use.link.actor_role), None
        )
        other = booking.guest_name if use.link.actor_role == "host" else booking.host_name
        candidates: list[Any] = []
        if use.link.purpose == "propose":
            candidates = booking_service.reschedule_candidates(
                session, booking.id, now, now + timedelta(days=CANDIDATE_DAYS), now
            ).slots[:MAX_CANDIDATES]
        return Shown(
            booking=booking,
            invitation=invitation,
            zone=_zone_for(session, booking, invitation),
            other_name=other or "the other participant",
            purpose=use.link.purpose,
            proposal=use.proposal,
            candidates=candidates,
        )


def _problem_page(request: Request, runtime: Runtime, problem: LinkProblem, token: str) -> Response:
    link_rejected(link_purpose(request.url.path), problem.reason)
    fresh, zone = None, None
    if problem.booking is not None and problem.reason in (
        "expired",
        "used",
        "not_pending",
        "moved",
    ):
        fresh = _fresh_link(runtime, problem.booking, token)
    if problem.booking is not None:
        zone = problem_zone(runtime, problem.booking.id, token)
    context = {"problem": problem, "fresh_link": fresh, "zone": zone}
    status = LINK_STATUS.get(problem.reason, 409)
    return templates.TemplateResponse(request, "link_problem.html", context, status_code=status)


def problem_zone(runtime: Runtime, booking_id: str, token: str) -> str | None:
    """The zone of a link problem's page: the link holder's (never UTC for them)."""
    with runtime.sessions.begin() as session:
        return link_zone(session, token, booking_id)


def _fresh_link(runtime: Runtime, booking: BookingFacts, token: str) -> str | None:
    mailer = Mailer.from_runtime(runtime)
    now = runtime.clock()
    with runtime.sessions.begin() as session:
        return fresh_link_for_token(session, mailer, token, booking.id, now)


async def reschedule_page(request: Request) -> Response:
    runtime = runtime_of(request)
    token = request.query_params.get("r", "")
    try:
        shown = await run_in_threadpool(_look, runtime, token, {"propose"})
    except LinkProblem as problem:
        return await run_in_threadpool(_problem_page, request, runtime, problem, token)
    zone = request.query_params.get("tz") or shown.zone
    if zone_for_tzid(zone) is None:
        zone = shown.zone
    context = {"shown": shown, "token": token, "zone": zone, "errors": {}, "form": {}}
    return templates.TemplateResponse(request, "reschedule.html", context)


def _parse_choice(
    form: dict[str, str], zone: str, duration: timedelta
) -> tuple[datetime, datetime]:
    """The start the person picked (a candidate or a typed local date and time)."""
    choice = form.get("slot", "")
    if choice and choice != "other":
        try:
            start = datetime.fromisoformat(choice)
        except ValueError:
            raise BadRequest("pick one of the listed times", code="slot") from None
        if start.tzinfo is None or not in_range(start):
            raise BadRequest("pick one of the listed times", code="slot")
        return start.astimezone(UTC), start.astimezone(UTC) + duration
    tz = zone_for_tzid(form.get("tz") or zone) or ZoneInfo("UTC")
    try:
        day = date.fromisoformat(form.get("date", ""))
        clock = time.fromisoformat(form.get("time", ""))
    except ValueError:
        raise BadRequest("enter a date and a time", code="when") from None
    check_date(day, "the date")
    local = datetime.combine(day, clock, tz)
    if is_nonexistent(local):
        raise BadRequest("that local time does not exist (clocks change then)", code="when")
    start = local.astimezone(UTC)
    return start, start + duration


async def reschedule_submit(request: Request) -> Response:
    runtime = runtime_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    token = form.get("r", "")
    try:
        shown = await run_in_threadpool(_look, runtime, token, {"propose"})
    except LinkProblem as problem:
        return await run_in_threadpool(_problem_page, request, runtime, problem, token)
    zone = form.get("tz") or shown.zone
    duration = shown.booking.end_at - shown.booking.start_at
    try:
        start, end = _parse_choice(form, zone, duration)
        proposal = await run_in_threadpool(
            _propose, runtime, token, start, end, form.get("note", "")[:2000]
        )
    except LinkProblem as problem:
        return await run_in_threadpool(_problem_page, request, runtime, problem, token)
    except (ApiError, ServiceError) as exc:
        context = {
            "shown": shown,
            "token": token,
            "zone": zone,
            "errors": {"form": exc.message},
            "form": form,
        }
        return templates.TemplateResponse(request, "reschedule.html", context, status_code=400)
    context = {"shown": shown, "proposal": proposal, "zone": zone}
    return templates.TemplateResponse(request, "reschedule_sent.html", context, status_code=201)


def _propose(runtime: Runtime, token: str, start: datetime, end: datetime, note: str | None) -> Any:
    mailer = Mailer.from_runtime(runtime)
    with runtime.sessions.begin() as session:
        return propose_with_link(
            session, mailer, token, start=start, end=end, note=note, now=runtime.clock()
        )


async def _confirm_page(request: Request, verb: str) -> Response:
    runtime = runtime_of(request)
    token = request.query_params.get("t", "")
    try:
        shown = await run_in_threadpool(_look, runtime, token, {verb, f"{verb}_booking"})
        if shown.proposal is not None and shown.proposal.status != "pending":
            raise LinkProblem(
                "not_pending", f"This proposed time is {shown.proposal.status}.", shown.booking
            )
    except LinkProblem as problem:
        return await run_in_threadpool(_problem_page, request, runtime, problem, token)
    context = {"shown": shown, "token": token, "verb": verb, "zone": shown.zone}
    return templates.TemplateResponse(request, "confirm_action.html", context)


def _act(runtime: Runtime, token: str, verb: str) -> tuple[str, Booking, str]:
    mailer = Mailer.from_runtime(runtime)
    now = runtime.clock()
    with runtime.sessions.begin() as session:
        use = open_link(session, mailer, token, now=now, lock=True)
        purpose = use.link.purpose
        if not purpose.startswith(verb):
            raise LinkProblem("invalid", "This link is for something else.", use.booking)
        actor = booking_service.actor_of(runtime, use.link.actor_address)
        if purpose == "approve":
            approve(session, mailer, token, now=now, actor=actor)
        elif purpose == "decline":
            decline(session, mailer, token, now=now)
        elif purpose in ("approve_booking", "decline_booking"):
            accounts.settle_request(session, use.booking.id, verb, actor, now=now)
        else:
            raise LinkProblem("invalid", "This link is for something else.", use.booking)
        role = use.link.actor_role
        invitation = next((i for i in invitations_of(session, use.booking) if i.role == role), None)
        return purpose, use.booking, _zone_for(session, use.booking, invitation)


async def _action_submit(request: Request, verb: str) -> Response:
    runtime = runtime_of(request)
    form = await request.form()
    token = str(form.get("t", ""))
    try:
        purpose, booking, zone = await run_in_threadpool(_act, runtime, token, verb)
    except LinkProblem as problem:
        return await run_in_threadpool(_problem_page, request, runtime, problem, token)
    except ServiceError as exc:
        refused = LinkProblem("moved", exc.message)
        return await run_in_threadpool(_problem_page, request, runtime, refused, token)
    context = {"purpose": purpose, "verb": verb, "booking": booking, "zone": zone}
    return templates.TemplateResponse(request, "action_done.html", context)


async def approve_page(request: Request) -> Response:
    return await _confirm_page(request, "approve")


async def decline_page(request: Request) -> Response:
    return await _confirm_page(request, "decline")


async def approve_submit(request: Request) -> Response:
    return await _action_submit(request, "approve")


async def decline_submit(request: Request) -> Response:
    return await _action_submit(request, "decline")


class ProposeBody(BaseModel):
    token: str = Field(min_length=10, max_length=1000)
    start: Instant
    end: Instant
    note: str | None = Field(default=None, max_length=2000)


class ProposalOut(BaseModel):
    id: str
    booking_id: str
    status: str
    start: datetime
    end: datetime
    expires_at: datetime


async def api_propose(request: Request) -> Response:
    runtime = runtime_of(request)
    body = await read_json(request, ProposeBody)
    if body.start.tzinfo is None or body.end.tzinfo is None:
        raise BadRequest("start and end need a UTC offset (RFC 3339)", code="naive_time")
    proposal = await run_in_threadpool(
        _propose,
        runtime,
        body.token,
        body.start.astimezone(UTC),
        body.end.astimezone(UTC),
        body.note,
    )
    out = ProposalOut(
        id=proposal.id,
        booking_id=proposal.booking_id,
        status=proposal.status,
        start=proposal.start_at,
        end=proposal.end_at,
        expires_at=proposal.expires_at,
    )
    return json_response(out.model_dump(mode="json"), status=201)


def routes() -> list[BaseRoute]:
    return [
        Route("/reschedule", reschedule_page, methods=["GET"]),
        Route("/reschedule", reschedule_submit, methods=["POST"]),
        Route("/approve", approve_page, methods=["GET"]),
        Route("/approve", approve_submit, methods=["POST"]),
        Route("/decline", decline_page, methods=["GET"]),
        Route("/decline", decline_submit, methods=["POST"]),
    ]


def api() -> list[BaseRoute]:
    doc = ApiDoc(
        summary="Propose a new time with a 'Request a new time' link token",
        request=ProposeBody,
        response=ProposalOut,
        status=201,
        admin=False,
        errors=(400, 404, 409, 410),
    )
    return [api_route("/reschedule/propose", api_propose, "POST", doc)]
