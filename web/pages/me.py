"""The provider site's front door: /me sign-in by emailed link, home, sessions, sign-out.

Opening a sign-in link changes nothing (mail scanners open links): its page shows a
button, and only that POST uses the link and sets the session cookie. Every address gets
the same answer, whether a provider has it or not.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

import web.pages.me_availability as me_availability
import web.pages.me_bookings as me_bookings
import web.pages.me_calendars as me_calendars
import web.pages.me_connect as me_connect
from core.runtime import Runtime
from core.services import accounts, availability, providers, ratelimit
from core.services.errors import InvalidInput, RateLimited, SignInProblem
from core.services.freshness import instant_book_allowed
from core.services.notify import Mailer
from core.services.outbox import deliver_soon
from core.services.providers import check_email
from web.errors import link_rejected
from web.http import runtime_of
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
    read_form,
    render,
    secure_cookies,
    transact,
)

HOUR = 3600


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
        policy = availability.load_policy(session, providers.get_provider(session, me.provider_id))
        return {
            "requested": [b for b in upcoming if b.status == "requested"],
            "next": [b for b in upcoming if b.status == "confirmed"][:5],
            "paused": None if allowed else reason,
            "has_hours": bool(policy.weekly),  # without them the booking page offers nothing
        }

    context = await ctx.run(work)
    base = ctx.runtime.settings.effective_base_url
    context["booking_url"] = f"{base}/book/{me.slug}"
    return render(ctx.request, "me/home.html", context, me=me)


def limit_sign_in(runtime: Runtime, request: Request, address: str | None) -> None:
    """Per-IP and per-address budgets; the address is hashed so the key reveals nothing."""
    settings, now = runtime.settings, runtime.clock()
    host = request.client.host if request.client else "unknown"
    ratelimit.check(
        runtime.sessions,
        f"sign-in-ip:{host}",
        now,
        limit=settings.sign_in_per_ip_per_hour,
        window_seconds=HOUR,
    )
    if address is not None:
        digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]
        ratelimit.check(
            runtime.sessions,
            f"sign-in-addr:{digest}",
            now,
            limit=settings.sign_in_per_address_per_hour,
            window_seconds=HOUR,
        )


def _send_link(runtime: Runtime, request: Request, address: str) -> None:
    limit_sign_in(runtime, request, None)
    checked = check_email(address)
    limit_sign_in(runtime, request, checked)
    mailer = Mailer.from_runtime(runtime)
    ttl = timedelta(minutes=runtime.settings.sign_in_link_minutes)

    def work(session: Session, now: datetime) -> None:
        if accounts.request_sign_in(session, mailer, checked, now=now, ttl=ttl):
            deliver_soon(session, now)

    transact(runtime, work)


async def sign_in_submit(request: Request) -> Response:
    form, _ = await read_form(request)
    if not pre_token_ok(request, form.get("csrf", "")):
        return forbidden(request)
    runtime = runtime_of(request)
    address = form.get("email", "")[:320]
    try:
        await run_in_threadpool(_send_link, runtime, request, address)
    except InvalidInput:
        errors = {"email": "Enter an email address, like name@example.org."}
        context = {"expired": False, "errors": errors, "email": address}
        return render(request, "me/sign_in.html", context, status=400)
    except RateLimited as limited:
        minutes = max(1, limited.retry_after // 60)
        text = f"Too many sign-in requests. Try again in about {minutes} min."
        return message_page(request, "Please wait", text, status=429)
    minutes = runtime.settings.sign_in_link_minutes
    return render(request, "me/check_mail.html", {"email": address, "minutes": minutes})


async def link_page(request: Request) -> Response:
    runtime = runtime_of(request)
    token = request.query_params.get("t", "")[:500]

    def work(session: Session, now: datetime) -> str:
        return accounts.check_sign_in_link(session, runtime.secrets.secret_key, token, now=now).name

    try:
        name = await run_in_threadpool(transact, runtime, work)
    except SignInProblem as problem:
        return _link_problem(request, problem)
    return render(request, "me/link.html", {"token": token, "name": name})


def _link_problem(request: Request, problem: SignInProblem) -> Response:
    link_rejected("sign_in", problem.reason)
    status = 410 if problem.reason in ("expired", "used") else 404
    context = {"message": problem.message, "reason": problem.reason}
    return render(request, "me/link_problem.html", context, status=status)


async def link_submit(request: Request) -> Response:
    form, _ = await read_form(request)
    if not pre_token_ok(request, form.get("csrf", "")):
        return forbidden(request)
    runtime = runtime_of(request)
    lifetime = timedelta(hours=runtime.settings.session_lifetime_hours)
    token = form.get("t", "")[:500]

    def work(session: Session, now: datetime) -> accounts.OpenedSession:
        secret = runtime.secrets.secret_key
        return accounts.redeem_sign_in(session, secret, token, now=now, lifetime=lifetime)

    try:
        opened = await run_in_threadpool(transact, runtime, work)
    except SignInProblem as problem:
        return _link_problem(request, problem)
    response = RedirectResponse("/me", status_code=303)
    response.set_cookie(
        COOKIE,
        opened.cookie,
        max_age=int(lifetime.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        secure=secure_cookies(runtime),
        samesite="lax",
    )
    return response


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
        Route("/me/sign-in", sign_in_submit, methods=["POST"]),
        Route("/me/link", link_page, methods=["GET"]),
        Route("/me/link", link_submit, methods=["POST"]),
        Route("/me/sign-out", provider_page(_sign_out), methods=["POST"]),
        Route("/me/sessions", provider_page(_sessions), methods=["GET"]),
        Route("/me/sessions/{session_id}/revoke", provider_page(_revoke), methods=["POST"]),
        *me_availability.routes(),
        *me_calendars.routes(),
        *me_bookings.routes(),
        *me_connect.routes(),
    ]
