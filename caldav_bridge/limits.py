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

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dateutil import rrule as dateutil_rrule

_state = threading.local()
_install_lock = threading.Lock()
_installed = False


class BudgetExceeded(ValueError):
    """More recurrence work than one request (or one event in it) may do."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


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
            and entry.left % 1024 == 0
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
    with _install_lock:
        if _installed:
            return
        original = dateutil_rrule.rrulebase.__iter__

        def __iter__(self: Any) -> Iterator[Any]:
            active: list[Budget] | None = getattr(_state, "budgets", None)
            iterator = original(self)
            if not active or getattr(_state, "in_set", 0):
                return iterator  # type: ignore[no-any-return]
            if any(b.spent_out for b in active):
                raise BudgetExceeded(next(b.name for b in active if b.spent_out))
            return _metered(iterator, active, isinstance(self, dateutil_rrule.rruleset))

        dateutil_rrule.rrulebase.__iter__ = __iter__  # type: ignore[method-assign]
        _installed = True


# --- per-event bounds inside a request --------------------------------------------------------


def item_steps() -> int:
    """Steps one event may take within the current request (set by the request guard)."""
    return int(getattr(_state, "item_steps", 100_000))


@contextmanager
def request_budget(steps: int, item: int, seconds: float) -> Iterator[Budget]:
    """The budget of one CalDAV request; item is what each event in it may take."""
    previous = getattr(_state, "item_steps", None)
    _state.item_steps = item
    try:
        with budget("request", steps, seconds) as entry:
            yield entry
    finally:
        _state.item_steps = previous


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

    def _expand(element: Any, item: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
        try:
            with budget("event", item_steps()):
                return original(element, item, *args, **kwargs)  # type: ignore[no-any-return]
        except ValueError as exc:
            if not isinstance(exc, BudgetExceeded) and "occurrences limit" not in str(exc):
                raise
            if exhausted() is not None:
                raise  # the request's own budget is gone: stop here
        from core.logging import get_logger

        get_logger(__name__).warning("dav.expand.capped", href=item.href)
        element.text = item.serialize()
        return element, 1

    _expand._parley_guard = True  # type: ignore[attr-defined]
    report._expand = _expand
