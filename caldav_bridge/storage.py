"""Radicale storage over Parley's database: /<dav_username>/<calendar>/<href>.

One database transaction per acquire_lock (a thread-local session). Collections compute
what Radicale reads after releasing the lock (ETag, ctag, sync token, meta) while they
are discovered; anything read later opens its own short read transaction.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import vobject
from radicale import config, pathutils, storage
from radicale import item as radicale_item
from radicale.item import filter as radicale_filter
from sqlalchemy.orm import Session

from caldav_bridge import feeds, itip, limits, scheduling
from caldav_bridge.errors import BudgetExceeded
from core.db.models import Booking, DavCalendar, DavObject, Hold, Provider
from core.runtime import Runtime
from core.services import dav
from core.services.errors import ReadOnlyCalendar, ServiceError

SYNC_PREFIX = "http://parley.invalid/ns/sync/"
BLOCKING_PROP = "{urn:parley:caldav}blocking"
_RECURRING = re.compile(r"^(RRULE|RDATE|EXRULE)[:;]", re.MULTILINE)
_TIMES = re.compile(r"^(DTSTART|DTEND|DUE|RECURRENCE-ID)([;:][^\r\n]*)$", re.MULTILINE)
# Bookings rows written just before a sync token was issued may commit just after it:
# a delta re-sends what changed within this margin (RFC 6578 allows extra members).
_SYNC_MARGIN = timedelta(minutes=2)
_COMPONENT_SET = "C:supported-calendar-component-set"
_COMPONENTS = re.compile(r"^BEGIN:(VEVENT|VTODO|VJOURNAL)\r?$", re.MULTILINE)


def http_date(moment: datetime | None) -> str:
    return feeds.http_date(moment or datetime(2000, 1, 1, tzinfo=UTC))


class ParleyStorage(storage.BaseStorage):
    """The storage plugin; build it with functools.partial(ParleyStorage, runtime=…)."""

    _supports_unicode = True

    def __init__(self, configuration: config.Configuration, runtime: Runtime) -> None:
        super().__init__(configuration)
        self.runtime = runtime
        self._local = threading.local()

    # --- transactions ---------------------------------------------------------------------

    @contextmanager  # type: ignore[override]
    def acquire_lock(self, mode: str, user: str = "", *args: Any, **kwargs: Any) -> Iterator[None]:
        with self.runtime.sessions() as session, session.begin():
            self._local.session, self._local.user = session, user
            try:
                if mode == "w" and user:
                    provider = dav.provider_by_dav_username(session, user)
                    if provider is not None:
                        dav.lock_provider(session, provider.id)
                yield
            finally:
                self._local.session = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """The locked request's session, or a short transaction of its own after the lock."""
        current: Session | None = getattr(self._local, "session", None)
        if current is not None:
            yield current
            return
        with self.runtime.sessions() as session, session.begin():
            yield session

    def now(self) -> datetime:
        return self.runtime.clock()

    # --- discovery ------------------------------------------------------------------------

    def discover(
        self,
        path: str,
        depth: str = "0",
        child_context_manager: Callable[[str, str | None], Any] | None = None,
        user_groups: set[str] | None = None,
    ) -> Iterable[Any]:
        parts = [p for p in pathutils.strip_path(path).split("/") if p]
        with self.session() as session:
            if not parts:
                yield from self._discover_root(session, depth)
                return
            provider = dav.provider_by_dav_username(session, parts[0])
            if provider is None or len(parts) > 3:
                return
            if len(parts) == 1:
                yield PrincipalCollection(self, provider.dav_username)
                if depth != "0":
                    yield from self._calendars(session, provider)
                return
            if parts[1] == scheduling.OUTBOX:
                if len(parts) == 2:
                    yield OutboxCollection(self, f"{provider.dav_username}/{parts[1]}")
                return
            calendar = self._calendar(session, provider, parts[1])
            if calendar is None:
                return
            if len(parts) == 2:
                yield calendar
                if depth != "0":
                    yield from calendar.get_all()
                return
            for _, item in calendar.get_multi([parts[2]]):
                if item is not None:
                    yield item

    def _discover_root(self, session: Session, depth: str) -> Iterator[Any]:
        yield RootCollection(self)
        user = getattr(self._local, "user", "")
        if depth != "0" and user and dav.provider_by_dav_username(session, user) is not None:
            yield PrincipalCollection(self, user)

    def _calendars(self, session: Session, provider: Provider) -> Iterator[CalendarCollection]:
        for row in dav.ensure_calendars(session, provider, self.now()):
            yield make_calendar(self, session, provider, row)

    def _calendar(self, session: Session, provider: Provider, name: str) -> Any:
        if name == scheduling.INBOX:
            inbox = dav.ensure_inbox(session, provider, self.now())
            return make_calendar(self, session, provider, inbox)
        rows = [r for r in dav.ensure_calendars(session, provider, self.now()) if r.name == name]
        return make_calendar(self, session, provider, rows[0]) if rows else None

    # --- writes ---------------------------------------------------------------------------

    def create_collection(
        self,
        href: str,
        items: Iterable[radicale_item.Item] | None = None,
        props: Mapping[str, str] | None = None,
    ) -> tuple[storage.BaseCollection, dict[str, radicale_item.Item], list[str]]:
        parts = [p for p in pathutils.strip_path(href).split("/") if p]
        if len(parts) != 2 or (props or {}).get("tag") != "VCALENDAR":
            raise ValueError("only calendars can be created here: /<user>/<calendar>/")
        with self.session() as session:
            provider = dav.provider_by_dav_username(session, parts[0])
            if provider is None:
                raise ValueError(f"no principal {parts[0]!r}")
            row = dav.get_calendar(session, provider.id, parts[1])
            with refused():
                if row is None:
                    row = dav.create_calendar(
                        session, provider, parts[1], _plain_props(props), self.now()
                    )
                collection = make_calendar(self, session, provider, row)
            if not isinstance(collection, StoredCalendar):
                raise ValueError(f"the {parts[1]!r} calendar is read-only")
            replaced = collection.replace_all(session, list(items or ()))
            return collection, replaced, [i.href for i in items or () if i.href]

    def move(
        self, item: radicale_item.Item, to_collection: storage.BaseCollection, to_href: str
    ) -> None:
        source = item.collection
        if not isinstance(source, StoredCalendar) or not isinstance(to_collection, StoredCalendar):
            raise ValueError("events can only be moved between your own writable calendars")
        with self.session() as session, refused():
            dav.move_object(session, source.row, item.href or "", to_collection.row, to_href)
            itip.after_move(session, source.row, item.href or "", to_collection.row, to_href)

    def verify(self) -> bool:
        return True


def as_radicale_error(error: ServiceError) -> ValueError:
    """A service's refusal as Radicale takes it: a ValueError, which it answers with a
    4xx; the message is the service's, so a calendar app can show why."""
    return ValueError(error.message)


@contextmanager
def refused() -> Iterator[None]:
    """Every ServiceError raised inside becomes ``as_radicale_error`` of it."""
    try:
        yield
    except ServiceError as exc:
        raise as_radicale_error(exc) from exc


def _plain_props(props: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (props or {}).items() if k != "tag"}


def make_calendar(
    store: ParleyStorage, session: Session, provider: Provider, row: DavCalendar
) -> CalendarCollection:
    kinds: dict[str, type[CalendarCollection]] = {
        "bookings": BookingsCalendar,
        "holds": HoldsCalendar,
        "inbox": InboxCalendar,
    }
    return kinds.get(row.kind, StoredCalendar)(store, session, provider, row)


# --- collections ----------------------------------------------------------------------------


class _Plain(storage.BaseCollection):
    """A collection that is no calendar: the root and a provider's principal."""

    def __init__(self, store: ParleyStorage, path: str) -> None:
        self._store, self._path = store, path

    @property
    def path(self) -> str:
        return self._path

    @property
    def etag(self) -> str:
        return f'"{self._path or "root"}"'

    @property
    def last_modified(self) -> str:
        return http_date(None)

    def get_meta(self, key: str | None = None) -> Any:
        return None if key is not None else {}

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, radicale_item.Item | None]]:
        return [(href, None) for href in hrefs]

    def get_all(self) -> Iterable[radicale_item.Item]:
        return []

    def set_meta(self, props: Mapping[str, str]) -> None:
        raise ValueError("properties of this collection cannot be changed")

    def upload(self, href: str, item: radicale_item.Item) -> Any:
        raise ValueError("events belong in a calendar")

    def delete(self, href: str | None = None) -> None:
        raise ValueError("this collection cannot be deleted")


class RootCollection(_Plain):
    def __init__(self, store: ParleyStorage) -> None:
        super().__init__(store, "")


class PrincipalCollection(_Plain):
    pass


class OutboxCollection(_Plain):
    """The provider's schedule outbox (RFC 6638): no items, the target of free-busy POSTs."""


class CalendarCollection(storage.BaseCollection):
    """A provider's calendar; subclasses say where its items come from."""

    component_set: ClassVar[str] = "VEVENT"

    def __init__(
        self, store: ParleyStorage, session: Session, provider: Provider, row: DavCalendar
    ) -> None:
        self._store, self.row = store, row
        self.provider_id, self.tz = provider.id, provider.timezone
        self._path = f"{provider.dav_username}/{row.name}"
        self._meta = self._load_meta()
        self._etag, self._token, self._modified = self._load_state(session)

    @property
    def path(self) -> str:
        return self._path

    @property
    def etag(self) -> str:
        return f'"{self._etag}"'

    @property
    def last_modified(self) -> str:
        return http_date(self._modified)

    def _load_meta(self) -> dict[str, str]:
        meta = {k: str(v) for k, v in (self.row.props or {}).items()}
        meta["tag"] = "VCALENDAR"
        # A calendar made by MKCALENDAR keeps the component set it asked for (RFC 4791 5.2.3).
        meta[_COMPONENT_SET] = meta.get(_COMPONENT_SET) or self.component_set
        meta[BLOCKING_PROP] = "true" if self.row.blocking else "false"
        return meta

    def _load_state(self, session: Session) -> tuple[str, str, datetime | None]:
        raise NotImplementedError

    def get_meta(self, key: str | None = None) -> Any:
        return dict(self._meta) if key is None else self._meta.get(key)

    def set_meta(self, props: Mapping[str, str]) -> None:
        wanted = {k: v for k, v in props.items() if k not in ("tag", BLOCKING_PROP)}
        wanted.pop(_COMPONENT_SET, None)
        if self.row.props and self.row.props.get(_COMPONENT_SET):
            wanted[_COMPONENT_SET] = self.row.props[_COMPONENT_SET]  # set once, at creation
        removed = {k: "" for k in self.row.props if k not in wanted}
        with self._store.session() as session:
            row = session.merge(self.row)
            dav.set_props(session, row, {**removed, **wanted})
            blocking = props.get(BLOCKING_PROP, "").strip().lower()
            if blocking in ("true", "false") and row.kind not in dav.READ_ONLY_KINDS:
                row.blocking = blocking == "true"
            self.row = row

    def _item(
        self, href: str, text: str, etag: str, uid: str, modified: datetime | None
    ) -> radicale_item.Item:
        return radicale_item.Item(
            collection_path=self._path,
            collection=self,
            href=href,
            last_modified=http_date(modified),
            text=text,
            etag=f'"{etag}"',
            uid=uid,
            # Known from the text, as Radicale's cache knows it: asking the item would parse
            # it, and the shallow copies C:expand makes would then share (and spoil) one tree.
            component_name=_component(text) or None,
        )

    def get_filtered(self, filters: Iterable[Any]) -> Iterable[tuple[radicale_item.Item, bool]]:
        tag, start, end, simple = radicale_filter.simplify_prefilters(filters, "VCALENDAR")
        if start <= radicale_filter.TIMESTAMP_MIN and end >= radicale_filter.TIMESTAMP_MAX:
            # As Radicale's own storage does: a simple filter is fully answered by the
            # component tag. Reporting it unmatched makes Radicale re-test the item, which
            # leaves a recurring event without its master and breaks a later C:expand.
            items = self.get_all()
            return [(i, simple) for i in items if tag is None or _component(i.serialize()) == tag]
        return self._in_range(tag, _from_ts(start), _from_ts(end), simple)

    def _in_range(
        self, tag: str | None, start: datetime, end: datetime, simple: bool
    ) -> Iterable[tuple[radicale_item.Item, bool]]:
        raise NotImplementedError

    def _read_only(self) -> ValueError:
        return as_radicale_error(ReadOnlyCalendar(self.row.name))

    def upload(self, href: str, item: radicale_item.Item) -> Any:
        raise self._read_only()

    def delete(self, href: str | None = None) -> None:
        raise self._read_only()


def _from_ts(value: int) -> datetime:
    low, high = radicale_filter.TIMESTAMP_MIN, radicale_filter.TIMESTAMP_MAX
    return datetime.fromtimestamp(min(max(value, low + 86400), high - 86400), UTC)


class StoredCalendar(CalendarCollection):
    """blocks and calendars the provider made: objects in dav_objects, changes in dav_changes."""

    component_set = "VEVENT,VTODO,VJOURNAL"

    def _load_state(self, session: Session) -> tuple[str, str, datetime | None]:
        token = f"{SYNC_PREFIX}{self.row.id}/{self.row.revision}"
        return dav.calendar_tag(self.row), token, self.row.created_at

    def _items(self, rows: Iterable[DavObject]) -> list[radicale_item.Item]:
        return [self._item(r.href, r.ics, r.etag, r.uid, r.updated_at) for r in rows]

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, radicale_item.Item | None]]:
        wanted = list(hrefs)
        with self._store.session() as session:
            found = {i.href: i for i in self._items(dav.get_objects(session, self.row.id, wanted))}
        return [(href, found.get(href)) for href in dict.fromkeys(wanted)]

    def get_all(self) -> Iterable[radicale_item.Item]:
        with self._store.session() as session:
            return self._items(dav.all_objects(session, self.row.id))

    def _in_range(
        self, tag: str | None, start: datetime, end: datetime, simple: bool
    ) -> Iterable[tuple[radicale_item.Item, bool]]:
        with self._store.session() as session:
            rows = dav.objects_in_range(session, [self.row.id], start, end)
        out = []
        for row in rows:
            component = _component(row.ics)
            if tag is not None and component != tag:
                continue
            item = self._item(row.href, row.ics, row.etag, row.uid, row.updated_at)
            if not row.recurring:
                out.append((item, simple))
                continue
            meets = _recurring_meets(row.ics, tag, start, end)
            if meets is None:
                out.append((item, False))  # Radicale tests it, under the request's budget
            elif meets:
                out.append((item, simple))
        return out

    def has_uid(self, uid: str) -> bool:
        with self._store.session() as session:
            return dav.has_uid(session, self.row.id, uid)

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        if not old_token:
            return self._token, (i.href or "" for i in self.get_all())
        prefix = f"{SYNC_PREFIX}{self.row.id}/"
        revision = old_token[len(prefix) :] if old_token.startswith(prefix) else ""
        if not revision.isdigit() or int(revision) > self.row.revision:
            raise ValueError(f"unknown sync token {old_token!r}")
        if int(revision) == self.row.revision:
            return self._token, []
        with self._store.session() as session:
            return self._token, dav.changes_since(session, self.row.id, int(revision))

    def upload(self, href: str, item: radicale_item.Item) -> Any:
        text = item.serialize()
        with self._store.session() as session:
            old = dav.get_objects(session, self.row.id, [href])
            replaced = self._items(old)[0] if old else None
            row = session.merge(self.row)
            with refused():
                text = itip.before_put(self._store, session, row, href, text)
                obj, _ = dav.put_object(
                    session,
                    row,
                    href,
                    text,
                    uid=item.uid,
                    span=_span(item, text),
                    now=self._store.now(),
                )
            self.row = row
            return self._item(href, text, obj.etag, obj.uid, obj.updated_at), replaced

    def delete(self, href: str | None = None) -> None:
        with self._store.session() as session:
            row = session.merge(self.row)
            with refused():
                itip.before_delete(self._store, session, row, href)
                if href is None:
                    dav.delete_calendar(session, row)
                    return
                if not dav.delete_object(session, row, href):
                    raise storage.ComponentNotFoundError(href)
            self.row = row

    def replace_all(
        self, session: Session, items: list[radicale_item.Item]
    ) -> dict[str, radicale_item.Item]:
        """PUT of a whole calendar: its objects become exactly items."""
        if not items:
            return {}
        old = {i.href or "": i for i in self._items(dav.all_objects(session, self.row.id))}
        row = session.merge(self.row)
        for href in old:
            dav.delete_object(session, row, href)
        for item in items:
            href = item.href or f"{item.uid}.ics"
            text = item.serialize()
            dav.put_object(
                session,
                row,
                href,
                text,
                uid=item.uid,
                span=_span(item, text),
                now=self._store.now(),
            )
        self.row = row
        return old


class InboxCalendar(StoredCalendar):
    """The provider's schedule inbox (RFC 6638 §2.2): Parley delivers iTIP messages into it
    (dav.put_object); a calendar app reads and deletes them but does not write them."""

    def upload(self, href: str, item: radicale_item.Item) -> Any:
        raise ValueError("the schedule inbox is written by Parley; save events in a calendar")

    def replace_all(
        self, session: Session, items: list[radicale_item.Item]
    ) -> dict[str, radicale_item.Item]:
        if items:
            raise ValueError("the schedule inbox is written by Parley; save events in a calendar")
        return {}


def _recurring_meets(text: str, tag: str | None, start: datetime, end: datetime) -> bool | None:
    """Whether a recurring object has an instance in [start, end), found within one event's
    recurrence budget (caldav_bridge.limits). An object too costly to decide counts as
    meeting the range: a calendar-query (a calendar app's sync) may return an extra
    object, but never fails or loops for long.
    None when it cannot be told here (no component filter, unreadable text)."""
    if tag is None:
        return None
    if limits.too_costly(text, end):
        return True
    try:
        component = vobject.readOne(text)
    except Exception:
        return None
    met = False

    def range_fn(first: datetime, last: datetime, is_override: bool) -> bool:
        nonlocal met
        if start < _aware(last) and _aware(first) < end:
            met = True
            return True
        return end < _aware(first) and not is_override

    try:
        with limits.budget("event", limits.item_steps()):
            radicale_filter.visit_time_ranges(component, tag, range_fn, lambda _: False)
    except BudgetExceeded:
        return True  # also once the request's budget is gone: no more walking, no failure
    except (ValueError, AttributeError, TypeError):
        return None
    return met


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _component(text: str) -> str:
    match = _COMPONENTS.search(text)
    return match.group(1) if match else ""


def _span(item: radicale_item.Item, text: str) -> dav.ObjectSpan:
    """The object's UTC envelope from Radicale's own reading; inexact when it recurs or
    uses floating or all-day times (the stored span is then widened and re-checked)."""
    start_ts, end_ts = item.time_range
    start = None if start_ts <= radicale_filter.TIMESTAMP_MIN else _from_ts(start_ts)
    end = None if end_ts >= radicale_filter.TIMESTAMP_MAX else _from_ts(end_ts)
    if start is not None and end is not None and end <= start:
        end = start + timedelta(seconds=1)  # an instant still meets a range it lies in
    floating = any(
        not value.endswith("Z") and "TZID=" not in params.upper()
        for params, value in (_split_value(m.group(2)) for m in _TIMES.finditer(text))
    )
    return dav.ObjectSpan(start, end, exact=not (_RECURRING.search(text) or floating))


def _split_value(rest: str) -> tuple[str, str]:
    params, _, value = rest.rpartition(":")
    return params, value.strip()


class BookingsCalendar(CalendarCollection):
    """Confirmed and requested bookings, generated from the bookings table (read-only)."""

    def _load_state(self, session: Session) -> tuple[str, str, datetime | None]:
        count, newest = dav.bookings_state(session, self.provider_id)
        micros = int(newest.timestamp() * 1_000_000) if newest else 0
        token = f"{SYNC_PREFIX}{self.row.id}/b{count}-{micros}"
        return dav.calendar_tag(self.row, token), token, newest

    def _items(self, bookings: Iterable[Booking]) -> list[radicale_item.Item]:
        out = []
        for booking in bookings:
            text = feeds.event_object(feeds.booking_event(booking))
            etag = radicale_item.get_etag(text).strip('"')
            out.append(self._item(f"{booking.id}.ics", text, etag, booking.uid, booking.updated_at))
        return out

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, radicale_item.Item | None]]:
        wanted = list(dict.fromkeys(hrefs))
        ids = [h.removesuffix(".ics") for h in wanted]
        with self._store.session() as session:
            rows = dav.bookings_by_ids(session, self.provider_id, ids)
        found = {i.href: i for i in self._items(rows)}
        return [(href, found.get(href)) for href in wanted]

    def get_all(self) -> Iterable[radicale_item.Item]:
        with self._store.session() as session:
            return self._items(dav.bookings_in_range(session, self.provider_id))

    def _in_range(
        self, tag: str | None, start: datetime, end: datetime, simple: bool
    ) -> Iterable[tuple[radicale_item.Item, bool]]:
        if tag not in (None, "VEVENT"):
            return []
        with self._store.session() as session:
            rows = dav.bookings_in_range(session, self.provider_id, start, end)
        return [(item, simple) for item in self._items(rows)]

    def has_uid(self, uid: str) -> bool:
        return any(item.uid == uid for item in self.get_all())

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        if not old_token:
            return self._token, (i.href or "" for i in self.get_all())
        count, micros = _booking_token(old_token, f"{SYNC_PREFIX}{self.row.id}/b")
        if old_token == self._token:
            return self._token, []
        since = datetime.fromtimestamp(micros / 1_000_000, UTC) - _SYNC_MARGIN
        with self._store.session() as session:
            now_count, _ = dav.bookings_state(session, self.provider_id)
            if now_count < count:
                raise ValueError("bookings were removed since this token; sync again in full")
            ids = dav.booking_ids_changed_since(session, self.provider_id, since)
        return self._token, [f"{i}.ics" for i in ids]


def _booking_token(token: str, prefix: str) -> tuple[int, int]:
    count, _, micros = token.removeprefix(prefix).partition("-")
    if not token.startswith(prefix) or not count.isdigit() or not micros.isdigit():
        raise ValueError(f"unknown sync token {token!r}")
    return int(count), int(micros)


class HoldsCalendar(CalendarCollection):
    """Active holds, when the provider shows them (read-only)."""

    def _load_state(self, session: Session) -> tuple[str, str, datetime | None]:
        self._holds = dav.active_holds(session, self.provider_id, self._store.now())
        fingerprint = ",".join(f"{h.id}:{h.start_at}:{h.end_at}" for h in self._holds)
        tag = dav.calendar_tag(self.row, fingerprint)
        return tag, f"{SYNC_PREFIX}{self.row.id}/h{tag[:32]}", None

    def _items(self, holds: Iterable[Hold]) -> list[radicale_item.Item]:
        out = []
        for hold in holds:
            text = feeds.event_object(feeds.hold_event(hold))
            etag = radicale_item.get_etag(text).strip('"')
            out.append(self._item(f"{hold.id}.ics", text, etag, f"{hold.id}@parley-hold", None))
        return out

    def get_multi(self, hrefs: Iterable[str]) -> Iterable[tuple[str, radicale_item.Item | None]]:
        found = {i.href: i for i in self._items(self._holds)}
        return [(href, found.get(href)) for href in dict.fromkeys(hrefs)]

    def get_all(self) -> Iterable[radicale_item.Item]:
        return self._items(self._holds)

    def _in_range(
        self, tag: str | None, start: datetime, end: datetime, simple: bool
    ) -> Iterable[tuple[radicale_item.Item, bool]]:
        holds = [h for h in self._holds if h.start_at < end and h.end_at > start]
        return [(item, simple) for item in self._items(holds)] if tag in (None, "VEVENT") else []

    def sync(self, old_token: str = "") -> tuple[str, Iterable[str]]:
        if old_token and old_token != self._token:
            # Holds come and go within minutes; a full listing is cheaper than a log.
            raise ValueError("holds changed since this token; sync again in full")
        return self._token, ([] if old_token else [i.href or "" for i in self.get_all()])
