"""Rules over events already attributed to sources: delta, mass removal, dedup, conflicts.

Pure decisions only; the sync service loads what is stored, calls these and writes the
records they return. Priorities are MUVA §3.4 (lower number wins); see rank() for the order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from core.feeds.events import EventKey, FeedEvent
from core.feeds.platforms import EventKind, priority_of

SourceRef = tuple[str, str, str | None]  # (source_id, uid, recurrence_id)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Delta:
    """What a fresh read changes against what is stored for the same window."""

    added: tuple[FeedEvent, ...]
    updated: tuple[FeedEvent, ...]
    removed: tuple[EventKey, ...]
    unchanged: tuple[EventKey, ...]
    duplicate_keys: int = 0  # the feed repeated a (uid, recurrence_id); one copy was kept


def diff(stored: Mapping[EventKey, str], incoming: Iterable[FeedEvent]) -> Delta:
    """Compare stored {(uid, recurrence_id): content_hash} with a read of the same window."""
    latest: dict[EventKey, FeedEvent] = {}
    repeats = 0
    for event in incoming:
        held = latest.get(event.key)
        if held is not None:
            repeats += 1
            if _newness(event) <= _newness(held):
                continue
        latest[event.key] = event
    added, updated, unchanged = [], [], []
    for key, event in latest.items():
        if key not in stored:
            added.append(event)
        elif stored[key] != event.content_hash:
            updated.append(event)
        else:
            unchanged.append(key)
    removed = tuple(key for key in stored if key not in latest)
    return Delta(tuple(added), tuple(updated), removed, tuple(unchanged), repeats)


def _newness(event: FeedEvent) -> tuple[int, datetime]:
    return (event.sequence, event.last_modified or _EPOCH)


def is_mass_removal(
    previous_future_count: int,
    new_future_count: int,
    *,
    min_fraction: float = 0.5,
    min_removed: int = 5,
) -> bool:
    """True when a feed suddenly loses most of its future events, or all of them.

    Such a read is more likely a broken export than a wave of cancellations, so the
    caller should keep the stored busy time and ask a human.
    """
    if previous_future_count <= 0:
        return False
    if new_future_count <= 0:
        return True
    removed = previous_future_count - new_future_count
    return removed >= min_removed and removed >= min_fraction * previous_future_count


@dataclass(frozen=True, slots=True)
class SourcedEvent:
    """An event of one source on one unit, as the conflict rules see it."""

    source_id: str
    platform: str  # a Platform value; decides the default priority
    unit_id: str
    uid: str
    recurrence_id: str | None
    start: datetime
    end: datetime
    kind: EventKind
    reservation_code: str | None = None
    last_modified: datetime | None = None
    priority_override: int | None = None  # a source's configured priority, if any
    phone_last4: str | None = None  # the guest's phone, last four digits (Airbnb shows them)

    @property
    def ref(self) -> SourceRef:
        return (self.source_id, self.uid, self.recurrence_id)

    @property
    def priority(self) -> int:
        if self.priority_override is not None:
            return self.priority_override
        return priority_of(self.platform)

    @classmethod
    def from_feed(
        cls, event: FeedEvent, *, source_id: str, unit_id: str, priority: int | None = None
    ) -> SourcedEvent:
        """Attribute a read event to a source and a unit."""
        return cls(
            source_id=source_id,
            platform=event.platform.platform.value,
            unit_id=unit_id,
            uid=event.uid,
            recurrence_id=event.recurrence_id,
            start=event.start,
            end=event.end,
            kind=event.platform.kind,
            reservation_code=event.platform.reservation_code,
            last_modified=event.last_modified,
            priority_override=priority,
            phone_last4=event.platform.phone_last4,
        )


def rank(event: SourcedEvent) -> tuple[int, int, float, str, str, str]:
    """Sort key, best first: priority, then reservation over block, then newest, then ids."""
    modified = (event.last_modified or _EPOCH).timestamp()
    is_block = 0 if event.kind is EventKind.RESERVATION else 1
    return (
        event.priority,
        is_block,
        -modified,
        event.source_id,
        event.uid,
        event.recurrence_id or "",
    )


def same_booking(a: SourcedEvent, b: SourcedEvent) -> str | None:
    """Why a and b are one booking seen through two sources, or None (MUVA §3.3): "uid",
    "reservation_code" (the same code, dates within a day), or "fuzzy" (two reservations
    of one unit whose dates are within a day and whose guests' phones end alike)."""
    if a.source_id == b.source_id:
        return None
    if a.uid == b.uid and a.recurrence_id == b.recurrence_id:
        return "uid"
    near = (
        a.unit_id == b.unit_id
        and abs(a.start - b.start) <= _DATE_SLACK
        and abs(a.end - b.end) <= _DATE_SLACK
    )
    if near and a.reservation_code is not None and a.reservation_code == b.reservation_code:
        return "reservation_code"
    if (
        near
        and a.kind is EventKind.RESERVATION
        and b.kind is EventKind.RESERVATION
        and a.phone_last4 is not None
        and a.phone_last4 == b.phone_last4
    ):
        return "fuzzy"
    return None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """dropped is the same booking as kept, seen through a lower-ranked source."""

    kept: SourceRef
    dropped: SourceRef
    reason: str


@dataclass(frozen=True, slots=True)
class Deduplicated:
    """The events to treat as distinct, and the copies merged into them."""

    kept: tuple[SourcedEvent, ...]
    duplicates: tuple[Duplicate, ...]


def dedup(events: Iterable[SourcedEvent]) -> Deduplicated:
    """Merge copies of one booking across sources, keeping the best-ranked copy."""
    by_uid: dict[EventKey, list[SourcedEvent]] = {}
    by_code: dict[tuple[str, str], list[SourcedEvent]] = {}
    by_phone: dict[tuple[str, str], list[SourcedEvent]] = {}
    kept: list[SourcedEvent] = []
    merged: list[Duplicate] = []
    for event in sorted(events, key=rank):
        candidates = by_uid.get((event.uid, event.recurrence_id), [])
        if event.reservation_code:
            candidates = candidates + by_code.get((event.unit_id, event.reservation_code), [])
        if event.phone_last4:
            candidates = candidates + by_phone.get((event.unit_id, event.phone_last4), [])
        match = next(((c, r) for c in candidates if (r := same_booking(c, event))), None)
        if match is not None:
            merged.append(Duplicate(match[0].ref, event.ref, match[1]))
            continue
        kept.append(event)
        by_uid.setdefault((event.uid, event.recurrence_id), []).append(event)
        if event.reservation_code:
            by_code.setdefault((event.unit_id, event.reservation_code), []).append(event)
        if event.phone_last4:
            by_phone.setdefault((event.unit_id, event.phone_last4), []).append(event)
    return Deduplicated(tuple(kept), tuple(merged))


class ConflictType(StrEnum):
    """The kinds of clash in MUVA §3.4 that settle() records."""

    OVERLAPPING_RESERVATIONS = "overlapping_reservations"
    RESERVATION_VS_BLOCK = "reservation_vs_block"
    TIME_BOUNDARY = "time_boundary"


@dataclass(frozen=True, slots=True)
class Settlement:
    """One conflict and how it was settled; the caller stores it as a conflict row."""

    conflict_type: ConflictType
    first: SourceRef
    second: SourceRef
    overlap_start: datetime
    overlap_end: datetime
    winner: SourceRef | None  # None: both stand (same-day turnover)
    resolved_by: str  # "rule:priority", "rule:reservation_over_block", "rule:last_modified", …
    strategy: str  # "replace", "split", "allow"
    needs_review: bool
    warning: str | None = None
    loser_remaining: tuple[tuple[datetime, datetime], ...] = ()


def settle(
    events: Sequence[SourcedEvent], *, turnover: timedelta = timedelta(days=1)
) -> list[Settlement]:
    """Conflicts among deduplicated events on each unit, settled by rank().

    Two blocks that overlap are not a conflict (both are just busy). An overlap no longer
    than `turnover` where one stay ends on the other's first day is a same-day checkout /
    check-in: allowed, with a warning.
    """
    found: list[Settlement] = []
    by_unit: dict[str, list[SourcedEvent]] = {}
    for event in events:
        by_unit.setdefault(event.unit_id, []).append(event)
    for unit_events in by_unit.values():
        ordered = sorted(unit_events, key=lambda e: (e.start, e.end, rank(e)))
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                if b.start >= a.end:
                    break
                settled = _settle_pair(a, b, turnover)
                if settled is not None:
                    found.append(settled)
    return found


def _settle_pair(a: SourcedEvent, b: SourcedEvent, turnover: timedelta) -> Settlement | None:
    """a starts no later than b and they overlap."""
    if a.kind is EventKind.BLOCK and b.kind is EventKind.BLOCK:
        return None
    both = a.kind is EventKind.RESERVATION and b.kind is EventKind.RESERVATION
    kind = ConflictType.OVERLAPPING_RESERVATIONS if both else ConflictType.RESERVATION_VS_BLOCK
    lo, hi = b.start, min(a.end, b.end)
    if b.start > a.start and a.end <= b.end and hi - lo <= turnover:
        return Settlement(
            ConflictType.TIME_BOUNDARY, a.ref, b.ref, lo, hi, None, "rule:turnover",
            "allow", False, "same-day checkout and check-in overlap",
        )  # fmt: skip
    winner, loser = sorted((a, b), key=rank)
    rule = _deciding_rule(winner, loser)
    remaining = _outside(loser, winner)
    # A guest losing to anything, or a tie decided by id order alone, needs a human.
    review = loser.kind is EventKind.RESERVATION or rule == "rule:order"
    return Settlement(
        kind, a.ref, b.ref, lo, hi, winner.ref, rule, "split" if remaining else "replace",
        review, "double booking" if both else None, remaining,
    )  # fmt: skip


def _deciding_rule(winner: SourcedEvent, loser: SourcedEvent) -> str:
    if winner.priority != loser.priority:
        return "rule:priority"
    if winner.kind is not loser.kind:
        return "rule:reservation_over_block"
    if winner.last_modified != loser.last_modified:
        return "rule:last_modified"
    return "rule:order"


def _outside(loser: SourcedEvent, winner: SourcedEvent) -> tuple[tuple[datetime, datetime], ...]:
    """The parts of loser that winner does not cover (a block split around a stay)."""
    parts = []
    if loser.start < winner.start:
        parts.append((loser.start, winner.start))
    if loser.end > winner.end:
        parts.append((winner.end, loser.end))
    return tuple(parts)
