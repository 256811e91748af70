"""In-process figures for the slot engine (not a test): run ``python bench/slots_inprocess.py``.

A 60-day query, 30-minute step, Mon–Fri 09:00–17:00 plus Saturday and Sunday windows in
Europe/Berlin, against 1,000 and 100,000 busy intervals (sorted, as the database returns
them); a plain linear merge of the same data is timed for reference.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from core.domain import AvailabilityPolicy, Busy, BusyKind, compute_slots, weekly_windows

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
DURATION = timedelta(minutes=30)


def policy() -> AvailabilityPolicy:
    weekly = (
        *weekly_windows(["mon", "tue", "wed", "thu", "fri"], "09:00", "17:00"),
        *weekly_windows(["sat"], "10:00", "14:00"),
        *weekly_windows(["sun"], "16:00", "20:00"),
    )
    return AvailabilityPolicy("Europe/Berlin", weekly=weekly, lead_time_hours=0)


def busy_items(count: int, span_days: int, rng: random.Random) -> list[Busy]:
    kinds = list(BusyKind)
    starts = sorted(rng.uniform(0, span_days * 86_400) for _ in range(count))
    return [
        Busy(
            NOW + timedelta(seconds=int(offset)),
            NOW + timedelta(seconds=int(offset) + rng.choice((900, 1800, 3600, 5400))),
            kinds[i % len(kinds)],
            ref=f"b{i}",
        )
        for i, offset in enumerate(starts)
    ]


def linear_merge(busy: list[Busy]) -> list[tuple[float, float]]:
    """Reference: one pass merging already-sorted busy intervals."""
    merged: list[tuple[float, float]] = []
    for item in busy:
        start, end = item.start.timestamp(), item.end.timestamp()
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def median_ms(run: Callable[[], object], runs: int) -> float:
    run()  # warm caches (zone data, policy index)
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def scenario(label: str, count: int, span_days: int, runs: int) -> None:
    rng = random.Random(count)
    the_policy, busy = policy(), busy_items(count, span_days, rng)
    end = NOW + timedelta(days=60)
    slots = compute_slots(the_policy, busy, NOW, NOW, end, DURATION)
    engine = median_ms(lambda: compute_slots(the_policy, busy, NOW, NOW, end, DURATION), runs)
    merge = median_ms(lambda: linear_merge(busy), runs)
    print(
        f"{label}: {len(busy):>7} busy, {len(slots)} slots, compute_slots median "
        f"{engine:.2f} ms over {runs} runs; linear merge of all busy {merge:.2f} ms"
    )


if __name__ == "__main__":
    scenario("60 days, 1k busy over 60 days ", 1_000, 60, 200)
    scenario("60 days, 100k busy over 2 years", 100_000, 730, 50)
