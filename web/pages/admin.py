"""The operator console's front door: /admin sign-in by emailed link, the overview, sign-out.

Exactly as /me: opening a sign-in link changes nothing (its page shows a button, and only
that POST uses the link and sets the cookie), every address gets the same answer, and
the same per-IP and per-address budgets apply. An operator signs in to their tenant.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

import web.pages.admin_bookings as admin_bookings
import web.pages.admin_calendars as admin_calendars
import web.pages.admin_mail as admin_mail
from core.runtime import Runtime
from core.services import accounts, console, operators, stats
from core.services.errors import InvalidInput, RateLimited, SignInProblem
from core.services.notify import Mailer
from core.services.outbox import deliver_soon
from core.services.providers import check_email
from web.errors import link_rejected
from web.http import runtime_of
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
    transact,
)
from web.pages.me import limit_sign_in
from web.pages.me_common import read_form, secure_cookies


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


def _send_link(runtime: Runtime, request: Request, address: str) -> None:
    limit_sign_in(runtime, request, None)
    checked = check_email(address)
    limit_sign_in(runtime, request, checked)
    mailer = Mailer.from_runtime(runtime)
    ttl = timedelta(minutes=runtime.settings.sign_in_link_minutes)

    def work(session: Session, now: datetime) -> None:
        if operators.request_sign_in(session, mailer, checked, now=now, ttl=ttl):
            deliver_soon(session, now)

    transact(runtime, work)


async def sign_in_submit(request: Request) -> Response:
    form, _ = await read_form(request)
    if not pre_ok(request, form.get("csrf", "")):
        return form_expired(request)
    runtime = runtime_of(request)
    address = form.get("email", "")[:320]
    try:
        await run_in_threadpool(_send_link, runtime, request, address)
    except InvalidInput:
        errors = {"email": "Enter an email address, like name@example.org."}
        context = {"expired": False, "errors": errors, "email": address}
        return render(request, "admin/sign_in.html", context, status=400)
    except RateLimited as limited:
        minutes = max(1, limited.retry_after // 60)
        text = f"Too many sign-in requests. Try again in about {minutes} min."
        return message_page(request, "Please wait", text, status=429)
    minutes = runtime.settings.sign_in_link_minutes
    return render(request, "admin/check_mail.html", {"email": address, "minutes": minutes})


async def link_page(request: Request) -> Response:
    runtime = runtime_of(request)
    token = request.query_params.get("t", "")[:500]

    def work(session: Session, now: datetime) -> str:
        secret = runtime.secrets.secret_key
        return operators.check_sign_in_link(session, secret, token, now=now)

    try:
        name = await run_in_threadpool(transact, runtime, work)
    except SignInProblem as problem:
        return _link_problem(request, problem)
    return render(request, "admin/link.html", {"token": token, "name": name})


def _link_problem(request: Request, problem: SignInProblem) -> Response:
    link_rejected("sign_in", problem.reason)
    status = 410 if problem.reason in ("expired", "used") else 404
    context = {"message": problem.message, "reason": problem.reason}
    return render(request, "admin/link_problem.html", context, status=status)


async def link_submit(request: Request) -> Response:
    form, _ = await read_form(request)
    if not pre_ok(request, form.get("csrf", "")):
        return form_expired(request)
    runtime = runtime_of(request)
    lifetime = timedelta(hours=runtime.settings.session_lifetime_hours)
    token = form.get("t", "")[:500]

    def work(session: Session, now: datetime) -> accounts.OpenedSession:
        secret = runtime.secrets.secret_key
        return operators.redeem_sign_in(session, secret, token, now=now, lifetime=lifetime)

    try:
        opened = await run_in_threadpool(transact, runtime, work)
    except SignInProblem as problem:
        return _link_problem(request, problem)
    response = RedirectResponse("/admin", status_code=303)
    response.set_cookie(
        COOKIE, opened.cookie, max_age=int(lifetime.total_seconds()), path=COOKIE_PATH,
        httponly=True, secure=secure_cookies(runtime), samesite="lax",
    )  # fmt: skip
    return response


async def _sign_out(ctx: Ctx) -> Response:
    cookie = ctx.request.cookies.get(COOKIE, "")
    await ctx.run(lambda s, now: accounts.sign_out(s, cookie, now=now))
    response = RedirectResponse("/admin?signed_out=1", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/admin", admin_home, methods=["GET"]),
        Route("/admin/sign-in", sign_in_submit, methods=["POST"]),
        Route("/admin/link", link_page, methods=["GET"]),
        Route("/admin/link", link_submit, methods=["POST"]),
        Route("/admin/sign-out", console_page(_sign_out), methods=["POST"]),
        *admin_mail.routes(),
        *admin_bookings.routes(),
        *admin_calendars.routes(),
    ]
