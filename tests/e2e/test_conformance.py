"""Independent CalDAV suites against Parley and stock Radicale on this machine: Parley must
pass at least as many as Radicale. The fast subset of ops/conformance/run.py; a suite whose
tool is missing is skipped with the reason (prepare them with ops/conformance/setup.sh)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ops.conformance import servers, suites
from ops.conformance.servers import DavServer
from ops.conformance.suites import Score, SuiteUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# The caldav tests that exercise what calendar apps lean on most: search (incl. recurring
# and expanded), sync tokens, create/edit/delete of objects and calendars.
CALDAV_SUBSET = (
    "testRecurringDateSearch or testRecurringDateWithExceptionSearch or testSync"
    " or testCreateDeleteCalendar or testObjects or testEditSingleRecurrence"
    " or testDateSearchAndFreeBusy or testLookupEvent"
)

Both = tuple[DavServer, DavServer]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Both]:
    parley_dir: Path = tmp_path_factory.mktemp("parley")
    radicale_dir: Path = tmp_path_factory.mktemp("radicale")
    with servers.parley(parley_dir) as parley, servers.radicale(radicale_dir) as radicale:
        yield parley, radicale


def _compare(both: Both, run: Callable[[DavServer], Score]) -> None:
    parley, radicale = both
    try:
        ours, theirs = run(parley), run(radicale)
    except SuiteUnavailable as exc:
        print(f"skipped: {exc}")
        pytest.skip(str(exc))
    print(f"Parley {ours.passed}/{ours.total}; stock Radicale {theirs.passed}/{theirs.total}")
    assert theirs.total > 0, f"the suite ran nothing against Radicale: {theirs.detail}"
    assert ours.passed >= theirs.passed, (
        f"Parley passed {ours.passed}, stock Radicale {theirs.passed}; "
        f"Parley did not pass: {ours.detail}; Radicale did not pass: {theirs.detail}"
    )


def test_caldav_server_tester(both: Both) -> None:
    _compare(both, suites.server_tester)


def test_vdirsyncer_storage_suite(both: Both) -> None:
    _compare(both, lambda server: suites.vdirsyncer_storage(server, select="VEVENT"))


def test_caldav_functional_suite(both: Both) -> None:
    _compare(both, lambda server: suites.caldav_functional(server, select=CALDAV_SUBSET))


def test_litmus_basic(both: Both) -> None:
    _compare(both, lambda server: suites.litmus(server, "", groups=("basic",))["basic"])
