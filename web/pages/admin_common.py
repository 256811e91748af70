"""What every console page (/admin/…) shares: the operator's session cookie, CSRF, rendering.

``console_page`` wraps an endpoint: it resolves the cookie to the signed-in operator
(through the same accounts machinery as /me), sends visitors without a session to the
sign-in form, checks the CSRF token of every POST and the grant the action needs, and
turns another tenant's ids into a 404 page, a refused action into a 403 page and bad
query values into a 400 page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from core.db.models import OutboundMessage
from core.runtime import Runtime
from core.services import accounts, operators
from core.services.access import Grant
from core.services.errors import Forbidden, InvalidInput, NotFoundError
from core.services.lists import PageRequest
from web.api.lists import outbound_json
from web.http import runtime_of
from web.pages.me_common import SECURITY_HEADERS, pre_token, pre_token_ok, read_form, secure_cookies
from web.pages.me_common import transact as transact
from web.templating import templates

T = TypeVar("T")
COOKIE = "parley_admin"
PRE_COOKIE = "parley_admin_pre"
COOKIE_PATH = "/admin"
PAGE_SIZE = 50

Op = operators.SignedIn


@dataclass
class Ctx:
    """One request to a console page: the operator, the parsed form, the runtime."""

    request: Request
    runtime: Runtime
    op: Op
    form: dict[str, str] = field(default_factory=dict)

    async def run(self, work: Callable[[Session, datetime], T]) -> T:
        """``work(session, now)`` in one transaction, off the event loop."""
        return await run_in_threadpool(transact, self.runtime, work)

    def page(self) -> PageRequest:
        """The page of a list the query asks for (``cursor``), PAGE_SIZE rows."""
        cursor = self.request.query_params.get("cursor", "")[:500] or None
        return PageRequest(limit=PAGE_SIZE, cursor=cursor)


def may(op: Op | None, grant: str) -> bool:
    """Whether the operator's role includes ``grant`` (a Grant name), for the templates."""
    return op is not None and op.caller.grant >= Grant[grant]


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    op: Op | None = None,
) -> Response:
    """A console page with the shared security headers; ``csrf`` is always in the context."""
    csrf = op.viewer.csrf_token if op else pre_token(request, PRE_COOKIE)
    values = {"op": op, "csrf": csrf, "may": lambda grant: may(op, grant), **context}
    response = templates.TemplateResponse(request, template, values, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    if op is None and request.cookies.get(PRE_COOKIE) != csrf:
        response.set_cookie(
            PRE_COOKIE, csrf, max_age=3600, path=COOKIE_PATH, httponly=True, samesite="lax",
            secure=secure_cookies(runtime_of(request)),
        )  # fmt: skip
    return response


def pre_ok(request: Request, presented: str) -> bool:
    """The anonymous forms' double-submit check (sign-in, using a link)."""
    return pre_token_ok(request, presented, PRE_COOKIE)


def message_page(
    request: Request, title: str, message: str, *, status: int, op: Op | None = None
) -> Response:
    context = {"title": title, "message": message}
    return render(request, "admin/message.html", context, status=status, op=op)


def form_expired(request: Request, op: Op | None = None) -> Response:
    return message_page(
        request,
        "Form expired",
        "This form could not be verified (it may be old, or come from another site). "
        "Go back, reload the page and try again.",
        status=403,
        op=op,
    )


def _load(runtime: Runtime, cookie: str) -> Op | None:
    return transact(runtime, lambda s, now: operators.signed_in(s, cookie, now=now))


async def current_op(request: Request) -> Op | None:
    cookie = request.cookies.get(COOKIE, "")
    if not cookie:
        return None
    return await run_in_threadpool(_load, runtime_of(request), cookie)


Handler = Callable[[Ctx], Awaitable[Response]]


def console_page(
    handler: Handler, needs: Grant = Grant.READ
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint for a signed-in operator whose role includes ``needs``; POSTs need CSRF."""

    async def endpoint(request: Request) -> Response:
        op = await current_op(request)
        if op is None:
            return RedirectResponse("/admin?expired=1", status_code=303)
        ctx = Ctx(request, runtime_of(request), op)
        if request.method == "POST":
            ctx.form, _ = await read_form(request)
            if not accounts.csrf_ok(op.viewer, ctx.form.get("csrf", "")):
                return form_expired(request, op)
        try:
            op.caller.require(needs)
            return await handler(ctx)
        except Forbidden:
            text = f"A {op.role} may not do this. Ask an owner of {op.tenant_name}."
            return message_page(request, "Not allowed", text, status=403, op=op)
        except NotFoundError:
            text = "There is nothing with this id in your tenant."
            return message_page(request, "Not found", text, status=404, op=op)
        except InvalidInput as bad:  # a hand-edited query, such as an old cursor
            return message_page(request, "Cannot show this", str(bad), status=400, op=op)

    return endpoint


def back(path: str, notice: str = "") -> RedirectResponse:
    """POST → 303 → GET, with a short notice code the page turns into words."""
    joiner = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{joiner}done={notice}" if notice else path, status_code=303)


def subject_of(row: OutboundMessage) -> str | None:
    """The Subject of a queued or sent message, as the outbound list reads it."""
    subject: str | None = outbound_json(row)["subject"]
    return subject
