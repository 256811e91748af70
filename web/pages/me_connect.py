"""Connect your calendar app (/me/connect): CalDAV address and user name, app passwords,
and the private ICS feed URL.

Secrets are shown exactly once, on the answer to the POST that made them (never
through a redirect or a URL), because only their hashes are stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.services import accounts, app_passwords, feeds
from core.services.errors import ServiceError
from web.pages.me_common import Ctx, back, provider_page, render

NOTICES = {"revoked": "App password revoked: apps using it are signed out."}
MAX_LABEL = 100


async def _page(
    ctx: Ctx,
    *,
    new_password: app_passwords.IssuedPassword | None = None,
    feed_url: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    me = ctx.me

    def work(session: Session, now: datetime) -> dict[str, Any]:
        passwords = app_passwords.list_passwords(session, me.provider_id)
        return {
            "passwords": [p for p in passwords if p.revoked_at is None],
            "feed": accounts.has_feed(session, me.provider_id),
        }

    context = await ctx.run(work)
    base = ctx.runtime.settings.effective_base_url
    context.update(
        dav_url=f"{base}/dav/",
        base_url=base,
        new_password=new_password,
        feed_url=feed_url,
        errors=errors or {},
        notice=NOTICES.get(ctx.request.query_params.get("done", "")),
    )
    return render(ctx.request, "me/connect.html", context, status=status, me=me)


async def _show(ctx: Ctx) -> Response:
    return await _page(ctx)


async def _new_password(ctx: Ctx) -> Response:
    me = ctx.me
    label = ctx.form.get("label", "").strip()
    if len(label) > MAX_LABEL:
        return await _page(ctx, errors={"label": f"At most {MAX_LABEL} characters."}, status=400)
    issued = await ctx.run(
        lambda s, now: app_passwords.issue(s, me.provider_id, now, label or None)
    )
    return await _page(ctx, new_password=issued)


async def _revoke_password(ctx: Ctx) -> Response:
    me, password_id = ctx.me, ctx.request.path_params["password_id"]
    await ctx.run(lambda s, now: app_passwords.revoke(s, me.provider_id, password_id, now))
    return back("/me/connect", "revoked")


async def _new_feed(ctx: Ctx) -> Response:
    me = ctx.me
    include_holds = ctx.form.get("include_holds") == "on"
    try:
        token = await ctx.run(
            lambda s, now: feeds.issue_token(
                s, me.provider_id, now, include_holds=include_holds, fmt="standard"
            )
        )
    except ServiceError as error:
        return await _page(ctx, errors={"feed": error.message}, status=400)
    url = f"{ctx.runtime.settings.effective_base_url}/feeds/{token}.ics"
    return await _page(ctx, feed_url=url)


def routes() -> list[BaseRoute]:
    return [
        Route("/me/connect", provider_page(_show), methods=["GET"]),
        Route("/me/connect/app-passwords", provider_page(_new_password), methods=["POST"]),
        Route(
            "/me/connect/app-passwords/{password_id}/revoke",
            provider_page(_revoke_password),
            methods=["POST"],
        ),
        Route("/me/connect/feed", provider_page(_new_feed), methods=["POST"]),
    ]
