"""The console's calendars (external sources with their sync health and "sync now", staff
and up) and the conflicts that need review ("keep this one / keep that one / both are
real", managers and owners)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from caldav_bridge.importers import sync_now
from core.services import conflicts, console, lists
from core.services.access import Grant, visible_source
from core.services.errors import AlreadyResolved, InvalidInput, NotFoundError
from core.services.freshness import format_age, source_label
from web.pages.admin_common import Ctx, back, console_page, render
from web.pages.me_calendars import plain_words

NOTICES = {
    "synced": "Synced.",
    "sync_failed": "The sync failed; the calendar's last error says why.",
    "resolved": "Conflict resolved.",
    "already": "Someone resolved this conflict already.",
}


def _health(view: Any, now: datetime, stale: timedelta) -> dict[str, Any]:
    """A source as the calendars page shows it: label, age, stale or not, error in words."""
    age = now - view.last_success_at if view.last_success_at else None
    return {
        "v": view,
        "label": source_label(view.name, view.platform, view.url),
        "age": format_age(age) if age is not None else None,
        "stale": age is None or age > stale or view.status in ("error", "held"),
        "plain_error": plain_words(view.last_error),
    }


async def _calendars(ctx: Ctx) -> Response:
    caller, page = ctx.op.caller, ctx.page()
    stale = timedelta(minutes=ctx.runtime.settings.source_stale_minutes)
    only_stale = ctx.request.query_params.get("stale") == "1"
    status = ctx.request.query_params.get("status") or None
    status = status if status in lists.SOURCE_STATUSES else None

    def work(session: Session, now: datetime) -> dict[str, Any]:
        if only_stale:
            views, cursor = console.stale_sources(session, caller, now, stale), None
        else:
            found = lists.list_sources(session, caller, status, page)
            views, cursor = found.items, found.next_cursor
        return {"sources": [_health(v, now, stale) for v in views], "next_cursor": cursor}

    context = await ctx.run(work)
    context.update(
        only_stale=only_stale, status=status or "", statuses=lists.SOURCE_STATUSES,
        notice=NOTICES.get(ctx.request.query_params.get("done", "")),
    )  # fmt: skip
    return render(ctx.request, "admin/calendars.html", context, op=ctx.op)


async def _sync(ctx: Ctx) -> Response:
    caller, source_id = ctx.op.caller, ctx.request.path_params["source_id"]
    await ctx.run(lambda s, now: visible_source(s, caller, source_id))
    outcome = await run_in_threadpool(sync_now, ctx.runtime, source_id)
    return back("/admin/calendars", "sync_failed" if outcome.status == "error" else "synced")


async def _conflicts(ctx: Ctx) -> Response:
    caller, page = ctx.op.caller, ctx.page()
    status = "resolved" if ctx.request.query_params.get("status") == "resolved" else "open"

    def work(session: Session, now: datetime) -> dict[str, Any]:
        found = lists.list_conflicts(session, caller, status, page)
        return {"conflicts": found.items, "next_cursor": found.next_cursor}

    context = await ctx.run(work)
    context.update(status=status, notice=NOTICES.get(ctx.request.query_params.get("done", "")))
    return render(ctx.request, "admin/conflicts.html", context, op=ctx.op)


async def _resolve(ctx: Ctx) -> Response:
    caller, raw = ctx.op.caller, ctx.request.path_params["conflict_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFoundError("conflict", raw)
    keep = ctx.form.get("keep", "")
    try:
        await ctx.run(lambda s, now: conflicts.resolve(s, caller, int(raw), keep, now))
    except AlreadyResolved:
        return back("/admin/conflicts", "already")
    except InvalidInput:
        return back("/admin/conflicts")
    return back("/admin/conflicts", "resolved")


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/calendars", console_page(_calendars), methods=["GET"]),
        Route(
            "/admin/calendars/{source_id}/sync",
            console_page(_sync, needs=Grant.OPERATE),
            methods=["POST"],
        ),
        Route("/admin/conflicts", console_page(_conflicts), methods=["GET"]),
        Route(
            "/admin/conflicts/{conflict_id}/resolve",
            console_page(_resolve, needs=Grant.WRITE),
            methods=["POST"],
        ),
    ]
