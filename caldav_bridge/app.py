"""The CalDAV server: Radicale's WSGI application with Parley's storage, auth and rights.

make_wsgi_app(runtime) serves it on its own (any WSGI server); web/app.py mounts the same
app under /dav/ with a2wsgi. The runtime reaches the plugins through functools.partial.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from a2wsgi import WSGIMiddleware
from radicale import config
from radicale.app import Application
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from caldav_bridge.auth import ParleyAuth
from caldav_bridge.rights import ParleyRights
from caldav_bridge.storage import ParleyStorage
from core.runtime import Runtime
from core.services.dav import ReadOnlyCalendar

WRITE_METHODS = frozenset({"PUT", "DELETE", "PROPPATCH", "MOVE", "MKCOL", "MKCALENDAR", "POST"})
_READ_ONLY_PATH = re.compile(r"^/[^/]+/(bookings|holds)(/|$)")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def radicale_configuration(runtime: Runtime, *, auth_delay: float = 1.0) -> config.Configuration:
    """Radicale's configuration with Parley's plugins and nothing on disk."""
    configuration = config.load()
    configuration.update(
        {
            "storage": {"type": partial(ParleyStorage, runtime=runtime)},
            "auth": {"type": partial(ParleyAuth, runtime=runtime), "delay": str(auth_delay)},
            "rights": {"type": ParleyRights, "permit_delete_collection": "True"},
            "web": {"type": "none"},
            "hook": {"type": "none"},
            "server": {"max_content_length": str(10_000_000)},
        },
        "parley",
        privileged=True,
    )
    return configuration


def make_wsgi_app(runtime: Runtime, *, auth_delay: float = 1.0) -> WsgiApp:
    """The CalDAV WSGI app, ready for a plain WSGI server or a mount."""
    radicale_app = Application(radicale_configuration(runtime, auth_delay=auth_delay))
    return partial(_explain_read_only, radicale_app)


def _explain_read_only(app: WsgiApp, environ: Environ, start_response: StartResponse) -> Any:
    """Radicale answers a write into bookings or holds with a bare 403; say why."""
    _utf8_paths(environ)
    method = environ.get("REQUEST_METHOD", "")
    match = _READ_ONLY_PATH.match(environ.get("PATH_INFO", ""))
    if method not in WRITE_METHODS or match is None:
        return app(environ, start_response)
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.update(status=status, headers=headers)
        return lambda data: None

    body = app(environ, capture)
    if not str(captured.get("status", "")).startswith("403"):
        start_response(captured["status"], captured["headers"])
        return body
    if hasattr(body, "close"):
        body.close()
    message = (ReadOnlyCalendar(match.group(1)).message + "\n").encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(message)))]
    start_response("403 Forbidden", headers)
    return [message]


def _utf8_paths(environ: Environ) -> None:
    """PEP 3333 servers (a2wsgi, gunicorn) give paths as latin-1-decoded bytes; Radicale,
    used to its own server, expects them decoded as UTF-8 (a calendar named "Bücher")."""
    for key in ("PATH_INFO", "SCRIPT_NAME"):
        value = environ.get(key)
        if isinstance(value, str) and not value.isascii():
            # Already text, or not UTF-8: Radicale judges it as it is.
            with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
                environ[key] = value.encode("latin-1").decode("utf-8")


class DavMount:
    """An ASGI app for web/app.py's /dav mount: builds the WSGI app on first use from the
    runtime the Starlette lifespan put on app.state, and serves it through a2wsgi."""

    def __init__(self, *, auth_delay: float = 1.0) -> None:
        self._auth_delay = auth_delay
        self._asgi: Any = None
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._asgi is None:
            with self._lock:
                if self._asgi is None:
                    runtime = scope["app"].state.runtime
                    wsgi = make_wsgi_app(runtime, auth_delay=self._auth_delay)
                    self._asgi = WSGIMiddleware(wsgi, workers=16)  # type: ignore[arg-type]
        await self._asgi(scope, receive, send)


async def well_known_caldav(request: Request) -> Response:
    """RFC 6764: /.well-known/caldav points calendar apps at the CalDAV root."""
    return RedirectResponse("/dav/", status_code=301)
