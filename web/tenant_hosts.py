"""Tenants with a host of their own: their pages answer there, their links work there only.

A tenant given a host (``PATCH /api/v1/tenants/{id} {"host": "book.casas.example"}``)
has its booking pages at ``/book/{slug}`` on that host (served as ``/t/{tenant}/book/…``),
and every link in its mail points there. On that host:

- another tenant's pages (``/t/{other}/…``) and links (manage, reschedule, approve and
  decline, sign-in, feeds) answer 404, as if they did not exist: one site never shows or
  acts on another's bookings, and an id or token of one cannot be probed on the other;
- on any other host (the deployment's own), the tenant's pages and links are sent to its
  host with a 308, so links mailed before the host was set keep working.

Only token-carrying GETs are checked (the pages a link opens); the forms they show post
back to the same host. Without any tenant host a page request costs one hop to a worker
thread (the table may be due to be read again) and two dict lookups.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, Headers, QueryParams
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from core.runtime import Runtime
from core.services import mailboxes
from core.services.mailboxes import TenantMailbox
from core.services.tenants import tenant_of_token
from web.edge import error_reply

# Pages a mailed link opens, and the query parameter that carries its token.
_LINK_PAGES = {
    "/booking": "m",
    "/booking/calendar.ics": "m",
    "/reschedule": "r",
    "/approve": "t",
    "/decline": "t",
    "/me/link": "t",
    "/admin/link": "t",
}
_PASS = ("/api/", "/dav", "/.well-known/", "/metrics", "/healthz", "/static/")
_NOT_HERE = "There is no such page or link on this site."
# Set in the scope of a page served on its tenant's own host: the tenant's slug.
SITE_KEY = "parley.site"


class TenantHosts:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(_PASS):
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        boxes = mailboxes.of_runtime(runtime)
        host = Headers(scope=scope).get("host", "").lower()
        # Off the event loop: the table in memory is read again from the database when due.
        hosts, site = await run_in_threadpool(_sites, boxes, host)
        if not hosts:
            await self.app(scope, receive, send)
            return
        answer = await self._decide(scope, runtime, boxes, site)
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await answer(scope, receive, send)

    async def _decide(
        self,
        scope: Scope,
        runtime: Runtime,
        boxes: mailboxes.Mailboxes,
        site: TenantMailbox | None,
    ) -> ASGIApp | None:
        path: str = scope["path"]
        owner = _path_tenant(path)
        if site is not None:
            if path == "/book" or path.startswith("/book/"):
                _rewrite(scope, f"/t/{site.slug}{path}")
                scope[SITE_KEY] = site.slug  # its pages link as /book/… there
                return None
            if owner is not None and owner != site.slug:
                return error_reply(path, 404, "not_found", _NOT_HERE)
        elif owner is not None:
            home = boxes.by_slug(owner)
            if home is not None and home.host:
                rest = path.removeprefix(f"/t/{owner}")
                return _moved(scope, home, rest)
        token_of = _LINK_PAGES.get(path) if scope["method"] in ("GET", "HEAD") else None
        token = _token(scope, path, token_of)
        if not token:
            return None
        tenant_id = await run_in_threadpool(_link_owner, runtime, path, token)
        if tenant_id is None:
            return None  # unknown links get the page's own answer
        if site is not None:
            if tenant_id == site.tenant_id:
                return None
            return error_reply(path, 404, "not_found", _NOT_HERE)
        home = boxes.of(tenant_id)
        return _moved(scope, home, path) if home.host else None


def _sites(boxes: mailboxes.Mailboxes, host: str) -> tuple[bool, TenantMailbox | None]:
    """Whether any tenant has a host of its own, and whose host this is."""
    return boxes.has_hosts(), boxes.at_host(host)


def _path_tenant(path: str) -> str | None:
    if not path.startswith("/t/"):
        return None
    return path[3:].partition("/")[0] or None


def _token(scope: Scope, path: str, param: str | None) -> str:
    if path.startswith("/feeds/") and path.endswith(".ics"):
        return path.removeprefix("/feeds/").removesuffix(".ics")
    if param is None:
        return ""
    return QueryParams(scope.get("query_string", b"")).get(param, "")[:500]


def _link_owner(runtime: Runtime, path: str, token: str) -> str | None:
    with runtime.sessions.begin() as session:
        return tenant_of_token(session, token, feed=path.startswith("/feeds/"))


def _rewrite(scope: Scope, path: str) -> None:
    scope["path"] = path
    scope["raw_path"] = path.encode("utf-8")


def _moved(scope: Scope, home: TenantMailbox, path: str) -> ASGIApp:
    url = URL(scope=scope)
    scheme = url.scheme
    query = f"?{url.query}" if url.query else ""
    return RedirectResponse(f"{scheme}://{home.host}{path or '/'}{query}", status_code=308)
