"""Sign-in by emailed single-use link, one flow for both sites: /me (providers) and /admin
(operators of a tenant).

POST {home}/sign-in mails a link (every address gets the same answer, whether it is known
or not; per-IP and per-address budgets); GET {home}/link?t=… only shows a button (mail
scanners open links), and its POST uses the link and sets the session cookie. Each site
brings its own services, templates (``{folder}/sign_in.html``, ``check_mail.html``,
``link.html``, ``link_problem.html``), page renderer and cookie.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.runtime import Runtime
from core.services import ratelimit
from core.services.accounts import OpenedSession
from core.services.errors import InvalidInput, RateLimited, SignInProblem
from core.services.notify import Mailer
from core.services.outbox import deliver_soon
from core.services.providers import check_email
from web.errors import link_rejected
from web.http import runtime_of
from web.pages.me_common import read_form, secure_cookies, transact

HOUR = 3600

# request_link(session, mailer, address, now, ttl) -> links sent; check_link(session,
# secret, token, now) -> the name to greet; redeem(session, secret, token, now, lifetime).
RequestLink = Callable[[Session, Mailer, str, datetime, timedelta], int]
CheckLink = Callable[[Session, bytes, str, datetime], str]
Redeem = Callable[[Session, bytes, str, datetime, timedelta], OpenedSession]


def limit_sign_in(runtime: Runtime, request: Request, address: str | None) -> None:
    """Per-IP and per-address budgets (shared by both sites); the address is hashed so
    the key reveals nothing."""
    settings, now = runtime.settings, runtime.clock()
    host = request.client.host if request.client else "unknown"
    ratelimit.check(
        runtime.sessions, f"sign-in-ip:{host}", now,
        limit=settings.sign_in_per_ip_per_hour, window_seconds=HOUR,
    )  # fmt: skip
    if address is not None:
        digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]
        ratelimit.check(
            runtime.sessions, f"sign-in-addr:{digest}", now,
            limit=settings.sign_in_per_address_per_hour, window_seconds=HOUR,
        )  # fmt: skip


@dataclass(frozen=True)
class SignIn:
    """The sign-in pages of one site."""

    home: str  # "/me" or "/admin"
    folder: str  # the templates' folder
    cookie: str
    cookie_path: str
    render: Callable[..., Response]  # render(request, template, context, status=…)
    message: Callable[..., Response]  # message_page(request, title, text, status=…)
    pre_ok: Callable[[Request, str], bool]  # the anonymous forms' double-submit check
    refused: Callable[[Request], Response]  # the page for a form that fails it
    request_link: RequestLink
    check_link: CheckLink
    redeem: Redeem

    def _send_link(self, runtime: Runtime, request: Request, address: str) -> None:
        limit_sign_in(runtime, request, None)
        checked = check_email(address)
        limit_sign_in(runtime, request, checked)
        mailer = Mailer.from_runtime(runtime)
        ttl = timedelta(minutes=runtime.settings.sign_in_link_minutes)

        def work(session: Session, now: datetime) -> None:
            if self.request_link(session, mailer, checked, now, ttl):
                deliver_soon(session, now)

        transact(runtime, work)

    async def submit(self, request: Request) -> Response:
        form, _ = await read_form(request)
        if not self.pre_ok(request, form.get("csrf", "")):
            return self.refused(request)
        runtime = runtime_of(request)
        address = form.get("email", "")[:320]
        try:
            await run_in_threadpool(self._send_link, runtime, request, address)
        except InvalidInput:
            errors = {"email": "Enter an email address, like name@example.org."}
            context = {"expired": False, "errors": errors, "email": address}
            return self.render(request, f"{self.folder}/sign_in.html", context, status=400)
        except RateLimited as limited:
            minutes = max(1, limited.retry_after // 60)
            text = f"Too many sign-in requests. Try again in about {minutes} min."
            return self.message(request, "Please wait", text, status=429)
        context = {"email": address, "minutes": runtime.settings.sign_in_link_minutes}
        return self.render(request, f"{self.folder}/check_mail.html", context)

    async def link_page(self, request: Request) -> Response:
        runtime = runtime_of(request)
        token = request.query_params.get("t", "")[:500]

        def work(session: Session, now: datetime) -> str:
            return self.check_link(session, runtime.secrets.secret_key, token, now)

        try:
            name = await run_in_threadpool(transact, runtime, work)
        except SignInProblem as problem:
            return self._problem(request, problem)
        return self.render(request, f"{self.folder}/link.html", {"token": token, "name": name})

    async def link_submit(self, request: Request) -> Response:
        form, _ = await read_form(request)
        if not self.pre_ok(request, form.get("csrf", "")):
            return self.refused(request)
        runtime = runtime_of(request)
        lifetime = timedelta(hours=runtime.settings.session_lifetime_hours)
        token = form.get("t", "")[:500]

        def work(session: Session, now: datetime) -> OpenedSession:
            return self.redeem(session, runtime.secrets.secret_key, token, now, lifetime)

        try:
            opened = await run_in_threadpool(transact, runtime, work)
        except SignInProblem as problem:
            return self._problem(request, problem)
        response = RedirectResponse(self.home, status_code=303)
        response.set_cookie(
            self.cookie, opened.cookie, max_age=int(lifetime.total_seconds()),
            path=self.cookie_path, httponly=True, secure=secure_cookies(runtime), samesite="lax",
        )  # fmt: skip
        return response

    def _problem(self, request: Request, problem: SignInProblem) -> Response:
        link_rejected("sign_in", problem.reason)
        status = 410 if problem.reason in ("expired", "used") else 404
        context = {"message": problem.message, "reason": problem.reason}
        return self.render(request, f"{self.folder}/link_problem.html", context, status=status)

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{self.home}/sign-in", self.submit, methods=["POST"]),
            Route(f"{self.home}/link", self.link_page, methods=["GET"]),
            Route(f"{self.home}/link", self.link_submit, methods=["POST"]),
        ]
