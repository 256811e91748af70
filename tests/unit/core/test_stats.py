"""The arithmetic of core.services.stats: percentiles of durations and Prometheus's
histogram_quantile over a histogram's buckets (the feasibility p95 of /api/v1/stats)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from core.services.stats import durations, feasibility_p95_ms, histogram_quantile

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)


def _histogram() -> Histogram:
    return Histogram(
        "parley_feasibility_seconds", "slot search time", ["surface"], buckets=BUCKETS,
        registry=CollectorRegistry(),
    )  # fmt: skip


def test_p95_is_interpolated_within_its_bucket_across_labels() -> None:
    histogram = _histogram()
    for _ in range(90):
        histogram.labels(surface="api").observe(0.002)
    for _ in range(10):
        histogram.labels(surface="page").observe(0.007)
    # Rank 95 of 100 lies halfway through the (5 ms, 10 ms] bucket, which holds 90..100.
    assert feasibility_p95_ms(histogram) == pytest.approx(7.5)


def test_p95_beyond_the_last_bound_is_that_bound_and_nothing_observed_is_none() -> None:
    histogram = _histogram()
    assert feasibility_p95_ms(histogram) is None
    histogram.labels(surface="api").observe(20)
    assert feasibility_p95_ms(histogram) == pytest.approx(10_000)


def test_histogram_quantile_in_the_first_bucket_starts_from_zero() -> None:
    assert histogram_quantile(0.5, [(1.0, 4), (2.0, 4), (float("inf"), 4)]) == pytest.approx(0.5)
    assert histogram_quantile(0.95, []) is None


def test_durations_median_and_p95() -> None:
    assert durations([]).median is None and durations([]).count == 0
    one = durations([30.0])
    assert (one.median, one.p95, one.count) == (30.0, 30.0, 1)
    many = durations([float(n) for n in range(100, 0, -1)])  # 1..100, unsorted
    assert many.median == pytest.approx(50.5) and many.p95 == pytest.approx(95.05)
