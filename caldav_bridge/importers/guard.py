"""The SSRF guard of calendar imports: resolve once, check every address, connect to it.

A host is resolved exactly once per connection, every address it resolves to is checked,
and the connection is made to a checked address; the HTTP client never resolves the
name again (a DNS answer that changes between the check and the connect, "rebinding",
cannot reach an internal address). Host header, TLS SNI and certificate verification
stay on the host name. Redirect hops and new connections each go through this again.

Internal means loopback, private, link-local, shared (100.64/10), multicast, reserved,
unspecified, and every IPv6 form of those: IPv4-mapped, IPv4-compatible, 6to4 and NAT64
addresses are judged by the IPv4 address they embed; Teredo, ULA, site-local and the
local-use NAT64 prefix are refused outright. Numeric host spellings (2130706433, 0x7f.1,
0177.0.0.1) are what the system resolver makes of them, and that address is checked.

Resolution goes through `resolve` (a seam: tests replace it with a resolver of their own).
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from caldav_bridge.errors import DeadlinePassed, UrlRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def system_resolve(host: str, port: int) -> list[str]:
    """The addresses of host, in the system resolver's order, each once."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    found: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in found:
            found.append(address)
    return found


# The seam: (host, port) -> addresses. Looked up at each call, so a test may replace it.
resolve: Callable[[str, int], Sequence[str]] = system_resolve

_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_TEREDO = ipaddress.IPv6Network("2001::/32")
# Not global, though Python's tables (before 3.13) do not all say so: shared address
# space (carrier NAT), IETF protocol assignments, the 6to4 relay anycast, benchmarking.
_IPV4_SPECIAL = tuple(
    ipaddress.IPv4Network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15")
)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or NAT64 (64:ff9b::/96) address stands for."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_internal(address: Address) -> bool:
    """Whether address is one an import may not connect to (see the module text)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return True
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return is_internal(embedded)
        if address in _IPV4_COMPATIBLE or address in _TEREDO or address in _NAT64_LOCAL:
            return True
        if address.is_site_local:
            return True
    elif any(address in network for network in _IPV4_SPECIAL):
        return True
    return (
        not address.is_global
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


@dataclass(frozen=True)
class Guard:
    """Which addresses imports may connect to: public ones, plus the allowed networks;
    anything at all when allow_private is set."""

    allow_private: bool = False
    allowed: tuple[Network, ...] = field(default=())

    def refusal(self, address: Address) -> str | None:
        if self.allow_private or not is_internal(address):
            return None
        if any(address in network for network in self.allowed):
            return None
        embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        if embedded is not None:
            return f"a private address ({address}, which is {embedded})"
        return f"a private address ({address})"

    def addresses(self, host: str, port: int) -> list[str]:
        """Resolve host once; every address it has, all checked. Raises UrlRefused."""
        host = host.strip("[]")
        try:
            answers = list(resolve(host, port))
        except (OSError, ValueError, UnicodeError) as exc:
            raise UrlRefused(f"host {host!r} does not resolve ({type(exc).__name__})") from None
        if not answers:
            raise UrlRefused(f"host {host!r} does not resolve (no address)")
        checked: list[str] = []
        for answer in answers:
            try:
                address = ipaddress.ip_address(answer)
            except ValueError:
                raise UrlRefused(f"host {host!r} resolves to {answer!r}, not an address") from None
            reason = self.refusal(address)
            if reason is not None:
                raise UrlRefused(
                    f"host {host!r} resolves to {reason}; "
                    "set PARLEY_IMPORT_ALLOW_PRIVATE=true to allow it"
                )
            checked.append(str(address))
        return checked


# --- a total deadline per fetch -------------------------------------------------------------

_deadline: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "parley_fetch_deadline", default=None
)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every connect, read and write inside gets at most what is left of seconds."""
    token = _deadline.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining(timeout: float | None) -> float | None:
    """timeout, cut to what is left of the current deadline; raises once it has passed."""
    current = _deadline.get()
    if current is None:
        return timeout
    end, total = current
    left = end - time.monotonic()
    if left <= 0:
        raise DeadlinePassed(f"timed out after {total:g} s (the whole fetch)")
    return left if timeout is None else min(timeout, left)
