"""Which language a page speaks: ``?lang=`` (remembered in a cookie), else the cookie,
else the browser's Accept-Language, else English.

The choice is made once per request and kept in its scope; ``LanguageCookie`` stores a
``?lang=`` switch so the next pages (and the booking the guest makes) keep it.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Final
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.formatting import DEFAULT_LOCALE, normalize_locale
from core.i18n import negotiate

COOKIE: Final = "parley_lang"
_SCOPE_KEY: Final = "parley.locale"
_YEAR: Final = 365 * 24 * 3600


def _asked(scope: Scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return normalize_locale((query.get("lang") or [""])[0])


def chosen_locale(connection: HTTPConnection) -> str | None:
    """The language this browser chose itself (?lang= or the cookie), if any."""
    return _asked(connection.scope) or normalize_locale(connection.cookies.get(COOKIE))


def locale_of(connection: HTTPConnection) -> str:
    """The language of this request's pages (computed once)."""
    scope = connection.scope
    found = scope.get(_SCOPE_KEY)
    if isinstance(found, str):
        return found
    chosen = (
        _asked(scope)
        or normalize_locale(connection.cookies.get(COOKIE))
        or negotiate(connection.headers.get("accept-language"))
        or DEFAULT_LOCALE
    )
    scope[_SCOPE_KEY] = chosen
    return chosen


class LanguageCookie:
    """Remembers a ``?lang=`` switch in a cookie for the site's pages, and tells caches that
    a page depends on the visitor's language (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(("/api/", "/dav")):
            await self.app(scope, receive, send)
            return
        asked = _asked(scope)
        cookie = _cookie_header(asked) if asked else None

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if any(k == b"content-type" and v.startswith(b"text/html") for k, v in headers):
                    headers.append((b"vary", b"Accept-Language, Cookie"))
                if cookie is not None:
                    headers.append((b"set-cookie", cookie))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_language)


def _cookie_header(locale: str) -> bytes:
    cookie: SimpleCookie = SimpleCookie()
    cookie[COOKIE] = locale
    morsel = cookie[COOKIE]
    morsel["path"], morsel["max-age"], morsel["samesite"] = "/", _YEAR, "Lax"
    return morsel.OutputString().encode("latin-1")
