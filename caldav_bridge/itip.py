"""Implicit scheduling in the CalDAV server (RFC 6638): Schedule-Tag, If-Schedule-Tag-Match,
and the storage's calls into core.services.dav_scheduling.

ItipMixin goes in front of Radicale's Application (caldav_bridge.app): the
Schedule-Tag header on GET and PUT answers of scheduling objects, the schedule-tag
property in PROPFIND and REPORT answers, 412 for a PUT or DELETE whose If-Schedule-Tag-Match
names another tag, no ETag for a PUT whose object Parley changed (SEQUENCE,
SCHEDULE-STATUS: RFC 4791 5.3.4), and calendar-auto-schedule in the DAV header.
The functions below are what the storage calls inside its transaction.
"""

from __future__ import annotations

import posixpath
from http import client
from typing import Any
from urllib.parse import unquote, urlparse
from xml.etree import ElementTree as ET

from radicale import pathutils
from sqlalchemy.orm import Session

from core.db.models import DavCalendar
from core.services import dav, dav_scheduling
from core.services.notify import Mailer

_CALDAV = "urn:ietf:params:xml:ns:caldav"
SCHEDULE_TAG = f"{{{_CALDAV}}}schedule-tag"
_PRECONDITION = (
    client.PRECONDITION_FAILED,
    (("Content-Type", "text/plain; charset=utf-8"),),
    "If-Schedule-Tag-Match names another Schedule-Tag: the event was changed since\n",
    None,
)


class ItipMixin:
    """Schedule-Tag handling on top of Radicale's Application (RFC 6638 3.2.10, 8.3)."""

    _storage: Any

    def _schedule_tag(self, path: str) -> str | None:
        parts = [p for p in pathutils.strip_path(path).split("/") if p]
        if len(parts) != 3:
            return None
        with self._storage.session() as session:
            provider = dav.provider_by_dav_username(session, parts[0])
            if provider is None:
                return None
            return dav_scheduling.tag_at(session, provider, parts[1], parts[2])

    def _tag_precondition(self, environ: dict[str, Any], path: str) -> bool:
        wanted = environ.get("HTTP_IF_SCHEDULE_TAG_MATCH")
        if wanted is None:
            return True
        return bool(f'"{self._schedule_tag(path)}"' == str(wanted).strip())

    def _with_tag(self, answer: Any, path: str) -> Any:
        status, headers, *rest = answer
        if status in (client.OK, client.CREATED, client.NO_CONTENT):
            tag = self._schedule_tag(path)
            if tag is not None:
                headers = dict(headers)
                headers["Schedule-Tag"] = f'"{tag}"'
        return (status, headers, *rest)

    def do_GET(self, environ: Any, base_prefix: str, path: str, user: str, *args: Any) -> Any:
        answer = super().do_GET(environ, base_prefix, path, user, *args)  # type: ignore[misc]
        return self._with_tag(answer, path) if user else answer

    def do_PUT(self, environ: Any, base_prefix: str, path: str, user: str, *args: Any) -> Any:
        if user and not self._tag_precondition(environ, path):
            return _PRECONDITION
        local = self._storage._local
        local.itip_rewritten = False
        answer = super().do_PUT(environ, base_prefix, path, user, *args)  # type: ignore[misc]
        if not user:
            return answer
        status, headers, *rest = self._with_tag(answer, path)
        if getattr(local, "itip_rewritten", False):
            # The stored object is not what was sent: the client must fetch it again.
            headers = {k: v for k, v in dict(headers).items() if k.lower() != "etag"}
        return (status, headers, *rest)

    def do_OPTIONS(self, environ: Any, base_prefix: str, path: str, user: str, *args: Any) -> Any:
        status, headers, *rest = super().do_OPTIONS(  # type: ignore[misc]
            environ, base_prefix, path, user, *args
        )
        headers = dict(headers)
        if "calendar-auto-schedule" not in headers.get("DAV", ""):
            # RFC 6638 2: the server schedules; calendar apps then send no iMIP themselves.
            headers["DAV"] = f"{headers.get('DAV', '')}, calendar-auto-schedule".lstrip(", ")
        return (status, headers, *rest)

    def do_DELETE(self, environ: Any, base_prefix: str, path: str, user: str, *args: Any) -> Any:
        if user and not self._tag_precondition(environ, path):
            return _PRECONDITION
        return super().do_DELETE(environ, base_prefix, path, user, *args)  # type: ignore[misc]

    def do_PROPFIND(self, environ: Any, base_prefix: str, path: str, user: str, *args: Any) -> Any:
        answer = super().do_PROPFIND(environ, base_prefix, path, user, *args)  # type: ignore[misc]
        return self._tag_property(answer, base_prefix)

    def do_REPORT(self, environ: Any, base_prefix: str, path: str, user: str, *args: Any) -> Any:
        answer = super().do_REPORT(environ, base_prefix, path, user, *args)  # type: ignore[misc]
        return self._tag_property(answer, base_prefix)

    def _tag_property(self, answer: Any, base_prefix: str) -> Any:
        """Fill in CALDAV:schedule-tag where Radicale answered it 404 (it knows no such
        property) for a scheduling object; other objects keep the 404 (RFC 6638 3.2.10)."""
        status, headers, body = answer[:3]
        request = answer[3] if len(answer) > 3 else None
        if status != client.MULTI_STATUS or "schedule-tag" not in str(request or ""):
            return answer
        try:
            root = ET.fromstring(body)
        except (ET.ParseError, TypeError):
            return answer
        tags: dict[tuple[str, str], dict[str, str]] = {}
        for response in root.iter("{DAV:}response"):
            href = response.findtext("{DAV:}href") or ""
            parts = unquote(urlparse(href).path)[len(base_prefix) :].strip("/").split("/")
            if len(parts) != 3:
                continue
            key = (parts[0], parts[1])
            if key not in tags:
                tags[key] = self._tags_in(*key)
            tag = tags[key].get(parts[2])
            if tag is not None:
                _move_to_ok(response, tag)
        return status, headers, ET.tostring(root, encoding="utf-8", xml_declaration=True), request

    def _tags_in(self, username: str, calendar: str) -> dict[str, str]:
        with self._storage.session() as session:
            provider = dav.provider_by_dav_username(session, username)
            return {} if provider is None else dav_scheduling.tags_in(session, provider, calendar)


def _move_to_ok(response: ET.Element, tag: str) -> None:
    ok = None
    for propstat in response.findall("{DAV:}propstat"):
        prop = propstat.find("{DAV:}prop")
        state = propstat.findtext("{DAV:}status") or ""
        if prop is None:
            continue
        if " 200 " in f"{state} ":
            ok = prop
        found = prop.find(SCHEDULE_TAG)
        if found is not None and " 404" in state:
            prop.remove(found)
            if len(prop) == 0:
                response.remove(propstat)
    if ok is None:
        propstat = ET.SubElement(response, "{DAV:}propstat")
        ok = ET.SubElement(propstat, "{DAV:}prop")
        ET.SubElement(propstat, "{DAV:}status").text = "HTTP/1.1 200 OK"
    if ok.find(SCHEDULE_TAG) is None:
        ET.SubElement(ok, SCHEDULE_TAG).text = f'"{tag}"'


# --- what the storage calls, inside its transaction ------------------------------------------


def mailer_of(store: Any) -> Mailer:
    """The storage's Mailer (built once: the organizer mailboxes, links, keys)."""
    found = getattr(store, "_itip_mailer", None)
    if found is None:
        found = store._itip_mailer = Mailer.from_runtime(store.runtime)
    return found  # type: ignore[no-any-return]


def before_put(store: Any, session: Session, calendar: DavCalendar, href: str, text: str) -> str:
    """The text to store at href once its scheduling is done (mail queued in the outbox)."""
    stored = dav_scheduling.on_put(session, mailer_of(store), calendar, href, text, store.now())
    store._local.itip_rewritten = stored != text
    return stored


def before_delete(store: Any, session: Session, calendar: DavCalendar, href: str | None) -> None:
    """CANCELs for the object at href (or every scheduled one of the calendar) going away."""
    if href is None:
        dav_scheduling.on_calendar_delete(session, mailer_of(store), calendar, store.now())
    else:
        dav_scheduling.on_delete(session, mailer_of(store), calendar, href, store.now())


def after_move(
    session: Session, source: DavCalendar, href: str, target: DavCalendar, to_href: str
) -> None:
    dav_scheduling.on_move(session, source, posixpath.basename(href), target, to_href)
