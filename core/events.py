"""Business events: one structured log line and one Prometheus counter per action.

Names follow the seeds (cal.hold.created, cal.ics.poll.error, …). Fields are ids,
counts and durations only; record() refuses nothing but callers never pass secrets.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

from core.logging import get_logger

_log = get_logger("parley.events")

EVENTS = Counter("parley_events_total", "Business events recorded", ["event"])


def record(event: str, **fields: Any) -> None:
    """Log the business event and count it."""
    EVENTS.labels(event=event).inc()
    _log.info(event, **fields)
