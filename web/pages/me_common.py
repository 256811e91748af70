"""What every provider page (/me/…) shares: the session cookie, CSRF checks, rendering.

``provider_page`` wraps an endpoint: it resolves the session cookie to a ``Me``, sends
visitors without a session to the sign-in form, checks the CSRF token of every POST,
and turns bad input and other providers' ids into a page with a message, never a 500.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.runtime import Runtime
from core.services import accounts
from core.services.errors import NotFoundError
from web.http import runtime_of
from web.i18n import chosen_locale, locale_of
from web.templating import templates

T = TypeVar("T")
COOKIE = "parley_session"
PRE_COOKIE = "parley_pre"  # double-submit token of the forms shown before sign-in
COOKIE_PATH = "/me"
MAX_FORM_BYTES = 200_000
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True, slots=True)
class Me:
    """The signed-in provider as the pages show it."""

    viewer: accounts.Viewer
    provider_id: str
    name: str
    email: str
    slug: str
    timezone: str
    dav_username: str
    kind: str
    locale: str | None = None  # the language the provider chose (pages and mails)


@dataclass
class Ctx:
    """One request to a provider page: who asks, the parsed form, the runtime."""

    request: Request
    runtime: Runtime
    me: Me
    form: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)

    async def run(self, work: Callable[[Session, datetime], T]) -> T:
        """``work(session, now)`` in one transaction, off the event loop."""
        return await run_in_threadpool(transact, self.runtime, work)


def transact(runtime: Runtime, work: Callable[[Session, datetime], T]) -> T:
    with runtime.sessions.begin() as session:
        return work(session, runtime.clock())


def secure_cookies(runtime: Runtime) -> bool:
    return runtime.settings.effective_base_url.startswith("https://")


async def read_form(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The urlencoded form (first value per name, and all values), bounded in size."""
    body = (await request.body())[:MAX_FORM_BYTES].decode("utf-8", "replace")
    lists = parse_qs(body, keep_blank_values=True)
    return {key: values[0] for key, values in lists.items()}, lists


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    me: Me | None = None,
) -> Response:
    """A page with the shared security headers; ``csrf`` is always in the context."""
    csrf = me.viewer.csrf_token if me else pre_token(request)
    # A signed-in provider's pages speak the language they chose, unless this browser
    # switched (?lang= or its cookie).
    locale = chosen_locale(request) or (me.locale if me else None) or locale_of(request)
    response = templates.TemplateResponse(
        request, template, {"me": me, "csrf": csrf, "locale": locale, **context},
        status_code=status,
    )  # fmt: skip
    response.headers.update(SECURITY_HEADERS)
    if me is None and request.cookies.get(PRE_COOKIE) != csrf:
        response.set_cookie(
            PRE_COOKIE,
            csrf,
            max_age=3600,
            path=COOKIE_PATH,
            httponly=True,
            samesite="lax",
            secure=secure_cookies(runtime_of(request)),
        )
    return response


def pre_token(request: Request, cookie: str = PRE_COOKIE) -> str:
    """The anonymous form token: the visitor's pre-session cookie, or a fresh one."""
    current = request.cookies.get(cookie, "")
    if 20 <= len(current) <= 100:
        return current
    cached = getattr(request.state, "pre_token", None)
    if isinstance(cached, str):
        return cached
    fresh = secrets.token_urlsafe(24)
    request.state.pre_token = fresh
    return fresh


def pre_token_ok(request: Request, presented: str, cookie: str = PRE_COOKIE) -> bool:
    value = request.cookies.get(cookie, "")
    return bool(value) and bool(presented) and secrets.compare_digest(value, presented)


def message_page(
    request: Request, title: str, message: str, *, status: int, me: Me | None = None
) -> Response:
    return render(
        request, "me/message.html", {"title": title, "message": message}, status=status, me=me
    )


def forbidden(request: Request, me: Me | None = None) -> Response:
    return message_page(
        request,
        "Form expired",
        "This form could not be verified (it may be old, or come from another site). "
        "Go back, reload the page and try again.",
        status=403,
        me=me,
    )


def not_found(request: Request, me: Me) -> Response:
    return message_page(request, "Not found", "There is nothing of yours here.", status=404, me=me)


def _load_me(runtime: Runtime, cookie: str) -> Me | None:
    def work(session: Session, now: datetime) -> Me | None:
        found = accounts.signed_in(session, cookie, now=now)
        if found is None:
            return None
        viewer, provider = found
        return Me(
            viewer,
            provider.id,
            provider.name,
            provider.email,
            provider.slug,
            provider.timezone,
            provider.dav_username,
            provider.kind,
            provider.locale,
        )

    return transact(runtime, work)


async def current_me(request: Request) -> Me | None:
    cookie = request.cookies.get(COOKIE, "")
    if not cookie:
        return None
    return await run_in_threadpool(_load_me, runtime_of(request), cookie)


Handler = Callable[[Ctx], Awaitable[Response]]


def provider_page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint that needs a signed-in provider, and a valid CSRF token on POST."""

    async def endpoint(request: Request) -> Response:
        me = await current_me(request)
        if me is None:
            return RedirectResponse("/me?expired=1", status_code=303)
        ctx = Ctx(request, runtime_of(request), me)
        if request.method == "POST":
            ctx.form, ctx.lists = await read_form(request)
            if not accounts.csrf_ok(me.viewer, ctx.form.get("csrf", "")):
                return forbidden(request, me)
        try:
            return await handler(ctx)
        except NotFoundError:
            return not_found(request, me)

    return endpoint


def back(path: str, notice: str = "") -> RedirectResponse:
    """POST → 303 → GET, with a short notice code the page turns into words."""
    target = f"{path}?done={notice}" if notice else path
    return RedirectResponse(target, status_code=303)
