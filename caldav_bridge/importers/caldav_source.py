"""Fetching the events of a remote CalDAV calendar in the sync window with the caldav client.

The server answers a time-range REPORT; the objects are joined into one VCALENDAR body
(sorted by URL, so the same calendar gives the same bytes and the sync's unchanged-hash
shortcut applies), which the sync reads exactly like an ICS feed.

The client's HTTP library (niquests) resolves names through GuardResolver: once per
connection, every address checked by the SSRF guard, the socket connected to a checked
address (redirects too; SNI and certificates stay on the host name). The whole query
has one deadline: when it is spent, its sockets are shut and the fetch fails.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import niquests
from caldav.davclient import DAVClient
from urllib3.contrib.resolver import BaseResolver, ProtocolResolver

from caldav_bridge.errors import DeadlinePassed, UrlRefused
from caldav_bridge.importers.guard import Guard
from caldav_bridge.importers.http_ics import _shape_refusal
from core.services.errors import FetchFailed
from core.services.sync import Fetched, FetchRequest

_Info = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


class GuardResolver(BaseResolver):
    """A niquests resolver answering only with addresses the guard has checked; it keeps
    the sockets it connected, so that a spent deadline can shut them."""

    protocol = ProtocolResolver.CUSTOM
    implementation = "parley-guard"

    def __init__(self, guard: Guard) -> None:
        super().__init__(None, None)
        self.guard = guard
        self.sockets: list[socket.socket] = []
        self.aborted = False
        self._open = True

    def close(self) -> None:
        self._open = False

    def is_available(self) -> bool:
        return self._open

    def recycle(self) -> BaseResolver:
        return self

    def getaddrinfo(  # type: ignore[override]
        self,
        host: bytes | str | None,
        port: str | int | None,
        family: socket.AddressFamily,
        type: socket.SocketKind,
        proto: int = 0,
        flags: int = 0,
        *,
        quic_upgrade_via_dns_rr: bool = False,
    ) -> list[_Info]:
        if self.aborted:
            raise DeadlinePassed("the fetch's time is spent")
        name = host.decode("ascii") if isinstance(host, bytes) else str(host or "")
        number = int(port or 0)
        infos: list[_Info] = []
        for address in self.guard.addresses(name, number):
            if ":" in address:
                if family in (socket.AF_UNSPEC, socket.AF_INET6):
                    infos.append(
                        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, number, 0, 0))
                    )
            elif family in (socket.AF_UNSPEC, socket.AF_INET):
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, number)))
        if not infos:
            raise UrlRefused(f"host {name!r} has no address of the family asked for")
        return infos

    def create_connection(self, *args: Any, **kwargs: Any) -> socket.socket:
        sock = super().create_connection(*args, **kwargs)
        self.sockets.append(sock)
        if self.aborted:
            self.abort()
        return sock

    def abort(self) -> None:
        """Shut every socket of this fetch (a read blocked in one returns at once)."""
        self.aborted = True
        for sock in list(self.sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


# Calendar-level properties; folded continuation lines are dropped with them.
_CALENDAR_PROPS = ("VERSION:", "PRODID:", "CALSCALE:", "METHOD:", "VERSION;", "PRODID;")


class CalDavFetcher:
    """One DAV client per fetch (the client keeps per-server state we do not want to share)."""

    def __init__(self, *, timeout: float, max_bytes: int, guard: Guard) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.guard = guard

    def __call__(self, request: FetchRequest) -> Fetched:
        reason, _, _ = _shape_refusal(request.url)
        if reason is not None:
            raise UrlRefused(reason)
        resolver = GuardResolver(self.guard)
        watchdog = threading.Timer(self.timeout, resolver.abort)
        watchdog.daemon = True
        started = time.monotonic()
        watchdog.start()
        try:
            texts = self._query(request, resolver)
        except FetchFailed as failed:
            if resolver.aborted:
                raise self._spent() from None
            raise failed from None
        except Exception as exc:  # the client raises many types (DAVError, niquests, lxml)
            if resolver.aborted or time.monotonic() - started >= self.timeout:
                raise self._spent() from None
            refused = _refusal_in(exc)
            if refused is not None:
                raise refused from None
            raise FetchFailed(f"CalDAV query failed: {type(exc).__name__}: {exc}") from None
        finally:
            watchdog.cancel()
        if resolver.aborted:
            raise self._spent()
        body = join_calendars([text for _, text in texts])
        if len(body) > self.max_bytes:
            raise FetchFailed(f"calendar is larger than the limit of {self.max_bytes} bytes")
        return Fetched(200, body)

    def _spent(self) -> FetchFailed:
        return FetchFailed(f"timed out after {self.timeout:g} s (the whole CalDAV query)")

    def _read_capped(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """A response hook: the body, cut off at max_bytes (an endless REPORT stops)."""
        too_large = FetchFailed(f"calendar is larger than the limit of {self.max_bytes} bytes")
        declared = str(response.headers.get("content-length", ""))
        if declared.isdigit() and int(declared) > self.max_bytes:
            response.close()
            raise too_large
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                response.close()
                raise too_large
            chunks.append(chunk)
        response._content = b"".join(chunks)
        response._content_consumed = True
        return response

    def _query(self, request: FetchRequest, resolver: GuardResolver) -> list[tuple[str, str]]:
        client: Any = DAVClient(
            url=request.url,
            username=request.username,
            password=request.password,
            timeout=max(1, int(self.timeout)),
            enable_rfc6764=False,
            require_tls=False,
        )
        # The client's own session resolves names itself: ours asks the guard.
        client.session.close()
        client.session = niquests.Session(resolver=resolver)
        client.session.trust_env = False  # no proxy from the environment, no .netrc
        # Bodies are read here, up to max_bytes, not by the library (which reads them all).
        client.session.hooks["response"].append(self._read_capped)
        client.session.headers["Accept-Encoding"] = "identity"  # nothing to decompress
        try:
            calendar = client.calendar(url=request.url)
            found = calendar.search(
                start=request.window_start, end=request.window_end, event=True, expand=False
            )
            return sorted((str(o.url), _data_of(o)) for o in found)
        finally:
            client.close()


def _refusal_in(exc: BaseException) -> FetchFailed | None:
    """The guard's refusal, when the HTTP library wrapped it in an error of its own."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, FetchFailed):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _data_of(resource: Any) -> str:
    data = resource.data
    return data.decode() if isinstance(data, bytes) else str(data or "")


def join_calendars(objects: list[str]) -> bytes:
    """One VCALENDAR holding the components (events, time zones) of every object."""
    out = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Parley//CalDAV import//EN"]
    for text in objects:
        lines = text.replace("\r\n", "\n").split("\n")
        dropping = False
        for line in lines:
            if line[:1] in (" ", "\t"):
                if not dropping:
                    out.append(line)
                continue
            upper = line.upper()
            dropping = not line or upper.startswith(_CALENDAR_PROPS)
            dropping = dropping or upper in ("BEGIN:VCALENDAR", "END:VCALENDAR")
            if not dropping:
                out.append(line)
    out.append("END:VCALENDAR")
    return ("\r\n".join(out) + "\r\n").encode()
