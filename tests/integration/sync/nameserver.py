"""A real DNS server on loopback UDP, answering A queries from a script (TTL 0), and the
resolver the SSRF guard's seam uses to ask it, the way a rebinding attacker's name server
answers a fetcher: a harmless address at one lookup, an internal one at the next."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset

from caldav_bridge.importers import guard


@dataclass
class DnsServer:
    """Names under .test answer the next entry of their script (the last one repeats)."""

    port: int = 0
    scripts: dict[str, list[list[str]]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)

    def script(self, name: str, *answers: list[str]) -> None:
        self.scripts[name.lower().rstrip(".")] = list(answers)

    def answer(self, name: str) -> list[str] | None:
        script = self.scripts.get(name)
        if script is None:
            return None
        self.queries.append(name)
        return script.pop(0) if len(script) > 1 else script[0]

    def resolve(self, host: str, port: int) -> Sequence[str]:
        """The guard's seam: .test names from this server, anything else as the system does."""
        if not host.lower().rstrip(".").endswith(".test"):
            return guard.system_resolve(host, port)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        try:
            answer = resolver.resolve(host, "A", lifetime=3, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
            raise socket.gaierror(str(exc)) from None
        return [record.address for record in answer]


def _serve(server: DnsServer, sock: socket.socket, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        except OSError:
            return
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        addresses = server.answer(name) if question.rdtype == dns.rdatatype.A else None
        if addresses is None and name not in server.scripts:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        for address in addresses or ():
            reply.answer.append(dns.rrset.from_text(question.name, 0, "IN", "A", address))
        sock.sendto(reply.to_wire(), peer)


@contextmanager
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    server.port = sock.getsockname()[1]
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(server, sock, stop), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(5)
        sock.close()
