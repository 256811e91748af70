"""The CalDAV server: Radicale's WSGI application with Parley's storage, auth and rights.

make_wsgi_app(runtime) serves it on its own (any WSGI server); web/app.py mounts the same
app under /dav/ with a2wsgi. The runtime reaches the plugins through Plugin (its repr shows no
runtime).
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from xml.etree import ElementTree

from a2wsgi import WSGIMiddleware
from radicale import config
from radicale.app import Application
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from caldav_bridge import limits
from caldav_bridge.auth import ParleyAuth
from caldav_bridge.itip import ItipMixin
from caldav_bridge.rights import ParleyRights
from caldav_bridge.scheduling import SchedulingMixin
from caldav_bridge.storage import ParleyStorage
from core.runtime import Runtime
from core.services.errors import ReadOnlyCalendar
from core.settings import Settings

WRITE_METHODS = frozenset({"PUT", "DELETE", "PROPPATCH", "MOVE", "MKCOL", "MKCALENDAR", "POST"})
_READ_ONLY_PATH = re.compile(r"^/[^/]+/(bookings|holds)(/|$)")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class Plugin:
    """A Radicale plugin type bound to the runtime. Radicale logs the configured type (on
    every login, as the auth "info"), so its repr and str name the class and nothing else:
    a functools.partial would print the runtime and, through it, everything it holds."""

    def __init__(self, cls: type[Any], runtime: Runtime) -> None:
        self._cls, self._runtime = cls, runtime

    def __call__(self, configuration: config.Configuration) -> Any:
        return self._cls(configuration, runtime=self._runtime)

    def __repr__(self) -> str:
        return f"parley:{self._cls.__name__}"

    __str__ = __repr__


def radicale_configuration(runtime: Runtime, *, auth_delay: float = 1.0) -> config.Configuration:
    """Radicale's configuration with Parley's plugins and nothing on disk."""
    settings = runtime.settings
    configuration = config.load()
    configuration.update(
        {
            "storage": {"type": Plugin(ParleyStorage, runtime)},
            "auth": {"type": Plugin(ParleyAuth, runtime), "delay": str(auth_delay)},
            "rights": {"type": ParleyRights, "permit_delete_collection": "True"},
            "web": {"type": "none"},
            "hook": {"type": "none"},
            "server": {
                "max_content_length": str(settings.dav_max_body_bytes),
                # Radicale caps an object at 80 % of a request; say so, rather than be told.
                "max_resource_size": str(int(settings.dav_max_body_bytes * 0.8)),
            },
            "reporting": {
                "max_expand_occurrence": str(settings.dav_max_instances),
                "max_freebusy_occurrence": str(settings.dav_max_instances),
            },
            # Never log headers (Authorization) or bodies, at any level.
            "logging": {
                "mask_passwords": "True",
                "request_header_on_debug": "False",
                "request_content_on_debug": "False",
                "response_header_on_debug": "False",
                "response_content_on_debug": "False",
                "bad_put_request_content": "False",
                "request_header_on_notice_condition": "{}",
                "request_content_on_notice_condition": "{}",
                "response_header_on_notice_condition": "{}",
                "response_content_on_notice_condition": "{}",
                "profiling": "none",
            },
        },
        "parley",
        privileged=True,
    )
    return configuration


class ParleyApplication(ItipMixin, SchedulingMixin, Application):
    """Radicale's Application with Parley's additions, each a mixin before it: implicit
    scheduling (caldav_bridge.itip), then the inbox, outbox, free-busy and availability
    (caldav_bridge.scheduling)."""


def make_wsgi_app(runtime: Runtime, *, auth_delay: float = 1.0) -> WsgiApp:
    """The CalDAV WSGI app, ready for a plain WSGI server or a mount."""
    limits.install()
    limits.install_expand_guard()
    radicale_app = ParleyApplication(radicale_configuration(runtime, auth_delay=auth_delay))
    return partial(_guard, partial(_explain_read_only, radicale_app), runtime.settings)


_BODY_METHODS = WRITE_METHODS | {"REPORT", "PROPFIND"}
_CALDAV = "urn:ietf:params:xml:ns:caldav"
_TIMESTAMP = "%Y%m%dT%H%M%SZ"


def _guard(
    app: WsgiApp, settings: Settings, environ: Environ, start_response: StartResponse
) -> Any:
    """Bounds before Radicale sees a request: a body over dav_max_body_bytes gets 413 at
    once (by Content-Length, or while a chunked body streams in), an expand or free-busy
    window over dav_max_expand_days gets 403, and recurrence work runs under a budget
    (caldav_bridge.limits) whose exhaustion is answered 403 CALDAV:max-instances."""
    limit = settings.dav_max_body_bytes
    method = environ.get("REQUEST_METHOD", "")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _plain(start_response, "400 Bad Request", "invalid Content-Length")
    if length > limit:
        return _too_large(start_response, limit)
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    body: bytes | None = None
    if method in _BODY_METHODS and (chunked or (method == "REPORT" and length)):
        body = _read_at_most(environ["wsgi.input"], length if length else limit + 1)
        if len(body) > limit:
            return _too_large(start_response, limit)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    if method == "REPORT" and body:
        too_long = _window_too_long(body, settings.dav_max_expand_days)
        if too_long:
            return _max_instances(start_response, too_long)
    instances = settings.dav_max_instances
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.update(status=status, headers=headers)
        return lambda data: None

    with limits.request_budget(
        steps=50 * instances, item=20 * instances, seconds=10.0, output=8 * limit
    ) as spent:
        answer = app(environ, capture)
    status = str(captured.get("status", "500 Internal Server Error"))
    if spent.spent_out and status[:1] in ("4", "5"):
        if hasattr(answer, "close"):
            answer.close()
        return _max_instances(
            start_response,
            f"this request needs more than {instances} recurrence instances (or more "
            "recurrence work than one request may do); ask for a shorter window",
        )
    start_response(status, captured.get("headers", []))
    return answer


def _read_at_most(stream: Any, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = stream.read(min(left, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _window_too_long(body: bytes, max_days: int) -> str:
    """Why an expand or free-busy window in the REPORT body is too long, or ""."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return ""  # Radicale answers it
    windows = [(e.get("start"), e.get("end"), "expand") for e in root.iter(f"{{{_CALDAV}}}expand")]
    if root.tag == f"{{{_CALDAV}}}free-busy-query":
        windows += [
            (e.get("start"), e.get("end"), "free-busy")
            for e in root.iter(f"{{{_CALDAV}}}time-range")
        ]
    for start, end, kind in windows:
        try:
            first = datetime.strptime(start or "", _TIMESTAMP)
            last = datetime.strptime(end or "", _TIMESTAMP)
        except ValueError:
            continue  # Radicale answers it
        if last - first > timedelta(days=max_days):
            return f"{kind} windows are limited to {max_days} days"
    return ""


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    data = (text + "\n").encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    start_response(status, headers)
    return [data]


def _too_large(start_response: StartResponse, limit: int) -> list[bytes]:
    return _plain(
        start_response,
        "413 Content Too Large",
        f"request body over {limit} bytes (PARLEY_DAV_MAX_BODY_BYTES)",
    )


def _max_instances(start_response: StartResponse, message: str) -> list[bytes]:
    """403 with the CALDAV:max-instances precondition (RFC 4791) and a readable reason."""
    error = ElementTree.Element("{DAV:}error")
    ElementTree.SubElement(error, f"{{{_CALDAV}}}max-instances")
    ElementTree.SubElement(error, "{urn:parley:caldav}message").text = message
    ElementTree.register_namespace("D", "DAV:")
    ElementTree.register_namespace("C", _CALDAV)
    ElementTree.register_namespace("P", "urn:parley:caldav")
    data = ElementTree.tostring(error, encoding="utf-8", xml_declaration=True)
    headers = [
        ("Content-Type", "application/xml; charset=utf-8"),
        ("Content-Length", str(len(data))),
    ]
    start_response("403 Forbidden", headers)
    return [data]


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
