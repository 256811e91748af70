"""Bookings (/me/bookings): upcoming and past, each with its attendees' answers and any
pending proposal; approve or decline requests-to-book and proposals, cancel.

Deciding here runs the same services as the emailed links (see ``accounts.decide_request``
and ``accounts.decide_proposal``), so a decision made in one place ends the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.services import accounts
from core.services import bookings as booking_service
from core.services.errors import InvalidState, LinkProblem, ServiceError
from core.services.notify import Mailer
from web.pages.me_common import Ctx, back, provider_page, render
from web.words import N_

NOTICES = {
    "approved": N_("Approved: both of you get a calendar invitation."),
    "declined": N_("Declined: the time is free again."),
    "cancelled": N_("Cancelled: both of you are told."),
    "proposal-approved": N_("The new time is applied."),
    "proposal-declined": N_("The proposal is declined; the booking keeps its time."),
}


async def _list(ctx: Ctx) -> Response:
    me = ctx.me
    past = ctx.request.query_params.get("show") == "past"

    def work(session: Session, now: datetime) -> dict[str, Any]:
        rows = accounts.list_bookings(session, me.provider_id, now=now, past=past)
        views = [booking_service.view_booking(session, b) for b in rows]
        pending = accounts.pending_proposals(session, [b.id for b in rows])
        return {"views": views, "pending": pending, "past": past}

    context = await ctx.run(work)
    context["notice"] = NOTICES.get(ctx.request.query_params.get("done", ""))
    return render(ctx.request, "me/bookings.html", context, me=me)


async def _detail(ctx: Ctx, *, error: str | None = None, status: int = 200) -> Response:
    me, booking_id = ctx.me, ctx.request.path_params["booking_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        booking = accounts.owned_booking(session, me.provider_id, booking_id)
        proposals = accounts.pending_proposals(session, [booking.id]).get(booking.id, [])
        view = booking_service.view_booking(session, booking)
        return {"view": view, "proposals": proposals, "now": now}

    context = await ctx.run(work)
    context["notice"] = NOTICES.get(ctx.request.query_params.get("done", ""))
    context["error"] = error
    return render(ctx.request, "me/booking.html", context, status=status, me=me)


async def _show(ctx: Ctx) -> Response:
    return await _detail(ctx)


async def _decide(ctx: Ctx) -> Response:
    me, booking_id = ctx.me, ctx.request.path_params["booking_id"]
    verb = ctx.request.path_params["verb"]
    actor = booking_service.actor_of(ctx.runtime, me.email)

    def work(session: Session, now: datetime) -> None:
        if verb == "cancel":
            accounts.owned_booking(session, me.provider_id, booking_id)
            reason = ctx.form.get("reason", "").strip()[:500] or "cancelled by the provider"
            booking_service.cancel_booking(session, booking_id, actor, now, reason=reason)
        else:
            accounts.decide_request(session, me.provider_id, booking_id, verb, actor, now=now)

    try:
        await ctx.run(work)
    except ServiceError as error:
        if error.code == "not_found":
            raise
        return await _detail(ctx, error=_why(error), status=409)
    done = {"approve": "approved", "decline": "declined", "cancel": "cancelled"}[verb]
    return back(f"/me/bookings/{booking_id}", done)


def _why(error: ServiceError) -> str:
    if isinstance(error, InvalidState):
        return f"This booking is {error.status} now, so it cannot be {error.action}d."
    return error.message


async def _decide_proposal(ctx: Ctx) -> Response:
    me, booking_id = ctx.me, ctx.request.path_params["booking_id"]
    proposal_id, verb = ctx.request.path_params["proposal_id"], ctx.request.path_params["verb"]
    mailer = Mailer.from_runtime(ctx.runtime)
    actor = booking_service.actor_of(ctx.runtime, me.email)

    def work(session: Session, now: datetime) -> None:
        accounts.owned_booking(session, me.provider_id, booking_id)
        accounts.decide_proposal(session, mailer, me.provider_id, proposal_id, verb, actor, now=now)

    try:
        await ctx.run(work)
    except LinkProblem as problem:
        return await _detail(ctx, error=problem.message.replace("This link", "This"), status=409)
    except ServiceError as error:
        if error.code == "not_found":
            raise
        return await _detail(ctx, error=_why(error), status=409)
    return back(f"/me/bookings/{booking_id}", f"proposal-{verb}d")


def routes() -> list[BaseRoute]:
    return [
        Route("/me/bookings", provider_page(_list), methods=["GET"]),
        Route("/me/bookings/{booking_id}", provider_page(_show), methods=["GET"]),
        Route(
            "/me/bookings/{booking_id}/{verb:str}",
            provider_page(_decide_guarded),
            methods=["POST"],
        ),
        Route(
            "/me/bookings/{booking_id}/proposals/{proposal_id}/{verb:str}",
            provider_page(_decide_proposal_guarded),
            methods=["POST"],
        ),
    ]


async def _decide_guarded(ctx: Ctx) -> Response:
    if ctx.request.path_params["verb"] not in ("approve", "decline", "cancel"):
        return await _detail(ctx, error="Unknown action.", status=404)
    return await _decide(ctx)


async def _decide_proposal_guarded(ctx: Ctx) -> Response:
    if ctx.request.path_params["verb"] not in ("approve", "decline"):
        return await _detail(ctx, error="Unknown action.", status=404)
    return await _decide_proposal(ctx)
