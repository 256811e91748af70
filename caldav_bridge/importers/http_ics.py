"""Fetching an ICS feed over HTTP(S): conditional GET, limits, and an SSRF guard.

webcal:// is read as https://. Redirects are followed by hand so that every hop is
checked against the guard, and credentials never follow a redirect to another host.
Every connection goes through the guard's network backend: the host is resolved once,
every address checked, and the socket connected to the checked address (guard.py).
The body is streamed and cut off at max_bytes (after decompression, so a gzip bomb stops).
The whole fetch (connects, headers, body, every redirect) has one deadline, timeout
seconds in all: a server that drips a byte at a time is cut off when it is spent.
"""

from __future__ import annotations

import ssl
import typing
import zlib
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from caldav_bridge.errors import UrlRefused
from caldav_bridge.importers.guard import Guard, deadline, remaining
from core.services.errors import FetchFailed
from core.services.sync import Fetched, FetchRequest

__all__ = ["HttpIcsFetcher", "normalize_url", "refusal_reason"]

USER_AGENT = "Parley calendar import (+https://github.com/parley)"


def normalize_url(url: str) -> str:
    """webcal:// and webcals:// as https://; other URLs unchanged."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() in ("webcal", "webcals"):
        return urlunsplit(("https", *parts[1:]))
    return url.strip()


def _shape_refusal(url: str) -> tuple[str | None, str, int]:
    """(why url cannot be fetched at all, or None; its host; its port)."""
    try:
        parts = urlsplit(normalize_url(url))
    except ValueError as exc:
        return f"URL cannot be read ({exc})", "", 0
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return f"URL scheme {parts.scheme or '(none)'!r} is not http, https or webcal", "", 0
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return "URL has a bad port", "", 0
    if not parts.hostname:
        return "URL has no host", "", 0
    return None, parts.hostname, port


def refusal_reason(url: str, *, allow_private: bool, guard: Guard | None = None) -> str | None:
    """Why url may not be fetched (bad scheme, no host, private address), or None."""
    reason, host, port = _shape_refusal(url)
    if reason is not None:
        return reason
    guard = guard or Guard(allow_private=allow_private)
    if guard.allow_private:
        return None
    try:
        guard.addresses(host, port)
    except UrlRefused as refused:
        return str(refused)
    return None


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write is held to the current fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, remaining(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host name: SNI and certificate checks stay on it.
        inner = self._inner.start_tls(ssl_context, server_hostname, remaining(timeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, connecting only to addresses the guard has checked."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.guard.addresses(host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    address, port, remaining(timeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return _DeadlineStream(stream)
        assert failure is not None
        raise type(failure)(f"cannot connect to {host} at {', '.join(addresses)}: {failure}")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("imports do not connect to unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over GuardedBackend (the pool is httpx's, with that backend)."""

    def __init__(self, guard: Guard, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(guard),
        )


class HttpIcsFetcher:
    """A thread-safe fetcher with one pooled httpx client."""

    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int,
        max_redirects: int,
        guard: Guard,
        client: httpx.Client | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.guard = guard
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "text/calendar, */*;q=0.5",
                "Accept-Encoding": "gzip, deflate",  # what _read can decode within its limit
            },
            transport=GuardedTransport(self.guard, limits=limits),
            # No proxy from the environment: a proxy would connect where the guard can't see.
            trust_env=False,
        )

    def close(self) -> None:
        self.client.close()

    def __call__(self, request: FetchRequest) -> Fetched:
        url = normalize_url(request.url)
        origin = urlsplit(url).netloc.lower()
        headers = {}
        if request.etag:
            headers["If-None-Match"] = request.etag
        if request.last_modified:
            headers["If-Modified-Since"] = request.last_modified
        with deadline(self.timeout):
            for _ in range(self.max_redirects + 1):
                # The shape here; the addresses when the connection is made (GuardedBackend).
                reason, _, _ = _shape_refusal(url)
                if reason is not None:
                    raise UrlRefused(reason)
                auth = None
                if request.username and urlsplit(url).netloc.lower() == origin:
                    auth = httpx.BasicAuth(request.username, request.password or "")
                answer = self._get(url, headers, auth)
                if isinstance(answer, Fetched):
                    return answer
                url = answer
        raise FetchFailed(f"more than {self.max_redirects} redirects")

    def _get(self, url: str, headers: dict[str, str], auth: httpx.Auth | None) -> Fetched | str:
        """The answer, or the next URL of a redirect."""
        try:
            with self.client.stream("GET", url, headers=headers, auth=auth) as response:
                if response.is_redirect and "location" in response.headers:
                    return urljoin(url, response.headers["location"])
                if response.status_code == 304:
                    return Fetched(304, None)
                if response.status_code >= 400 or response.status_code < 200:
                    raise FetchFailed(
                        f"HTTP {response.status_code} from the feed server",
                        http_status=response.status_code,
                    )
                body = self._read(response)
                return Fetched(
                    response.status_code,
                    body,
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                )
        except httpx.TimeoutException:
            raise FetchFailed(f"timed out after {self.timeout:g} s") from None
        except httpx.InvalidURL as exc:
            raise UrlRefused(f"cannot fetch the feed: bad URL: {exc}") from None
        except httpx.HTTPError as exc:
            raise FetchFailed(f"cannot fetch the feed: {type(exc).__name__}: {exc}") from None

    def _read(self, response: httpx.Response) -> bytes:
        """The body, decoded here rather than by httpx so that decompression stops at
        max_bytes (a gzip bomb is cut off within one chunk of the limit)."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchFailed(f"feed is {declared} bytes, over the limit of {self.max_bytes} bytes")
        decoder = _decoder(response.headers.get("content-encoding", ""))
        chunks: list[bytes] = []
        size = 0
        try:
            for raw in response.iter_raw():
                remaining(None)  # raises once the fetch's time is spent
                data = raw
                while data:
                    if decoder is None:
                        out, data = data, b""
                    else:
                        out = decoder.decompress(data, self.max_bytes - size + 1)
                        data = decoder.unconsumed_tail
                    size += len(out)
                    if size > self.max_bytes:
                        raise FetchFailed(f"feed is over the limit of {self.max_bytes} bytes")
                    chunks.append(out)
            if decoder is not None:
                chunks.append(decoder.flush())
        except zlib.error as exc:
            raise FetchFailed(f"feed's compressed body cannot be read ({exc})") from None
        return b"".join(chunks)


def _decoder(encoding: str) -> typing.Any:
    """A zlib decompressor for the Content-Encoding, or None for none; refuses the rest."""
    names = [n.strip().lower() for n in encoding.split(",") if n.strip()]
    names = [n for n in names if n != "identity"]
    if not names:
        return None
    if names in (["gzip"], ["x-gzip"]):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if names == ["deflate"]:
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib-wrapped (what servers send)
    raise FetchFailed(f"feed's content encoding {encoding!r} is not supported")
