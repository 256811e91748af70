"""Fetching an ICS feed over HTTP(S): conditional GET, limits, and an SSRF guard.

webcal:// is read as https://. Redirects are followed by hand so that every hop is
checked against the guard, and credentials never follow a redirect to another host.
The body is streamed and cut off at max_bytes (after decompression, so a gzip bomb stops).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from core.services.sync import Fetched, FetchFailed, FetchRequest

USER_AGENT = "Parley calendar import (+https://github.com/parley)"


class UrlRefused(FetchFailed):
    """Raised when a URL resolves to an address Parley may not fetch from (SSRF guard)."""


def normalize_url(url: str) -> str:
    """webcal:// and webcals:// as https://; other URLs unchanged."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() in ("webcal", "webcals"):
        return urlunsplit(("https", *parts[1:]))
    return url.strip()


def refusal_reason(url: str, *, allow_private: bool) -> str | None:
    """Why url may not be fetched (bad scheme, no host, private address), or None."""
    parts = urlsplit(normalize_url(url))
    if parts.scheme.lower() not in ("http", "https"):
        return f"URL scheme {parts.scheme or '(none)'!r} is not http, https or webcal"
    if not parts.hostname:
        return "URL has no host"
    if allow_private:
        return None
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError, UnicodeError) as exc:
        return f"host {parts.hostname!r} does not resolve ({type(exc).__name__})"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if _is_internal(address):
            return (
                f"host {parts.hostname!r} resolves to a private address ({address}); "
                "set PARLEY_IMPORT_ALLOW_PRIVATE=true to allow it"
            )
    return None


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


class HttpIcsFetcher:
    """A thread-safe fetcher with one pooled httpx client."""

    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int,
        max_redirects: int,
        allow_private: bool,
        client: httpx.Client | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allow_private = allow_private
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"},
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
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
        deadline = time.monotonic() + self.timeout
        for _ in range(self.max_redirects + 1):
            reason = refusal_reason(url, allow_private=self.allow_private)
            if reason is not None:
                raise UrlRefused(reason)
            auth = None
            if request.username and urlsplit(url).netloc.lower() == origin:
                auth = httpx.BasicAuth(request.username, request.password or "")
            answer = self._get(url, headers, auth, deadline)
            if isinstance(answer, Fetched):
                return answer
            url = answer
        raise FetchFailed(f"more than {self.max_redirects} redirects")

    def _get(
        self, url: str, headers: dict[str, str], auth: httpx.Auth | None, deadline: float
    ) -> Fetched | str:
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
                body = self._read(response, deadline)
                return Fetched(
                    response.status_code,
                    body,
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                )
        except httpx.TimeoutException:
            raise FetchFailed(f"timed out after {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise FetchFailed(f"cannot fetch the feed: {type(exc).__name__}: {exc}") from None

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise FetchFailed(f"feed is {declared} bytes, over the limit of {self.max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchFailed(f"feed is over the limit of {self.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchFailed(f"timed out after {self.timeout:g} s reading the feed")
            chunks.append(chunk)
        return b"".join(chunks)
