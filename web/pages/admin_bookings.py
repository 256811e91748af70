"""The console's bookings (search by address or UID, each with its whole story), its
providers and units, and the audit log; every list paged by the list services' cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.services import console, lists, operators
from core.services.bookings import view_bookings
from web.pages.admin_common import Ctx, console_page, render, subject_of


def _filter(ctx: Ctx, query: str, now: datetime) -> lists.BookingFilter:
    params = ctx.request.query_params
    status = params.get("status") or None
    today = console.day_start(now) if params.get("day") == "today" else None
    return lists.BookingFilter(
        status=status if status in lists.BOOKING_STATUSES else None,
        email=query if "@" in query else None,
        start_from=today,
        start_to=today + console.DAY if today else None,
    )


async def _bookings(ctx: Ctx) -> Response:
    caller, page = ctx.op.caller, ctx.page()
    query = ctx.request.query_params.get("q", "").strip()[:320]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        by_uid = console.booking_by_uid(session, caller, query) if query else None
        if by_uid is not None:
            return {"bookings": view_bookings(session, [by_uid]), "next_cursor": None}
        if query and "@" not in query:
            return {"bookings": [], "next_cursor": None}
        found = lists.list_bookings(session, caller, _filter(ctx, query, now), page)
        return {"bookings": found.items, "next_cursor": found.next_cursor}

    context = await ctx.run(work)
    params = ctx.request.query_params
    context.update(q=query, status=params.get("status", ""), day=params.get("day", ""))
    return render(ctx.request, "admin/bookings.html", context, op=ctx.op)


async def _booking(ctx: Ctx) -> Response:
    caller, booking_id = ctx.op.caller, ctx.request.path_params["booking_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        story = console.booking_story(session, caller, booking_id)
        mails = [(row, subject_of(row)) for row in story.outbound]
        return {"s": story, "b": story.view.booking, "mails": mails,
                "actors": operators.names(session, caller.tenant_id)}  # fmt: skip

    context = await ctx.run(work)
    return render(ctx.request, "admin/booking.html", context, op=ctx.op)


async def _providers(ctx: Ctx) -> Response:
    caller, page = ctx.op.caller, ctx.page()

    def work(session: Session, now: datetime) -> dict[str, Any]:
        found = lists.list_providers(session, caller, page)
        return {"providers": found.items, "next_cursor": found.next_cursor}

    context = await ctx.run(work)
    return render(ctx.request, "admin/providers.html", context, op=ctx.op)


async def _audit(ctx: Ctx) -> Response:
    caller, page = ctx.op.caller, ctx.page()
    booking_id = ctx.request.query_params.get("booking_id", "")[:40] or None

    def work(session: Session, now: datetime) -> dict[str, Any]:
        found = lists.list_audit(session, caller, booking_id, page)
        return {"entries": found.items, "next_cursor": found.next_cursor,
                "actors": operators.names(session, caller.tenant_id)}  # fmt: skip

    context = await ctx.run(work)
    context["booking_id"] = booking_id or ""
    return render(ctx.request, "admin/audit.html", context, op=ctx.op)


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/bookings", console_page(_bookings), methods=["GET"]),
        Route("/admin/bookings/{booking_id}", console_page(_booking), methods=["GET"]),
        Route("/admin/providers", console_page(_providers), methods=["GET"]),
        Route("/admin/audit", console_page(_audit), methods=["GET"]),
    ]
