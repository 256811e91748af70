"""The edge of the app, as pure ASGI middleware: which client a request is from, input no
database can store refused before any endpoint runs, and every failure one complete error
response (JSON under /api/, HTML elsewhere): a database that is down is a 503, anything
unexpected a logged 500 that says nothing of the internals.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from core.logging import get_logger
from web.http import connection_lost, error_response
from web.inputs import storable
from web.templating import templates

_log = get_logger("parley.web")
RETRY_AFTER_SECONDS = 5
# Form bodies up to this size are checked whole (the pages read at most 20–64 KB of one).
MAX_CHECKED_FORM_BYTES = 1_000_000
_FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")
_UNAVAILABLE = (
    sa.OperationalError,
    sa.InterfaceError,
    sa.TimeoutError,
    sa.DisconnectionError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def error_reply(
    path: str, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """The error as the client of path expects it: JSON for the API, else an HTML page."""
    if path.startswith("/api/"):
        return error_response(status, code, message, headers)
    heading = {404: "Page not found", 503: "Please try again shortly"}.get(
        status, "Something went wrong" if status >= 500 else "This request cannot be used"
    )
    page = templates.get_template("book_error.html").render(
        heading=heading, message=message, slug=None
    )
    return HTMLResponse(page, status_code=status, headers=headers)


class ClientAddress:
    """The client a trusted proxy names in X-Forwarded-For (and -Proto) becomes the client.

    Trusted are the runtime's ``trusted_proxies`` (none by default): without them the
    peer address stands, whatever the headers say, so rate limits per client address
    cannot be sidestepped by sending the header.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._trusted: tuple[str, ...] = ()
        self._inner: ASGIApp = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._for(scope)(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _for(self, scope: Scope) -> ASGIApp:
        runtime = getattr(scope["app"].state, "runtime", None)
        trusted = tuple(runtime.settings.trusted_proxies) if runtime is not None else ()
        if trusted != self._trusted:
            self._trusted, self._inner = trusted, self.app
            if trusted:
                hosts = list(trusted)
                self._inner = ProxyHeadersMiddleware(self.app, trusted_hosts=hosts)  # type: ignore[arg-type,assignment]
        return self._inner


class InputGuard:
    """Refuses a path or a page's query (404), an API query, cookie or form field (400)
    holding a NUL.

    Percent-decoding is the only way such text arrives there, and PostgreSQL text cannot
    hold it; JSON bodies are checked by ``web.inputs.json_value`` as they are parsed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        bad_query = _bad_query(scope.get("query_string", b""))
        # For a page the query is part of its address (a link's token): none holds a NUL.
        if not storable(path) or (bad_query and not path.startswith("/api/")):
            await error_reply(path, 404, "not_found", "there is nothing at this address")(
                scope, receive, send
            )
            return
        if bad_query or _bad_cookie(scope):
            await _refuse(scope, receive, send, "the request")
            return
        if _content_type(scope).startswith(_FORMS):
            receive, body = await _buffered(receive)
            if _nul_in_form(body):
                await _refuse(scope, receive, send, "the form")
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, where: str) -> None:
    message = f"{where} contains characters that are not allowed"
    await error_reply(scope["path"], 400, "invalid_text", message)(scope, receive, send)


def _bad_query(query: bytes) -> bool:
    return b"%00" in query.lower() or b"\x00" in query


def _bad_cookie(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        # Only a quoted cookie with an octal escape (\000) can decode to a NUL.
        if name == b"cookie" and b"\\" in value:
            cookies = cookie_parser(value.decode("latin-1"))
            if not all(storable(k) and storable(v) for k, v in cookies.items()):
                return True
    return False


def _content_type(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value).lower().strip()
    return b""


def _nul_in_form(body: bytes) -> bool:
    return b"\x00" in body or b"%00" in body


async def _buffered(receive: Receive) -> tuple[Receive, bytes]:
    """The body read ahead (up to MAX_CHECKED_FORM_BYTES), and a receive that replays it."""
    chunks: list[bytes] = []
    size, more, pending = 0, True, None
    while more and size <= MAX_CHECKED_FORM_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            pending = message
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replay: list[Message] = [{"type": "http.request", "body": body, "more_body": more}]
    if pending is not None:
        replay = [pending]

    async def replaying() -> Message:
        return replay.pop(0) if replay else await receive()

    return replaying, body


class ErrorBoundary:
    """An exception from the app becomes one complete error response, never a reset.

    Starlette's own last-resort handler re-raises after answering, and uvicorn then closes
    the connection, so the client's next request on it fails; this answers and stops
    there. A response already under way cannot be mended: then the exception goes on and
    the server closes the connection, the only way to tell the client it was cut short.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = finished = False

        async def tracking(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            reply = failure_reply(scope["path"], exc)
            if finished:
                return
            if started:
                raise
            await reply(scope, receive, send)


def failure_reply(path: str, exc: Exception) -> Response:
    """The response for an exception no endpoint handled, logged as it deserves."""
    if unavailable(exc):
        _log.warning("http.database_unavailable", path=path, error=_name(exc))
        return error_reply(
            path,
            503,
            "unavailable",
            "the database is unavailable; please retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    _log.error("http.unhandled", path=path, error=type(exc).__name__, exc_info=exc)
    return error_reply(path, 500, "internal", "internal error; it has been logged")


def unavailable(exc: BaseException) -> bool:
    """True when exc says the database cannot be reached or dropped the connection."""
    return connection_lost(exc) or isinstance(exc, _UNAVAILABLE)


def _name(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return type(orig if orig is not None else exc).__name__
