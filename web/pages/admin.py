"""The operator console's front door: /admin sign-in by emailed link, the overview, sign-out.

Exactly as /me: opening a sign-in link changes nothing (its page shows a button, and only
that POST uses the link and sets the cookie), every address gets the same answer, and
the same per-IP and per-address budgets apply. An operator signs in to their tenant.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

import web.pages.admin_bookings as admin_bookings
import web.pages.admin_calendars as admin_calendars
import web.pages.admin_mail as admin_mail
import web.pages.admin_units as admin_units
from core.services import accounts, console, operators, stats
from web.pages.admin_common import (
    COOKIE,
    COOKIE_PATH,
    Ctx,
    console_page,
    current_op,
    form_expired,
    message_page,
    pre_ok,
    render,
)
from web.pages.sign_in import SignIn


async def admin_home(request: Request) -> Response:
    if await current_op(request) is None:
        expired = request.query_params.get("expired") == "1"
        context = {"expired": expired, "errors": {}, "email": ""}
        return render(request, "admin/sign_in.html", context)
    return await console_page(_overview)(request)


KPI_PERIODS = {"1": "the last day", "7": "the last 7 days", "30": "the last 30 days",
               "90": "the last 90 days"}  # fmt: skip


async def _overview(ctx: Ctx) -> Response:
    stale = timedelta(minutes=ctx.runtime.settings.source_stale_minutes)
    caller = ctx.op.caller
    days = ctx.request.query_params.get("days", "7")
    days = days if days in KPI_PERIODS else "7"

    def work(session: Session, now: datetime) -> tuple[Any, stats.Stats]:
        period = stats.Period(now - timedelta(days=int(days)), now)
        scope = stats.Scope(tenant_id=caller.tenant_id)
        return console.overview(session, caller, now, stale), stats.compute(
            session, period, now, scope
        )

    figures, kpis = await ctx.run(work)
    context = {"o": figures, "k": kpis, "days": days, "periods": KPI_PERIODS}
    return render(ctx.request, "admin/overview.html", context, op=ctx.op)


SIGN_IN = SignIn(
    home="/admin", folder="admin", cookie=COOKIE, cookie_path=COOKIE_PATH, render=render,
    message=message_page, pre_ok=pre_ok, refused=form_expired,
    request_link=lambda s, mailer, address, now, ttl: operators.request_sign_in(
        s, mailer, address, now=now, ttl=ttl
    ),
    check_link=lambda s, secret, token, now: operators.check_sign_in_link(
        s, secret, token, now=now
    ),
    redeem=lambda s, secret, token, now, lifetime: operators.redeem_sign_in(
        s, secret, token, now=now, lifetime=lifetime
    ),
)  # fmt: skip


async def _sign_out(ctx: Ctx) -> Response:
    cookie = ctx.request.cookies.get(COOKIE, "")
    await ctx.run(lambda s, now: accounts.sign_out(s, cookie, now=now))
    response = RedirectResponse("/admin?signed_out=1", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/admin", admin_home, methods=["GET"]),
        *SIGN_IN.routes(),
        Route("/admin/sign-out", console_page(_sign_out), methods=["POST"]),
        *admin_mail.routes(),
        *admin_bookings.routes(),
        *admin_calendars.routes(),
        *admin_units.routes(),
    ]
