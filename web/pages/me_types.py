"""Meeting types on /me (/me/types): what the provider offers guests, each at its own page.

A type has a title, a slug (its address: /book/{provider}/{type}), one or more lengths, an
optional place or video link and description, and its own buffers and lead time; an
inactive type keeps its address but takes no bookings. The same service and checks as
``/api/v1/providers/{id}/meeting-types``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.services import meeting_types, providers
from core.services.errors import InvalidInput, SlugTaken
from web.pages.me_common import Ctx, back, provider_page, render
from web.words import N_

NOTICES = {
    "added": N_("Meeting type added."),
    "saved": N_("Meeting type saved."),
    "removed": N_("Meeting type removed; bookings made with it keep their title and place."),
}
_NUMBERS = ("buffer_before_minutes", "buffer_after_minutes", "lead_time_hours")


def _fields(form: dict[str, str]) -> meeting_types.TypeFields:
    """The form as a meeting type; InvalidInput for lengths or numbers that are not."""
    try:
        durations = tuple(
            int(part) for part in form.get("durations", "").replace(" ", "").split(",") if part
        )
        numbers = {
            name: int(form[name]) if form.get(name, "").strip() else None for name in _NUMBERS
        }
    except ValueError:
        raise InvalidInput("Lengths, buffers and lead time are whole numbers.") from None
    return meeting_types.TypeFields(
        slug=form.get("slug", "")[:100], title=form.get("title", "")[:300], durations=durations,
        description=form.get("description", "")[:6000] or None,
        location=form.get("location", "")[:600] or None, active=form.get("active") == "on",
        **numbers,
    )  # fmt: skip


async def _page(
    ctx: Ctx,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    me = ctx.me
    base = ctx.runtime.settings.effective_base_url

    def work(session: Session, now: datetime) -> dict[str, Any]:
        provider = providers.get_provider(session, me.provider_id)
        page = providers.booking_url(session, provider, base)
        rows = meeting_types.list_types(session, me.provider_id)
        return {
            "types": [
                {
                    "row": row,
                    "lengths": meeting_types.durations_of(row),
                    "url": f"{page}/{row.slug}",
                }
                for row in rows
            ],
            "page_url": page,
        }

    context = await ctx.run(work)
    context.update(
        form=form or {"active": "on"}, errors=errors or {},
        notice=NOTICES.get(ctx.request.query_params.get("done", "")),
    )  # fmt: skip
    return render(ctx.request, "me/types.html", context, status=status, me=me)


async def _list(ctx: Ctx) -> Response:
    return await _page(ctx)


async def _add(ctx: Ctx) -> Response:
    me = ctx.me
    try:
        fields = _fields(ctx.form)

        def work(session: Session, now: datetime) -> None:
            provider = providers.get_provider(session, me.provider_id)
            caller = meeting_types.provider_caller(provider)
            meeting_types.create_type(session, caller, provider.id, fields, now)

        await ctx.run(work)
    except (InvalidInput, SlugTaken) as error:
        return await _page(ctx, form=ctx.form, errors={"new": str(error)}, status=400)
    return back("/me/types", "added")


async def _save(ctx: Ctx) -> Response:
    me, type_id = ctx.me, str(ctx.request.path_params["type_id"])
    try:
        fields = _fields(ctx.form)
        changes = dataclasses.asdict(fields)

        def work(session: Session, now: datetime) -> None:
            provider = providers.get_provider(session, me.provider_id)
            caller = meeting_types.provider_caller(provider)
            meeting_types.update_type(session, caller, provider.id, type_id, changes, now)

        await ctx.run(work)
    except InvalidInput as error:
        return await _page(ctx, errors={type_id: str(error)}, status=400)
    except SlugTaken as error:
        return await _page(ctx, errors={type_id: str(error)}, status=409)
    return back("/me/types", "saved")


async def _remove(ctx: Ctx) -> Response:
    me, type_id = ctx.me, str(ctx.request.path_params["type_id"])

    def work(session: Session, now: datetime) -> None:
        provider = providers.get_provider(session, me.provider_id)
        caller = meeting_types.provider_caller(provider)
        meeting_types.delete_type(session, caller, provider.id, type_id, now)

    await ctx.run(work)
    return back("/me/types", "removed")


def routes() -> list[BaseRoute]:
    return [
        Route("/me/types", provider_page(_list), methods=["GET"]),
        Route("/me/types", provider_page(_add), methods=["POST"]),
        Route("/me/types/{type_id}", provider_page(_save), methods=["POST"]),
        Route("/me/types/{type_id}/remove", provider_page(_remove), methods=["POST"]),
    ]
