"""The provider site's front door: /me sign-in by emailed link, home, sessions, sign-out.

Opening a sign-in link changes nothing (mail scanners open links): its page shows a
button, and only that POST uses the link and sets the session cookie. Every address gets
the same answer, whether a provider has it or not.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

import web.pages.me_availability as me_availability
import web.pages.me_bookings as me_bookings
import web.pages.me_calendars as me_calendars
import web.pages.me_connect as me_connect
import web.pages.me_types as me_types
from core.formatting import DEFAULT_LOCALE, LANGUAGE_NAMES
from core.services import accounts, availability, providers
from core.services.freshness import instant_book_allowed
from web.i18n import COOKIE as LANG_COOKIE
from web.pages.me_common import (
    COOKIE,
    COOKIE_PATH,
    Ctx,
    back,
    current_me,
    forbidden,
    message_page,
    pre_token_ok,
    provider_page,
    render,
)
from web.pages.sign_in import SignIn
from web.words import N_


async def me_home(request: Request) -> Response:
    me = await current_me(request)
    if me is None:
        expired = request.query_params.get("expired") == "1"
        return render(request, "me/sign_in.html", {"expired": expired, "errors": {}, "email": ""})
    return await provider_page(_home)(request)


async def _home(ctx: Ctx) -> Response:
    me = ctx.me
    stale = timedelta(minutes=ctx.runtime.settings.source_stale_minutes)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        upcoming = accounts.list_bookings(session, me.provider_id, now=now, past=False, limit=200)
        allowed, reason = instant_book_allowed(session, me.provider_id, now, stale_after=stale)
        provider = providers.get_provider(session, me.provider_id)
        policy = availability.load_policy(session, provider)
        base = ctx.runtime.settings.effective_base_url
        return {
            "booking_url": providers.booking_url(session, provider, base),
            "requested": [b for b in upcoming if b.status == "requested"],
            "next": [b for b in upcoming if b.status == "confirmed"][:5],
            "paused": None if allowed else reason,
            "has_hours": bool(policy.weekly),  # without them the booking page offers nothing
        }

    context = await ctx.run(work)
    context["languages"] = LANGUAGE_NAMES
    context["my_locale"] = me.locale or DEFAULT_LOCALE
    if ctx.request.query_params.get("done") == "language":
        context["notice"] = N_("Saved: your pages and mails use this language.")
    return render(ctx.request, "me/home.html", context, me=me)


async def _language(ctx: Ctx) -> Response:
    """The provider's language: their /me pages and every mail Parley sends them."""
    me, chosen = ctx.me, ctx.form.get("locale", "")
    if chosen not in LANGUAGE_NAMES:
        return back("/me")

    def work(session: Session, now: datetime) -> None:
        provider = providers.get_provider(session, me.provider_id)
        providers.update_provider(session, provider, now=now, locale=chosen)

    await ctx.run(work)
    response = back("/me", "language")
    response.delete_cookie(LANG_COOKIE, path="/")  # the choice made here wins from now on
    return response


SIGN_IN = SignIn(
    home="/me", folder="me", cookie=COOKIE, cookie_path=COOKIE_PATH, render=render,
    message=message_page, pre_ok=pre_token_ok, refused=forbidden,
    request_link=lambda s, mailer, address, now, ttl: accounts.request_sign_in(
        s, mailer, address, now=now, ttl=ttl
    ),
    check_link=lambda s, secret, token, now: accounts.check_sign_in_link(
        s, secret, token, now=now
    ).name,
    redeem=lambda s, secret, token, now, lifetime: accounts.redeem_sign_in(
        s, secret, token, now=now, lifetime=lifetime
    ),
)  # fmt: skip


async def _sign_out(ctx: Ctx) -> Response:
    cookie = ctx.request.cookies.get(COOKIE, "")
    await ctx.run(lambda s, now: accounts.sign_out(s, cookie, now=now))
    response = RedirectResponse("/me?signed_out=1", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


async def _sessions(ctx: Ctx) -> Response:
    me = ctx.me
    rows = await ctx.run(lambda s, now: accounts.list_sessions(s, me.provider_id, now=now))
    done = ctx.request.query_params.get("done") == "revoked"
    context = {"sessions": rows, "current": me.viewer.session_id, "revoked": done}
    return render(ctx.request, "me/sessions.html", context, me=me)


async def _revoke(ctx: Ctx) -> Response:
    me, session_id = ctx.me, ctx.request.path_params["session_id"]
    await ctx.run(lambda s, now: accounts.revoke_session(s, me.provider_id, session_id, now=now))
    if session_id == me.viewer.session_id:
        response = RedirectResponse("/me?signed_out=1", status_code=303)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response
    return back("/me/sessions", "revoked")


def routes() -> list[BaseRoute]:
    return [
        Route("/me", me_home, methods=["GET"]),
        *SIGN_IN.routes(),
        Route("/me/sign-out", provider_page(_sign_out), methods=["POST"]),
        Route("/me/language", provider_page(_language), methods=["POST"]),
        Route("/me/sessions", provider_page(_sessions), methods=["GET"]),
        Route("/me/sessions/{session_id}/revoke", provider_page(_revoke), methods=["POST"]),
        *me_availability.routes(),
        *me_calendars.routes(),
        *me_types.routes(),
        *me_bookings.routes(),
        *me_connect.routes(),
    ]
