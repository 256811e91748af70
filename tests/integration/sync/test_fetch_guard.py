"""The SSRF guard through the public surface: sources that may not be added, redirects
and DNS answers that may not be followed, and the connection going only to the address
that was checked (a real name server on loopback plays the rebinding attacker)."""

from __future__ import annotations

import contextlib
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from caldav_bridge.importers import guard
from core.db.models import ExternalSource
from core.runtime import Runtime
from tests.integration.sync.conftest import (
    Clock,
    FeedServer,
    TestClient,
    add_source,
    make_provider,
    serving,
    sync_now,
)
from tests.integration.sync.feeds import calendar, timed
from tests.integration.sync.nameserver import DnsServer, dns_server
from web.app import create_app

# Each of these, as the URL of a new source, is refused with allow_private off.
REFUSED = [
    "http://127.0.0.1/feed.ics",
    "http://127.1/feed.ics",
    "http://2130706433/feed.ics",  # decimal 127.0.0.1
    "http://0177.0.0.1/feed.ics",  # octal
    "http://0x7f.1/feed.ics",  # hex, short form
    "http://0x7f000001/feed.ics",
    "http://017700000001/feed.ics",
    "http://0.0.0.0/feed.ics",
    "http://0/feed.ics",
    "http://localhost/feed.ics",
    "http://10.0.0.1/feed.ics",
    "http://172.16.0.1/feed.ics",
    "http://192.168.1.1/feed.ics",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/feed.ics",  # carrier-grade NAT
    "http://192.0.0.8/feed.ics",  # IETF protocol assignments
    "http://198.18.0.1/feed.ics",  # benchmarking
    "http://224.0.0.1/feed.ics",  # multicast
    "http://255.255.255.255/feed.ics",
    "http://[::1]/feed.ics",
    "http://[::]/feed.ics",
    "http://[::ffff:127.0.0.1]/feed.ics",  # IPv4-mapped
    "http://[0:0:0:0:0:ffff:7f00:1]/feed.ics",
    "http://[::ffff:169.254.169.254]/feed.ics",
    "http://[::127.0.0.1]/feed.ics",  # IPv4-compatible
    "http://[2002:7f00:1::1]/feed.ics",  # 6to4 of 127.0.0.1
    "http://[2002:c0a8:101::1]/feed.ics",  # 6to4 of 192.168.1.1
    "http://[64:ff9b::127.0.0.1]/feed.ics",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a00:1]/feed.ics",  # NAT64 of 10.0.0.1
    "http://[64:ff9b:1::1]/feed.ics",  # local-use NAT64
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/feed.ics",  # Teredo
    "http://[fc00::1]/feed.ics",  # ULA
    "http://[fd12:3456::1]/feed.ics",
    "http://[fe80::1]/feed.ics",  # link-local
    "http://[fe80::1%25lo]/feed.ics",  # with a zone
    "http://[fec0::1]/feed.ics",  # site-local
    "http://[ff02::1]/feed.ics",  # multicast
    "http://[2001:db8::1]/feed.ics",  # documentation
    "webcal://[::1]/feed.ics",
    "https://inside.test/feed.ics",  # a name that resolves to 10.1.2.3
    "https://mixed.test/feed.ics",  # a name with a public and a private address
]


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Iterator[DnsServer]:
    with dns_server() as server:
        monkeypatch.setattr(guard, "resolve", server.resolve)
        yield server


def _guarded(runtime: Runtime, make_settings: Any, **extra: Any) -> TestClient:
    runtime.settings = make_settings(
        database_url=runtime.settings.database_url, import_allow_private=False, **extra
    )
    runtime.clock = Clock(datetime(2030, 3, 4, 6, 0, tzinfo=UTC))
    return TestClient(create_app(runtime.settings, runtime=runtime))


def test_every_encoding_of_internal_space_is_refused(
    runtime: Runtime, make_settings: Any, admin_headers: dict[str, str], names: DnsServer
) -> None:
    names.script("inside.test", ["10.1.2.3"])
    names.script("mixed.test", ["93.184.215.14", "127.0.0.1"])
    assert len(REFUSED) >= 30
    with _guarded(runtime, make_settings) as api:
        provider = make_provider(api, admin_headers, "ssrf")
        path = f"/api/v1/providers/{provider}/sources"
        for url in REFUSED:
            answer = api.post(path, json={"url": url}, headers=admin_headers)
            assert answer.status_code == 400, (url, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "url_refused", url
            assert "private address" in error["message"] or "does not resolve" in error["message"]
        assert (
            "(2002:7f00:1::1, which is 127.0.0.1)"
            in api.post(
                path, json={"url": "http://[2002:7f00:1::1]/"}, headers=admin_headers
            ).json()["error"]["message"]
        )
        with runtime.sessions() as session:
            assert session.scalar(select(func.count()).select_from(ExternalSource)) == 0
        # Public addresses, in any of these spellings, are not refused.
        for url in ("http://8.8.8.8/a.ics", "http://[2002:808:808::1]/b.ics",
                    "http://[64:ff9b::8.8.8.8]/c.ics", "http://134744072/d.ics"):  # fmt: skip
            assert api.post(path, json={"url": url}, headers=admin_headers).status_code == 201


@contextlib.contextmanager
def internal_service(port: int) -> Iterator[FeedServer]:
    """What an attacker wants to reach: a server on 127.0.0.2, same port as the feed."""
    with serving(FeedServer(port=port), host="127.0.0.2") as state:
        yield state


FEED = calendar(timed("g@x", datetime(2030, 3, 6, 9, tzinfo=UTC)))


def test_dns_rebinding_never_reaches_the_internal_address(
    runtime: Runtime,
    make_settings: Any,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    names: DnsServer,
) -> None:
    """The name flips between the feed server (127.0.0.1, the one network allowed here,
    standing for a public address) and 127.0.0.2 at every lookup, with TTL 0. Each fetch
    resolves once; it either connects to the address it checked or is refused."""
    feed_server.put("/cal.ics", FEED)
    flips = [["127.0.0.1"], ["127.0.0.2"]] * 10
    names.script("calendar.test", *flips)
    with (
        internal_service(feed_server.port) as internal,
        _guarded(runtime, make_settings, import_allow_networks=["127.0.0.1/32"]) as api,
    ):
        internal.put("/cal.ics", "BEGIN:VCALENDAR\r\nX-SECRET:internal\r\nEND:VCALENDAR\r\n")
        provider = make_provider(api, admin_headers, "rebind")
        source = add_source(
            api, admin_headers, provider, f"http://calendar.test:{feed_server.port}/cal.ics"
        )
        assert names.queries == ["calendar.test"]  # the check on creation saw 127.0.0.1
        outcomes = [sync_now(api, admin_headers, source) for _ in range(4)]
    assert internal.hits == {}, "a request reached the internal address"
    assert [o["status"] for o in outcomes] == ["error", "ok", "error", "ok"]
    assert outcomes[1]["added"] == 1
    assert all("private address (127.0.0.2)" in o["error"] for o in outcomes[::2])
    assert len(names.queries) == 5  # one lookup per fetch, none by the HTTP client
    assert feed_server.hits["/cal.ics"] == 2
    assert {h["Host"] for h in feed_server.seen_headers} == {f"calendar.test:{feed_server.port}"}


def test_a_name_with_any_internal_address_is_refused_at_fetch(
    runtime: Runtime,
    make_settings: Any,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    names: DnsServer,
) -> None:
    feed_server.put("/cal.ics", FEED)
    names.script("both.test", ["127.0.0.1"], ["127.0.0.1", "127.0.0.2"])
    with _guarded(runtime, make_settings, import_allow_networks=["127.0.0.1/32"]) as api:
        provider = make_provider(api, admin_headers, "both")
        source = add_source(
            api, admin_headers, provider, f"http://both.test:{feed_server.port}/cal.ics"
        )
        result = sync_now(api, admin_headers, source)
        shown = api.get(f"/api/v1/sources/{source}", headers=admin_headers).json()
    assert result["status"] == "error" and "private address (127.0.0.2)" in result["error"]
    assert shown["status"] == "error" and "127.0.0.2" in shown["last_error"]
    assert feed_server.hits == {}


REDIRECT_TARGETS = [
    "http://127.0.0.2:{port}/cal.ics",
    "http://0x7f.2:{port}/cal.ics",
    "http://2130706434:{port}/cal.ics",
    "http://[::ffff:127.0.0.2]:{port}/cal.ics",
    "http://[2002:7f00:2::1]:{port}/cal.ics",
    "http://[::1]:{port}/cal.ics",
    "http://169.254.169.254/latest/meta-data/",
    "http://evil.test:{port}/cal.ics",  # resolves to 127.0.0.2
]


def test_every_redirect_hop_is_checked_and_pinned(
    runtime: Runtime,
    make_settings: Any,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    names: DnsServer,
) -> None:
    names.script("evil.test", ["127.0.0.2"])
    feed_server.put("/cal.ics", FEED)
    with (
        internal_service(feed_server.port) as internal,
        # One calendar synced once per redirect target: past the "sync now" budget.
        _guarded(
            runtime,
            make_settings,
            import_allow_networks=["127.0.0.1/32"],
            sync_now_per_source_per_minute=0,
        ) as api,  # fmt: skip
    ):
        internal.put("/cal.ics", FEED)
        provider = make_provider(api, admin_headers, "hops")
        source = add_source(api, admin_headers, provider, feed_server.url("/hop"))
        feed_server.put("/hop", b"", status=302, location="/cal.ics")
        first = sync_now(api, admin_headers, source)
        assert first["added"] == 1, first  # an allowed hop is followed
        for target in REDIRECT_TARGETS:
            feed_server.put("/hop", b"", status=302, location=target.format(port=feed_server.port))
            result = sync_now(api, admin_headers, source)
            assert result["status"] == "error", target
            assert "private address" in result["error"], (target, result["error"])
        shown = api.get(f"/api/v1/sources/{source}", headers=admin_headers).json()
    assert internal.hits == {}
    assert shown["events"] == 1  # what was imported is kept


def test_caldav_sources_are_guarded_at_the_connection_too(
    runtime: Runtime,
    make_settings: Any,
    admin_headers: dict[str, str],
    feed_server: FeedServer,
    names: DnsServer,
) -> None:
    names.script("dav.test", ["127.0.0.1"], ["127.0.0.2"])
    with (
        internal_service(feed_server.port) as internal,
        _guarded(runtime, make_settings, import_allow_networks=["127.0.0.1/32"]) as api,
    ):
        provider = make_provider(api, admin_headers, "davguard")
        url = f"http://dav.test:{feed_server.port}/dav/cal/"
        source = add_source(api, admin_headers, provider, url, kind="caldav", username="u",
                            password="p")  # fmt: skip
        result = sync_now(api, admin_headers, source)
    assert result["status"] == "error" and "private address (127.0.0.2)" in result["error"]
    assert internal.hits == {} and feed_server.hits == {}


@contextlib.contextmanager
def https_feed(tmp_path: Any, name: str) -> Iterator[FeedServer]:
    """A feed server on 127.0.0.1 over TLS, whose certificate names only `name` (no IP)."""
    cert, key = tmp_path / "feed.crt", tmp_path / "feed.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(FeedServer(), wrap=context) as state:
        yield state


def test_tls_is_verified_against_the_host_name_not_the_pinned_address(
    runtime: Runtime,
    make_settings: Any,
    admin_headers: dict[str, str],
    names: DnsServer,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection goes to the checked 127.0.0.1, while SNI and the certificate check
    use the URL's name: a certificate for feed.test is good for feed.test only."""
    names.script("feed.test", ["127.0.0.1"])
    names.script("other.test", ["127.0.0.1"])
    with (
        https_feed(tmp_path, "feed.test") as server,
        _guarded(runtime, make_settings, import_allow_networks=["127.0.0.1/32"]) as api,
    ):
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "feed.crt"))
        server.put("/cal.ics", FEED)
        provider = make_provider(api, admin_headers, "tls")
        good = add_source(api, admin_headers, provider, f"https://feed.test:{server.port}/cal.ics")
        wrong = add_source(
            api, admin_headers, provider, f"https://other.test:{server.port}/cal.ics"
        )
        assert sync_now(api, admin_headers, good)["added"] == 1
        result = sync_now(api, admin_headers, wrong)
    assert result["status"] == "error" and "CERTIFICATE_VERIFY_FAILED" in result["error"], result
    assert server.hits == {"/cal.ics": 1}
    assert server.seen_headers[0]["Host"] == f"feed.test:{server.port}"
