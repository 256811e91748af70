"""read_feed: an external calendar body → the events touching a window, in UTC.

The body is scanned as text first: VEVENT spans are found with str.find, and a single
event whose DTSTART/DTEND date strings lie outside the window (with two days of slack
for any UTC offset) is counted and dropped without being parsed. Only the survivors
are read property by property, and only series that can touch the window are expanded.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import icalendar

import core.feeds.lines as lines
import core.feeds.recurrence as recurrence
from core.feeds.errors import EmptyFeed, InvalidRequest, NotACalendar, TooManyEvents, TruncatedFeed
from core.feeds.events import CalendarProps, FeedEvent, FeedResult, content_hash
from core.feeds.lines import Prop
from core.feeds.platforms import ROLLING_HORIZON_MIN_DAYS, detect, feed_platform
from core.feeds.zones import ZoneBook
from core.tzids import zone_for_tzid

DESCRIPTION_EXCERPT_CHARS = 500
_SLACK = timedelta(days=2)  # covers any UTC offset (−12 … +14 h) plus a one-day default end
_DAY = timedelta(days=1)
_HORIZON = timedelta(days=ROLLING_HORIZON_MIN_DAYS)
_CAL_PROP = re.compile(r"^(PRODID|X-WR-TIMEZONE|X-WR-CALNAME)(?:;[^:\n]*)?:(.*)$", re.MULTILINE)
_UNTIL = re.compile(r"UNTIL=(\d{8})", re.IGNORECASE)
_COUNT = re.compile(r"COUNT=(\d+)", re.IGNORECASE)
_INTERVAL = re.compile(r"INTERVAL=(\d+)", re.IGNORECASE)
_FREQ = re.compile(r"FREQ=([A-Z]+)", re.IGNORECASE)
_PERIOD_DAYS = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}


def read_feed(
    body: bytes,
    *,
    window_start: datetime,
    window_end: datetime,
    default_zone: str,
    max_events: int,
) -> FeedResult:
    """Events of body touching [window_start, window_end), bad events skipped and counted.

    Raises EmptyFeed, NotACalendar or TruncatedFeed when the body is unusable,
    TooManyEvents when it holds or expands to more than max_events events, and
    InvalidRequest for a naive or empty window or an unknown default_zone.
    """
    floating = _check_request(window_start, window_end, default_zone)
    text = calendar_text(body)
    found: dict[str, str] = {}
    for match in _CAL_PROP.finditer(text):
        found.setdefault(match.group(1), match.group(2).strip())
    xwr = found.get("X-WR-TIMEZONE") or None
    xwr_zone = zone_for_tzid(xwr) if xwr else None
    zone_name = xwr_zone.key if xwr_zone is not None else floating.key
    props = CalendarProps(
        prodid=found.get("PRODID"),
        x_wr_timezone=xwr,
        x_wr_calname=lines.unescape(found["X-WR-CALNAME"]) if "X-WR-CALNAME" in found else None,
        platform=feed_platform(found.get("PRODID"), _calendar_x_names(text)),
        floating_zone=zone_name,
    )
    reader = _Reader(text, props, xwr_zone or floating, (window_start, window_end), max_events)
    if xwr and xwr_zone is None:
        reader.warnings["unknown_x_wr_timezone"] += 1
    return reader.run()


def calendar_text(body: bytes) -> str:
    """The body decoded and unfolded; raises when it is not a whole VCALENDAR."""
    if not body.strip():
        raise EmptyFeed("feed body is empty")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    text = lines.unfold(text)
    head = text.lstrip()[:15].upper()
    if head != "BEGIN:VCALENDAR":
        raise NotACalendar(_sniff(text))
    if "BEGIN:VCALENDAR" not in text:
        text = re.sub(r"(?im)^(begin|end):([a-z-]+)[ \t]*$", lambda m: m.group(0).upper(), text)
    last = text.rfind("\nEND:VCALENDAR")
    if last < 0 or text.rfind("\nBEGIN:VEVENT") > last:
        raise TruncatedFeed("feed ends before END:VCALENDAR")
    return text


def _sniff(text: str) -> str:
    start = text.lstrip()[:200].lower()
    if start.startswith(("<!doctype html", "<html")) or "<head" in start or "<body" in start:
        return "HTML"
    if start.startswith(("<?xml", "<")):
        return "XML"
    if start.startswith(("{", "[")):
        return "JSON"
    return "text"


def _check_request(start: datetime, end: datetime, zone: str) -> ZoneInfo:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidRequest("window bounds must be time-zone aware")
    if end <= start:
        raise InvalidRequest("window_end must be after window_start")
    found = zone_for_tzid(zone)
    if found is None:
        raise InvalidRequest(f"default_zone {zone!r} is not a known time zone")
    return found


def _calendar_x_names(text: str) -> list[str]:
    first = text.find("\nBEGIN:", 1)
    head = text[: first if first >= 0 else len(text)]
    return [line.partition(":")[0] for line in head.split("\n") if line.startswith("X-")]


@dataclass(slots=True)
class _Series:
    """A recurring master's spans and its overrides' spans, under one UID."""

    spans: list[tuple[int, int]]
    may_touch: bool = False
    too_frequent: bool = False


class _Reader:
    """One pass over one feed body; holds the counters the result reports."""

    def __init__(
        self,
        text: str,
        props: CalendarProps,
        floating: tzinfo,
        window: tuple[datetime, datetime],
        max_events: int,
    ) -> None:
        self.text, self.props, self.floating = text, props, floating
        self.window = (window[0].astimezone(UTC), window[1].astimezone(UTC))
        self.lo = (self.window[0] - _SLACK).strftime("%Y%m%d")
        self.hi = (self.window[1] + _SLACK).strftime("%Y%m%d")
        self.max_events = max_events
        self.zones = ZoneBook(text)
        self.skips: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.outside = 0
        self.feed_last_end = ""
        self.vevents = 0

    def run(self) -> FeedResult:
        singles, series = self._classify()
        events = [e for e in (self._single(span) for span in singles) if e is not None]
        events += self._expand(series)
        events = [e for e in events if self._touches(e.start, e.end)]
        if len(events) > self.max_events:
            raise TooManyEvents(len(events), self.max_events)
        events.sort(key=lambda e: (e.start, e.end, e.uid, e.recurrence_id or ""))
        return FeedResult(
            events=events,
            skipped=sum(self.skips.values()),
            skip_reasons=dict(self.skips),
            warnings=dict(self.warnings),
            calendar_props=self.props,
            vevents=self.vevents,
            outside_window=self.outside,
        )

    # -- the cheap scan -------------------------------------------------------------------

    def _classify(self) -> tuple[list[tuple[int, int]], dict[str, _Series]]:
        text, first = self.text, lines.first_line
        series: dict[str, _Series] = {}
        overrides: list[tuple[str, tuple[int, int]]] = []
        singles: list[tuple[int, int]] = []
        for span in lines.spans(text, "VEVENT"):
            self.vevents += 1
            if self.vevents > self.max_events:
                raise TooManyEvents(self.vevents, self.max_events)
            s, e = span
            if first(text, s, e, "RECURRENCE-ID") is not None:
                overrides.append((self._uid_of(span), span))
            elif first(text, s, e, "RRULE") is not None or first(text, s, e, "RDATE") is not None:
                master = series.setdefault(self._uid_of(span), _Series([]))
                master.spans.insert(0, span)
                master.may_touch = master.may_touch or self._series_may_touch(span)
                master.too_frequent = master.too_frequent or self._too_frequent(span)
            elif self._may_touch(span):
                singles.append(span)
        for uid, span in overrides:
            if uid in series:
                series[uid].spans.append(span)
                series[uid].may_touch = series[uid].may_touch or self._may_touch(span, count=False)
            elif self._may_touch(span):
                singles.append(span)  # an override whose master the feed does not carry
        return singles, series

    def _uid_of(self, span: tuple[int, int]) -> str:
        line = lines.first_line(self.text, span[0], span[1], "UID")
        return line.partition(":")[2].strip() if line else f"@{span[0]}"

    def _may_touch(self, span: tuple[int, int], *, count: bool = True) -> bool:
        """False only when the date strings prove the event misses the window."""
        s, e = span
        start_line = lines.first_line(self.text, s, e, "DTSTART")
        if start_line is None:
            return True  # let the full read count it as bad
        start = lines.value_of(start_line)[:8]
        end_line = lines.first_line(self.text, s, e, "DTEND")
        if not start.isdigit():
            return True
        if end_line is None:
            if lines.first_line(self.text, s, e, "DURATION") is not None:
                return True
            end = start
        else:
            end = lines.value_of(end_line)[:8]
            if not end.isdigit():
                return True
            self.feed_last_end = max(self.feed_last_end, end)
        if start >= self.hi or end < self.lo:
            self.outside += count
            return False
        return True

    def _series_may_touch(self, span: tuple[int, int]) -> bool:
        """False when DTSTART is after the window or UNTIL/COUNT ends it before the window."""
        s, e = span
        text = self.text
        if lines.first_line(text, s, e, "RDATE") is not None:
            return True
        start_line, rule_line = (
            lines.first_line(text, s, e, "DTSTART"),
            lines.first_line(text, s, e, "RRULE"),
        )
        if start_line is None or rule_line is None:
            return True
        try:
            start = _as_date(lines.parse_date_value(lines.value_of(start_line)))
        except ValueError:
            return True
        if start.strftime("%Y%m%d") >= self.hi:
            return False
        last = _last_start(rule_line.partition(":")[2], start)
        if last is None:
            return True
        span_days = self._span_days(span, start)
        return (last + span_days).strftime("%Y%m%d") >= self.lo

    def _span_days(self, span: tuple[int, int], start: date) -> timedelta:
        line = lines.first_line(self.text, span[0], span[1], "DTEND")
        if line is not None:
            try:
                return _as_date(lines.parse_date_value(lines.value_of(line))) - start + _DAY
            except ValueError:
                pass
        line = lines.first_line(self.text, span[0], span[1], "DURATION")
        if line is not None:
            try:
                return abs(lines.parse_duration(line.partition(":")[2])) + _DAY
            except ValueError:
                pass
        return _DAY

    def _too_frequent(self, span: tuple[int, int]) -> bool:
        rule = lines.first_line(self.text, span[0], span[1], "RRULE")
        return rule is not None and recurrence.UNSUPPORTED_FREQ.search(rule) is not None

    def _touches(self, start: datetime, end: datetime) -> bool:
        lo, hi = self.window
        if start == end:
            return lo <= start < hi
        return start < hi and end > lo

    # -- single events --------------------------------------------------------------------

    def _single(self, span: tuple[int, int]) -> FeedEvent | None:
        found = lines.props(self.text, span[0], span[1])
        start_prop = _one(found, "DTSTART")
        if start_prop is None:
            return self._skip("missing_dtstart")
        try:
            raw_start = lines.parse_date_value(start_prop.value)
        except ValueError:
            return self._skip("bad_dtstart")
        try:
            start, end, all_day = self._times(found, start_prop, raw_start)
        except ValueError as error:
            return self._skip(str(error))
        recurrence_id = None
        rid = _one(found, "RECURRENCE-ID")
        if rid is not None:
            try:
                recurrence_id = self._recurrence_key(rid)
            except ValueError:
                return self._skip("bad_recurrence_id")
        end_prop = _one(found, "DTEND")
        at_horizon = (
            end_prop is not None
            and end_prop.value[:8] == self.feed_last_end
            and end - start >= _HORIZON
        )
        return self._event(found, start, end, all_day, recurrence_id, at_horizon)

    def _times(
        self, found: dict[str, list[Prop]], start_prop: Prop, raw: date | datetime
    ) -> tuple[datetime, datetime, bool]:
        end_prop, dur_prop = _one(found, "DTEND"), _one(found, "DURATION")
        duration = None
        if dur_prop is not None and end_prop is None:
            try:
                duration = lines.parse_duration(dur_prop.value)
            except ValueError:
                self.warnings["bad_duration"] += 1
        if not isinstance(raw, datetime):
            return self._all_day(raw, end_prop, duration)
        start = self._instant(start_prop, raw)
        if end_prop is not None:
            try:
                raw_end = lines.parse_date_value(end_prop.value)
            except ValueError:
                raise ValueError("bad_dtend") from None
            end = self._instant(end_prop, raw_end)
        elif duration is not None:
            end = _add_duration(start, duration, self._zone_of(start_prop))
        else:
            end = start
        if end < start:
            raise ValueError("end_before_start")
        return start, end, False

    def _all_day(
        self, first: date, end_prop: Prop | None, duration: timedelta | None
    ) -> tuple[datetime, datetime, bool]:
        last = first + _DAY
        if end_prop is not None:
            try:
                last = _as_date(lines.parse_date_value(end_prop.value))
            except ValueError:
                raise ValueError("bad_dtend") from None
        elif duration is not None:
            last = first + timedelta(days=duration.days)
        if last <= first:
            self.warnings["all_day_end_not_after_start"] += 1
            last = first + _DAY
        return self._midnight(first), self._midnight(last), True

    def _midnight(self, day: date) -> datetime:
        # fold=0 puts a midnight that falls in a DST gap at the first instant after it.
        return datetime.combine(day, time(0), tzinfo=self.floating).astimezone(UTC)

    def _zone_of(self, prop: Prop) -> tzinfo:
        if prop.value.strip().upper().endswith("Z"):
            return UTC
        tzid = prop.params.get("TZID")
        if not tzid:
            return self.floating
        zone = self.zones.zone(tzid)
        if zone is None:
            self.warnings["unknown_tzid"] += 1
            return self.floating
        return zone

    def _instant(self, prop: Prop, raw: date | datetime) -> datetime:
        if not isinstance(raw, datetime):
            return self._midnight(raw)
        return raw.replace(tzinfo=self._zone_of(prop)).astimezone(UTC)

    def _recurrence_key(self, prop: Prop) -> str:
        raw = lines.parse_date_value(prop.value)
        if not isinstance(raw, datetime):
            return raw.strftime("%Y%m%d")
        return self._instant(prop, raw).strftime("%Y%m%dT%H%M%SZ")

    def _skip(self, reason: str) -> FeedEvent | None:
        self.skips[reason] += 1
        return None

    def _event(
        self,
        found: dict[str, list[Prop]],
        start: datetime,
        end: datetime,
        all_day: bool,
        recurrence_id: str | None,
        at_horizon: bool,
    ) -> FeedEvent:
        text = {n: lines.unescape(p.value) for n in _TEXT_PROPS if (p := _one(found, n))}
        uid = text.get("UID", "").strip() or self._synthetic_uid(found)
        busy_status = text.get("X-MICROSOFT-CDO-BUSYSTATUS", "").strip().upper()
        return self._finish(
            uid=uid,
            recurrence_id=recurrence_id,
            start=start,
            end=end,
            all_day=all_day,
            summary=text.get("SUMMARY", ""),
            description=text.get("DESCRIPTION", ""),
            location=text.get("LOCATION", ""),
            status=text.get("STATUS", "").strip().upper(),
            transparent=text.get("TRANSP", "").strip().upper() == "TRANSPARENT"
            or busy_status == "FREE",
            sequence=self._sequence(text.get("SEQUENCE")),
            last_modified=_utc_stamp(text.get("LAST-MODIFIED")),
            dtstamp=_utc_stamp(text.get("DTSTAMP")),
            x_names=[n for n in found if n.startswith("X-")],
            at_horizon=at_horizon,
        )

    def _synthetic_uid(self, found: dict[str, list[Prop]]) -> str:
        self.warnings["missing_uid"] += 1
        seed = "|".join(p.value for n in ("DTSTART", "DTEND", "SUMMARY") if (p := _one(found, n)))
        return "parley-no-uid-" + hashlib.blake2b(seed.encode(), digest_size=10).hexdigest()

    def _sequence(self, value: str | None) -> int:
        if value is None:
            return 0
        try:
            return int(value.strip())
        except ValueError:
            self.warnings["bad_sequence"] += 1
            return 0

    def _finish(
        self,
        *,
        uid: str,
        recurrence_id: str | None,
        start: datetime,
        end: datetime,
        all_day: bool,
        summary: str,
        description: str,
        location: str,
        status: str,
        transparent: bool,
        sequence: int,
        last_modified: datetime | None,
        dtstamp: datetime | None,
        x_names: list[str],
        at_horizon: bool,
    ) -> FeedEvent:
        info = detect(
            uid=uid,
            summary=summary,
            description=description,
            feed=self.props.platform,
            x_names=x_names,
            at_horizon=at_horizon,
        )
        event = FeedEvent(
            uid=uid,
            recurrence_id=recurrence_id,
            start=start,
            end=end,
            all_day=all_day,
            summary=summary,
            description=description[:DESCRIPTION_EXCERPT_CHARS],
            location=location,
            status=status,
            transparent=transparent,
            sequence=sequence,
            last_modified=last_modified,
            dtstamp=dtstamp,
            platform=info,
        )
        return replace(event, content_hash=content_hash(event))

    # -- recurring series -----------------------------------------------------------------

    def _expand(self, series: dict[str, _Series]) -> list[FeedEvent]:
        groups: list[str] = []
        needed: set[str] = set()
        for one in series.values():
            if not one.may_touch:
                self.outside += len(one.spans)
                continue
            if one.too_frequent:
                self._skip("unsupported_frequency")
                continue
            raw = "".join(f"BEGIN:VEVENT\n{self.text[s:e]}\nEND:VEVENT\n" for s, e in one.spans)
            raw = recurrence.repair_rules(raw)
            groups.append(recurrence.rewrite_tzids(raw, lambda t: self._tzid_for(t, needed)))
        vtimezones = "".join(self.zones.vtimezone_text(t) or "" for t in sorted(needed))
        xwr = self.props.floating_zone if self.props.x_wr_timezone else None
        done = recurrence.expand(groups, vtimezones=vtimezones, x_wr_tz=xwr, window=self.window)
        if done.failed_series:
            self.skips["bad_recurrence"] += done.failed_series
        events = []
        for component in done.occurrences:
            event = self._occurrence(component)
            if event is not None:
                events.append(event)
                if len(events) > self.max_events:
                    raise TooManyEvents(len(events), self.max_events)
        return events

    def _tzid_for(self, tzid: str, needed: set[str]) -> str | None:
        known = zone_for_tzid(tzid)
        if known is not None:
            return known.key
        if self.zones.vtimezone_text(tzid) is not None:
            needed.add(tzid)
            return tzid
        self.warnings["unknown_tzid"] += 1
        return None  # read as floating, in the calendar's zone

    def _occurrence(self, component: icalendar.Event) -> FeedEvent | None:
        start_raw = _dt_of(component, "DTSTART")
        if start_raw is None:
            return self._skip("missing_dtstart")
        all_day = not isinstance(start_raw, datetime)
        start = self._to_utc(start_raw)
        end_raw = _dt_of(component, "DTEND")
        end = (
            self._to_utc(end_raw)
            if end_raw is not None
            else start + (_DAY if all_day else timedelta(0))
        )
        if end < start:
            return self._skip("end_before_start")
        rid_raw = _dt_of(component, "RECURRENCE-ID")
        rid = None
        if rid_raw is not None:
            rid = (
                self._to_utc(rid_raw).strftime("%Y%m%dT%H%M%SZ")
                if isinstance(rid_raw, datetime)
                else rid_raw.strftime("%Y%m%d")
            )
        text = {n: str(component.get(n, "")) for n in _TEXT_PROPS}
        return self._finish(
            uid=text["UID"].strip(),
            recurrence_id=rid,
            start=start,
            end=end,
            all_day=all_day,
            summary=text["SUMMARY"],
            description=text["DESCRIPTION"],
            location=text["LOCATION"],
            status=text["STATUS"].strip().upper(),
            transparent=text["TRANSP"].strip().upper() == "TRANSPARENT"
            or text["X-MICROSOFT-CDO-BUSYSTATUS"].strip().upper() == "FREE",
            sequence=self._sequence(text["SEQUENCE"] or None),
            last_modified=_stamp_of(component, "LAST-MODIFIED"),
            dtstamp=_stamp_of(component, "DTSTAMP"),
            x_names=[str(k) for k in component if str(k).startswith("X-")],
            at_horizon=False,
        )

    def _to_utc(self, value: date | datetime) -> datetime:
        if not isinstance(value, datetime):
            return self._midnight(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.floating)
        return value.astimezone(UTC)


_TEXT_PROPS = (
    "UID",
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "STATUS",
    "TRANSP",
    "SEQUENCE",
    "LAST-MODIFIED",
    "DTSTAMP",
    "X-MICROSOFT-CDO-BUSYSTATUS",
)


def _one(found: dict[str, list[Prop]], name: str) -> Prop | None:
    values = found.get(name)
    return values[0] if values else None


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _utc_stamp(value: str | None) -> datetime | None:
    """A DTSTAMP / LAST-MODIFIED value; these are UTC by definition, so naive ones are too."""
    if not value:
        return None
    try:
        raw = lines.parse_date_value(value)
    except ValueError:
        return None
    return raw.replace(tzinfo=UTC) if isinstance(raw, datetime) else None


def _add_duration(start: datetime, duration: timedelta, zone: tzinfo) -> datetime:
    """Days are nominal (wall clock in the event's zone), hours/minutes/seconds exact."""
    days = timedelta(days=duration.days)
    local = (start.astimezone(zone).replace(tzinfo=None) + days).replace(tzinfo=zone)
    return local.astimezone(UTC) + (duration - days)


def _last_start(rule: str, first: date) -> date | None:
    """The latest date an occurrence can start on, when the RRULE makes that cheap to bound."""
    until = _UNTIL.search(rule)
    if until is not None:
        try:
            return _as_date(lines.parse_date_value(until.group(1)))
        except ValueError:
            return None
    count, freq = _COUNT.search(rule), _FREQ.search(rule)
    if count is None or freq is None or freq.group(1).upper() not in _PERIOD_DAYS:
        return None
    # BY-parts other than BYDAY on a weekly rule can make occurrences rarer than one
    # per period (BYMONTHDAY=31), which would break the bound: give up on those.
    parts = {p.partition("=")[0].upper() for p in rule.split(";")}
    allowed = {"FREQ", "COUNT", "INTERVAL", "WKST"} | (
        {"BYDAY"} if freq.group(1).upper() == "WEEKLY" else set()
    )
    if not parts <= allowed:
        return None
    interval = _INTERVAL.search(rule)
    step = _PERIOD_DAYS[freq.group(1).upper()] * int(interval.group(1) if interval else 1)
    return first + timedelta(days=step * int(count.group(1)))


def _dt_of(component: icalendar.Event, name: str) -> date | datetime | None:
    prop = component.get(name)
    value = getattr(prop, "dt", None)
    return value if isinstance(value, date) else None


def _stamp_of(component: icalendar.Event, name: str) -> datetime | None:
    value = _dt_of(component, name)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
