"""Connect your calendar app (/me/connect): CalDAV address and user name, app passwords,
and the private ICS feed URL.

Secrets are shown exactly once, because only their hashes are stored. The POST that
makes one answers 303 to this page, carrying the secret in a sealed cookie (never in a URL)
that lives two minutes, opens only for the same provider and is cleared by the page that
shows it: a reload shows the page without the secret and makes no second one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.crypto import seal, unseal
from core.errors import CannotDecrypt
from core.services import accounts, app_passwords, feeds
from core.services.errors import ServiceError
from web.pages.me_common import Ctx, back, provider_page, render, secure_cookies
from web.words import N_

NOTICES = {"revoked": N_("App password revoked: apps using it are signed out.")}
MAX_LABEL = 100
PATH = "/me/connect"
REVEAL_COOKIE = "parley_reveal"
REVEAL_PURPOSE = b"parley:reveal-once:v1"
REVEAL_SECONDS = 120


def _reveal(ctx: Ctx, **shown: str) -> RedirectResponse:
    """303 to the page, which shows ``shown`` once (see the module's docstring)."""
    payload = json.dumps({"provider": ctx.me.provider_id, **shown})
    sealed = seal(ctx.runtime.secrets.secret_key, payload, purpose=REVEAL_PURPOSE)
    response = RedirectResponse(PATH, status_code=303)
    response.set_cookie(
        REVEAL_COOKIE, sealed.decode(), max_age=REVEAL_SECONDS, path=PATH, httponly=True,
        samesite="strict", secure=secure_cookies(ctx.runtime),
    )  # fmt: skip
    return response


def _revealed(ctx: Ctx) -> dict[str, str]:
    """What the last POST asked this page to show once, if it is this provider's and fresh."""
    sealed = ctx.request.cookies.get(REVEAL_COOKIE, "")
    if not sealed:
        return {}
    key = ctx.runtime.secrets.secret_key
    try:
        opened = unseal(key, sealed.encode(), purpose=REVEAL_PURPOSE, ttl=REVEAL_SECONDS)
        payload = json.loads(opened)
    except (CannotDecrypt, ValueError):
        return {}
    if not isinstance(payload, dict) or payload.pop("provider", None) != ctx.me.provider_id:
        return {}
    return {str(k): str(v) for k, v in payload.items()}


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
    shown = _revealed(ctx)
    issued = None
    if "password" in shown:
        issued = app_passwords.IssuedPassword(
            shown.get("password_id", ""), shown.get("username", ""), shown["password"]
        )
    response = await _page(ctx, new_password=issued, feed_url=shown.get("feed_url"))
    if REVEAL_COOKIE in ctx.request.cookies:
        response.delete_cookie(REVEAL_COOKIE, path=PATH, httponly=True, samesite="strict")
    return response


async def _new_password(ctx: Ctx) -> Response:
    me = ctx.me
    label = ctx.form.get("label", "").strip()
    if len(label) > MAX_LABEL:
        return await _page(ctx, errors={"label": f"At most {MAX_LABEL} characters."}, status=400)
    issued = await ctx.run(
        lambda s, now: app_passwords.issue(s, me.provider_id, now, label or None)
    )
    return _reveal(ctx, password_id=issued.id, username=issued.username, password=issued.password)


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
    return _reveal(ctx, feed_url=f"{ctx.runtime.settings.effective_base_url}/feeds/{token}.ics")


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
