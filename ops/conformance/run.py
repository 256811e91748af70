"""Run the independent CalDAV suites against Parley and stock Radicale; print the scores.

Usage: /work/venv/bin/python ops/conformance/run.py [--suite NAME ...]
(after ops/conformance/setup.sh). Both servers run on this machine, on free ports, from
the project's venv; each suite runs against one, then the other.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ops.conformance import servers, suites
from ops.conformance.servers import DavServer
from ops.conformance.suites import Score, SuiteUnavailable

SUITES: dict[str, Callable[[DavServer], dict[str, Score]]] = {
    "caldav": lambda s: {"caldav functional (test_caldav.py)": suites.caldav_functional(s)},
    "tester": lambda s: {"caldav-server-tester (features full)": suites.server_tester(s)},
    "scheduling": lambda s: {
        "caldav RFC 6638 tests (TestScheduling, two accounts)": suites.caldav_scheduling(s)
    },
    "vdirsyncer": lambda s: {"vdirsyncer storage (test_caldav.py)": suites.vdirsyncer_storage(s)},
    "litmus": lambda s: {f"litmus {g}": v for g, v in suites.litmus(s, "").items()},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", action="append", choices=sorted(SUITES))
    args = parser.parse_args()
    chosen = args.suite or list(SUITES)
    rows: list[tuple[str, Score, Score]] = []
    with (
        tempfile.TemporaryDirectory() as a,
        tempfile.TemporaryDirectory() as b,
        servers.parley(Path(a)) as parley,
        servers.radicale(Path(b)) as radicale,
    ):
        for name in chosen:
            started = time.monotonic()
            try:
                ours, theirs = SUITES[name](parley), SUITES[name](radicale)
            except SuiteUnavailable as exc:
                print(f"{name}: not run: {exc}", flush=True)
                continue
            rows += [(label, ours[label], theirs[label]) for label in ours]
            print(f"{name}: done in {time.monotonic() - started:.0f} s", flush=True)
    print_table(rows)
    return 0 if all(o.passed >= t.passed for _, o, t in rows) else 1


def print_table(rows: list[tuple[str, Score, Score]]) -> None:
    print("\n| suite | Parley | stock Radicale 3.9.0 |\n|---|---|---|")
    for label, ours, theirs in rows:
        print(f"| {label} | {_cell(ours)} | {_cell(theirs)} |")
    for label, ours, theirs in rows:
        if ours.detail or theirs.detail:
            print(f"\n{label}\n  Parley not passed: {ours.detail}")
            print(f"  Radicale not passed: {theirs.detail}")


def _cell(score: Score) -> str:
    skipped = f", {score.skipped} skipped" if score.skipped else ""
    return f"{score.passed}/{score.total}{skipped}"


if __name__ == "__main__":
    raise SystemExit(main())
