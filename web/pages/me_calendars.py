"""Calendar connections (/me/calendars): external calendars that block the provider's time.

Add an ICS URL or a CalDAV calendar (its password is sealed by the sources service),
see each source's state in plain words, sync now, accept a held mass removal, remove.
The freshness gate's verdict ("instant book paused: …") is shown at the top.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from caldav_bridge.importers import check_url, sync_now
from core.services import accounts, availability, sources
from core.services.errors import InvalidSource, SourceError, SyncThrottled
from core.services.freshness import format_age, instant_book_allowed, source_label
from web.pages.me_common import Ctx, back, provider_page, render
from web.words import N_

NOTICES = {
    "added": N_("Calendar added."),
    "synced": N_("Synced."),
    "removed": N_("Calendar removed; its busy time no longer blocks you."),
    "accepted": N_("Removals accepted and applied."),
}
_PLAIN = [
    (r"HTTP 40[13]", "The calendar server refused access: check the link or the password."),
    (r"HTTP 404|HTTP 410", "The calendar was not found at this address any more."),
    (r"HTTP 429", "The calendar server asked Parley to slow down; it will try again."),
    (r"HTTP 5\d\d", "The calendar server had a problem; Parley will try again."),
    (r"timed out", "The calendar server did not answer in time."),
    (r"larger than|bytes, more than", "The calendar is too large to import."),
    (r"ConnectError|Name or service|nodename|getaddrinfo", "The calendar server is unreachable."),
    (r"(?i)refused|private", "This address may not be imported (private or local network)."),
    (r"(?i)not a calendar|VCALENDAR|parse|feed", "The address did not return a calendar (.ics)."),
]


@dataclass(frozen=True)
class SourceRow:
    """A source as this page shows it."""

    view: sources.SourceView
    label: str
    plain_error: str | None
    age: str | None


def plain_words(error: str | None) -> str | None:
    """A sentence a provider understands for a sync error; the raw text stays beside it."""
    if not error:
        return None
    for pattern, words in _PLAIN:
        if re.search(pattern, error):
            return words
    return "The last sync failed."


def _rows(session: Session, provider_id: str, now: datetime) -> list[SourceRow]:
    rows = []
    for view in sources.list_sources(session, provider_id):
        age = format_age(now - view.last_success_at) if view.last_success_at else None
        label = source_label(view.name, view.platform, view.url)
        rows.append(SourceRow(view, label, plain_words(view.last_error), age))
    return rows


async def _page(
    ctx: Ctx, *, form: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> Response:
    me, stale = ctx.me, timedelta(minutes=ctx.runtime.settings.source_stale_minutes)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        allowed, reason = instant_book_allowed(session, me.provider_id, now, stale_after=stale)
        policy = availability.get_availability(session, me.provider_id)
        return {
            "sources": _rows(session, me.provider_id, now),
            "paused": None if allowed or not policy.instant_book else reason,
            "now": now,
        }

    context = await ctx.run(work)
    context.update(
        form=form or {},
        errors=errors or {},
        notice=NOTICES.get(ctx.request.query_params.get("done", "")),
        sync_error=ctx.request.query_params.get("sync_error"),
    )
    status = 400 if errors else 200
    return render(ctx.request, "me/calendars.html", context, status=status, me=me)


async def _list(ctx: Ctx) -> Response:
    return await _page(ctx)


def _new_source(form: dict[str, str]) -> sources.NewSource:
    kind = form.get("kind", "ics")
    if kind not in sources.KINDS:
        raise InvalidSource("Choose an ICS link or a CalDAV calendar.")
    return sources.NewSource(
        url=form.get("url", "").strip()[: sources.MAX_URL_LENGTH + 1],
        kind=kind,
        name=form.get("name", "").strip()[:200] or None,
        username=form.get("username", "").strip()[:320] or None,
        password=form.get("password", "")[:1000] or None,
    )


async def _add(ctx: Ctx) -> Response:
    me, runtime = ctx.me, ctx.runtime
    shown = {k: v for k, v in ctx.form.items() if k != "password"}
    try:
        new = _new_source(ctx.form)
        if not new.url:
            raise InvalidSource("Paste the calendar's address (https://…).")

        def work(session: Session, now: datetime) -> str:
            return sources.create_source(
                session, me.provider_id, new, now=now, secret_key=runtime.secrets.secret_key,
                max_sources=runtime.settings.max_sources_per_provider,
                check_url=check_url(runtime.settings),
            )  # fmt: skip

        source_id = await ctx.run(work)
    except SourceError as error:
        return await _page(ctx, form=shown, errors={"add": error.message})
    # Sync at once so the page shows at once whether the address works (throttled: the
    # poller takes it up within a minute).
    with suppress(SyncThrottled):
        await run_in_threadpool(sync_now, runtime, source_id)
    return back("/me/calendars", "added")


async def _owned(ctx: Ctx) -> str:
    me, source_id = ctx.me, str(ctx.request.path_params["source_id"])
    await ctx.run(lambda s, _: accounts.owned_source(s, me.provider_id, source_id))
    return source_id


async def _sync_now(ctx: Ctx) -> Response:
    source_id = await _owned(ctx)
    try:
        await run_in_threadpool(sync_now, ctx.runtime, source_id)
    except (SourceError, SyncThrottled) as error:
        return await _page(ctx, errors={"sync": error.message})
    return back("/me/calendars", "synced")


async def _accept_removal(ctx: Ctx) -> Response:
    source_id = await _owned(ctx)
    try:
        await run_in_threadpool(partial(sync_now, ctx.runtime, source_id, confirm=True))
    except (SourceError, SyncThrottled) as error:
        return await _page(ctx, errors={"sync": error.message})
    return back("/me/calendars", "accepted")


async def _remove(ctx: Ctx) -> Response:
    source_id = await _owned(ctx)
    await ctx.run(lambda s, _: sources.delete_source(s, source_id))
    return back("/me/calendars", "removed")


def routes() -> list[BaseRoute]:
    return [
        Route("/me/calendars", provider_page(_list), methods=["GET"]),
        Route("/me/calendars", provider_page(_add), methods=["POST"]),
        Route("/me/calendars/{source_id}/sync", provider_page(_sync_now), methods=["POST"]),
        Route(
            "/me/calendars/{source_id}/accept-removal",
            provider_page(_accept_removal),
            methods=["POST"],
        ),
        Route("/me/calendars/{source_id}/remove", provider_page(_remove), methods=["POST"]),
    ]
