"""Bounds on the work one CalDAV request can cause: recurrence steps, expand range, body size.

Recurrence rules are walked by dateutil from DTSTART on, whatever window is asked for:
a FREQ=SECONDLY event that began a month ago costs millions of steps for a one-day
window, and Radicale's C:expand collects every instance up to the window's end before it
counts them. So the walk itself is metered: while a budget is active in a thread (the
request's, set by caldav_bridge.app), every step taken by any dateutil rule or rule set
costs one unit of each active budget, and an exhausted budget raises BudgetExceeded.
Nested budgets (one per event being expanded or tested) draw from the request's too, so
the whole request is bounded, and a deadline ends it even when the steps are cheap.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule as dateutil_rrule

from caldav_bridge.errors import BudgetExceeded

_state = threading.local()
_install_lock = threading.Lock()
_installed = False


class Budget:
    __slots__ = ("deadline", "left", "name", "spent_out")

    def __init__(self, name: str, steps: int, seconds: float | None) -> None:
        self.name, self.left, self.spent_out = name, steps, False
        self.deadline = None if seconds is None else time.monotonic() + seconds


def _budgets() -> list[Budget]:
    found: list[Budget] | None = getattr(_state, "budgets", None)
    if found is None:
        found = _state.budgets = []
    return found


@contextmanager
def budget(name: str, steps: int, seconds: float | None = None) -> Iterator[Budget]:
    """Meter the recurrence steps taken in this thread inside the block."""
    install()
    active = _budgets()
    entry = Budget(name, steps, seconds)
    active.append(entry)
    try:
        yield entry
    finally:
        active.remove(entry)


def exhausted() -> Budget | None:
    """The first active budget already spent out (so later steps fail at once), if any."""
    return next((b for b in _budgets() if b.spent_out), None)


def _spend(active: list[Budget]) -> None:
    for entry in active:
        entry.left -= 1
        if entry.left < 0 or (
            entry.deadline is not None
            and entry.left % 128 == 0
            and time.monotonic() > entry.deadline
        ):
            entry.spent_out = True
            entry.left = -1
            raise BudgetExceeded(entry.name)


def _metered(iterator: Iterator[Any], active: list[Budget], is_set: bool) -> Iterator[Any]:
    while True:
        # A rule set walks its rules inside next(): those steps are the set's, counted once.
        if is_set:
            _state.in_set = getattr(_state, "in_set", 0) + 1
        try:
            value = next(iterator)
        except StopIteration:
            return
        finally:
            if is_set:
                _state.in_set -= 1
        _spend(active)
        yield value


def install() -> None:
    """Wrap dateutil's rule iteration once per process; a no-op outside any budget."""
    global _installed
    if _installed:  # budget() calls this for every event: no lock once it is done
        return
    with _install_lock:
        if _installed:
            return
        original = dateutil_rrule.rrulebase.__iter__

        def __iter__(self: Any) -> Iterator[Any]:
            active: list[Budget] | None = getattr(_state, "budgets", None)
            iterator = original(self)
            nested: int = getattr(_state, "in_set", 0)  # inside a set's own walk
            if not active or nested:
                return iterator  # type: ignore[no-any-return]
            spent = exhausted()
            if spent is not None:
                raise BudgetExceeded(spent.name)
            return _metered(iterator, active, isinstance(self, dateutil_rrule.rruleset))

        dateutil_rrule.rrulebase.__iter__ = __iter__  # type: ignore[method-assign]
        _installed = True


# --- per-event bounds inside a request --------------------------------------------------------


def item_steps() -> int:
    """Steps one event may take within the current request (set by the request guard)."""
    return int(getattr(_state, "item_steps", 100_000))


@contextmanager
def request_budget(steps: int, item: int, seconds: float, output: int) -> Iterator[Budget]:
    """The budget of one CalDAV request: recurrence steps in all, what each event in it
    may take, and how many bytes of expanded calendar data it may produce."""
    previous = getattr(_state, "item_steps", None), getattr(_state, "output_left", None)
    _state.item_steps, _state.output_left = item, output
    try:
        with budget("request", steps, seconds) as entry:
            yield entry
    finally:
        _state.item_steps, _state.output_left = previous


def _output_left() -> int:
    left: int | None = getattr(_state, "output_left", None)
    return 64 * 1024 * 1024 if left is None else left  # 0 is spent, not unset


def _spend_output(size: int) -> None:
    _state.output_left = _output_left() - size


def install_expand_guard() -> None:
    """Bound Radicale's C:expand per event (radicale.app.report._expand, Radicale 3.9).

    An event whose instances cannot be listed within its budget, or that has more than
    the report's instance limit, is answered with its stored form (master and RRULE, as a
    calendar-query without expand returns it) instead of failing the whole report: one
    hostile or mistaken event must not stop a calendar app from syncing the rest.
    """
    from radicale.app import report

    original = report._expand
    if getattr(original, "_parley_guard", False):
        return

    def _expand(
        element: Any, item: Any, start: datetime, end: datetime, **kwargs: Any
    ) -> tuple[Any, int]:
        text = item.serialize()
        # Each instance repeats the event's text: a large event expanded many times is
        # as costly as many steps (copied, serialized, held in memory).
        output = estimated_instances(text, start, end) * len(text)
        if not too_costly(text, end) and output <= _output_left():
            try:
                with budget("event", item_steps()):
                    answer, count = original(element, item, start=start, end=end, **kwargs)
                _spend_output(len(answer.text or ""))
                return answer, count
            except ValueError as exc:
                if not _capped(exc):
                    raise
                if exhausted() is not None:
                    raise  # the request's own budget is gone: stop here
        _log().warning("dav.expand.capped", href=item.href)
        element.text = text
        _spend_output(len(text))
        return element, 1

    original_free_busy = report.freebusy_periods

    def freebusy_periods(
        item: Any, range_start: datetime, range_end: datetime, max_occurrence: int
    ) -> list[Any]:
        """An event too costly to walk counts as busy for the whole window (unless it is
        transparent or cancelled): free time is never shown where it may not be."""
        if not too_costly(item.serialize(), range_end):
            try:
                with budget("event", item_steps()):
                    return original_free_busy(item, range_start, range_end, max_occurrence)  # type: ignore[no-any-return]
            except ValueError as exc:
                # Also once the request's budget is gone: busy, without walking further.
                if not _capped(exc):
                    raise
        _log().warning("dav.free_busy.capped", href=item.href)
        kinds = {report._fbtype_for_component(c) for c in item.vobject_item.vevent_list}
        kind = next((k for k in ("BUSY", "BUSY-TENTATIVE") if k in kinds), None)
        return [] if kind is None else [(_as_utc(range_start), _as_utc(range_end), kind)]

    _expand._parley_guard = True  # type: ignore[attr-defined]
    report._expand = _expand  # type: ignore[assignment]
    report.freebusy_periods = freebusy_periods


def _capped(exc: ValueError) -> bool:
    """Whether exc is a budget running out, or Radicale's own max_*_occurrence limit."""
    return isinstance(exc, BudgetExceeded) or "occurrences limit" in str(exc)


def _log() -> Any:
    from core.logging import get_logger

    return get_logger(__name__)


# --- estimating a rule's cost without walking it ----------------------------------------------

_FREQ_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}
_EXPANDING = ("BYSECOND", "BYMINUTE", "BYHOUR")


# The lines the estimate reads, with their folded continuations; nothing else is parsed,
# so a large DESCRIPTION costs one scan of the text, not a vobject tree.
_RULE_LINES = re.compile(
    r"^(BEGIN|END|DTSTART|RRULE)([;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.I | re.M
)
_FOLD = re.compile(r"\r?\n[ \t]")


def _rules(text: str) -> Iterator[tuple[datetime, str]]:
    """(DTSTART in UTC, RRULE value upper-cased) of each rule of the calendar's top-level
    components (VEVENT, VTODO…; not VTIMEZONE's nor VALARM's, which sit deeper)."""
    depth, start, rules = 0, None, list[str]()
    for match in _RULE_LINES.finditer(text):
        name, rest = match.group(1).upper(), _FOLD.sub("", match.group(2))
        if name == "BEGIN":
            depth += 1
            if depth == 2:
                start, rules = None, []
        elif name == "END":
            if depth == 2 and start is not None:
                yield from ((start, rule) for rule in rules)
            depth -= 1
        elif depth == 2 and name == "DTSTART":
            start = _dtstart(rest)
        elif depth == 2:
            rules.append(rest.partition(":")[2].upper())


def _dtstart(rest: str) -> datetime | None:
    """The UTC moment of a DTSTART line's ";params:value" (a zone from its IANA TZID)."""
    params, _, value = rest.rpartition(":")
    moment = _until(value.strip())
    tzid = next((p[5:].strip('"') for p in params.split(";") if p.upper().startswith("TZID=")), "")
    if moment is None or not tzid or value.strip().endswith("Z"):
        return moment
    try:
        return moment.replace(tzinfo=ZoneInfo(tzid)).astimezone(UTC)
    except (ValueError, ZoneInfoNotFoundError):
        return moment  # a zone named only in the calendar's VTIMEZONE: read as UTC


def estimated_steps(text: str, until: datetime) -> int:
    """About how many steps walking the calendar text's recurrence rules from DTSTART up
    to until takes (what dateutil does, whatever window is asked for). Cheap: reads the
    DTSTART and RRULE lines only. Sub-daily BY parts multiply; others are left to the
    metered budget."""
    total = 0.0
    for start, rule in _rules(text):
        parts = dict(p.split("=", 1) for p in rule.split(";") if "=" in p)
        freq = _FREQ_SECONDS.get(parts.get("FREQ", ""), 0)
        try:
            interval = max(int(parts.get("INTERVAL") or 1), 1)
            count = int(parts["COUNT"]) if "COUNT" in parts else None
        except ValueError:
            continue
        end = min(until, _until(parts.get("UNTIL", "")) or until)
        if not freq or end <= start:
            continue
        steps = (end - start).total_seconds() / (freq * interval)
        for name in _EXPANDING:
            if name in parts:
                steps *= max(len(parts[name].split(",")), 1)
        total += min(steps, count) if count is not None else steps
    return int(total)


def estimated_instances(text: str, start: datetime, end: datetime) -> int:
    """About how many instances of the calendar text's rules fall in [start, end)."""
    return max(estimated_steps(text, _as_utc(end)) - estimated_steps(text, _as_utc(start)), 0) + 1


def too_costly(text: str, until: datetime) -> bool:
    """Whether an event's rules cost more than one event may spend in this request."""
    return estimated_steps(text, _as_utc(until)) > item_steps()


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _until(text: str) -> datetime | None:
    for layout in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None
