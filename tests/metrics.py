"""Reading /metrics and the structured log in tests, as an operator's tools would.

``measured`` scrapes ``/metrics`` over HTTP before and after a block and gives the change
of each sample, so counts left by other tests in the same process do not matter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: Any) -> Samples:
    """Every sample of /metrics by (name, sorted labels)."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


class Delta:
    """The change of each sample between two scrapes."""

    def __init__(self, before: Samples, after: Samples) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return self.after.get(key, 0.0) - self.before.get(key, 0.0)


@contextmanager
def measured(client: Any) -> Iterator[list[Delta]]:
    """Yields a list that holds, after the block, the Delta of /metrics across it."""
    before = scrape(client)
    box: list[Delta] = []
    yield box
    box.append(Delta(before, scrape(client)))


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry.get("event") == name]


def gauge(client: Any, name: str) -> float | None:
    """The current value of an unlabelled gauge on /metrics, or None when it is absent."""
    return scrape(client).get((name, ()))
