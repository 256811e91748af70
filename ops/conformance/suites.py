"""The independent suites, each run against one DavServer and scored as passed/total.

The suites' own code lives in the conformance home that setup.sh prepares (their sdists
and a venv of their own); nothing here is copied from them. A suite that cannot run raises
SuiteUnavailable with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ops.conformance.servers import DavServer

HOME = Path(os.environ.get("PARLEY_CONFORMANCE_HOME", "/tmp/parley-conformance"))
PYTHON = HOME / "venv" / "bin" / "python"
LITMUS_GROUPS = ("basic", "copymove", "props", "locks", "http")


class SuiteUnavailable(RuntimeError):
    """Raised when a suite's tool or sources are missing here (the message says which)."""


@dataclass(frozen=True)
class Score:
    passed: int
    failed: int
    skipped: int = 0
    detail: str = ""

    @property
    def total(self) -> int:
        return self.passed + self.failed


def _need(path: Path, what: str) -> None:
    if not path.exists():
        raise SuiteUnavailable(f"{what} missing ({path}); run ops/conformance/setup.sh")


def _pytest_score(output: str) -> Score:
    """Counts from pytest's closing line, e.g. '3 failed, 57 passed, 7 skipped in 12s'."""
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", output)}
    failing = sorted(set(re.findall(r"^(?:FAILED|ERROR) \S+::(\w+)", output, re.MULTILINE)))
    return Score(
        counts.get("passed", 0),
        counts.get("failed", 0) + counts.get("error", 0),
        counts.get("skipped", 0),
        " ".join(failing),
    )


# --- caldav's functional suite (tests/test_caldav.py in the caldav sdist) -------------------


def caldav_functional(server: DavServer, select: str = "", timeout: float = 900) -> Score:
    """TestForServer<name> from caldav's test_caldav.py, the server given as an external
    test server with the "radicale" compatibility hints (for a server that schedules, with
    the RFC 6638 features it offers declared: ``_SCHEDULING_HINTS``)."""
    source = HOME / "src" / "caldav"
    _need(source / "tests" / "test_caldav.py", "caldav sdist")
    name = f"conf{server.name}"
    config = {
        "test-servers": {
            "radicale": {"type": "embedded", "enabled": False},
            "xandikos": {"type": "embedded", "enabled": False},
            name: {
                "type": "external",
                "enabled": True,
                "url": server.principal,
                "username": server.username,
                "password": server.password,
                "features": _SCHEDULING_HINTS if server.schedules else "radicale",
            },
        }
    }
    config_file = source / "tests" / f"conformance-{server.name}.json"
    config_file.write_text(json.dumps(config))
    selector = f"TestForServer{name}" + (f" and ({select})" if select else "")
    command = [str(PYTHON), "-m", "pytest", "tests/test_caldav.py", "-k", selector, "-q"]
    command += ["-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"]
    command += ["-rfE", "--tb=no"]
    # The suite reads its servers from tests/caldav_test_servers.json (cwd-relative), so
    # runs against the two servers take turns.
    env = {**os.environ, "PYTHON_CALDAV_TEST_DOCKER": "0"}
    return _pytest_score(_run_with_config(command, source, config_file, env, timeout))


# The "radicale" hints with the RFC 6638 features declared as caldav-server-tester sees
# them on Parley: scheduling, mailboxes, free-busy and Schedule-Tag, but no delivery into
# another local principal's inbox (Parley invites by mail). The scheduling tests run with
# these for both servers alike: one that does not schedule fails them, not skips them.
_SCHEDULING_HINTS = {
    "base": "radicale",
    **{f"scheduling{part}": {"support": "full"}
       for part in ("", ".mailbox", ".freebusy-query", ".schedule-tag",
                    ".calendar-user-address-set")},
    "scheduling.mailbox.inbox-delivery": {"support": "unsupported"},
    "scheduling.auto-schedule": {"support": "unsupported"},
}  # fmt: skip


def caldav_scheduling(server: DavServer, timeout: float = 900) -> Score:
    """The RFC 6638 tests of caldav's test_caldav.py (TestSchedulingForServer<name>), with
    the server's two accounts as the scheduling users."""
    source = HOME / "src" / "caldav"
    _need(source / "tests" / "test_caldav.py", "caldav sdist")
    if server.other is None:
        raise SuiteUnavailable("the scheduling tests need two accounts on the server")
    name = f"conf{server.name}"
    username, password = server.other
    users = [
        {"url": server.principal, "username": server.username, "password": server.password},
        {"url": f"{server.root}{username}/", "username": username, "password": password},
    ]
    config = {
        "test-servers": {
            "radicale": {"type": "embedded", "enabled": False},
            "xandikos": {"type": "embedded", "enabled": False},
            name: {
                "type": "external", "enabled": True, "url": server.principal,
                "username": server.username, "password": server.password,
                "features": _SCHEDULING_HINTS, "scheduling_users": users,
            },
        }
    }  # fmt: skip
    config_file = source / "tests" / f"conformance-{server.name}.json"
    config_file.write_text(json.dumps(config))
    command = [str(PYTHON), "-m", "pytest", "tests/test_caldav.py", "-q"]
    command += ["-k", f"TestSchedulingForServer{name}", "-p", "no:cacheprovider"]
    command += ["-o", "asyncio_default_fixture_loop_scope=function", "-rfE", "--tb=no"]
    env = {**os.environ, "PYTHON_CALDAV_TEST_DOCKER": "0"}
    return _pytest_score(_run_with_config(command, source, config_file, env, timeout))


def _run_with_config(
    command: list[str], source: Path, config_file: Path, env: dict[str, str], timeout: float
) -> str:
    target = source / "tests" / "caldav_test_servers.json"
    shutil.copyfile(config_file, target)
    try:
        done = subprocess.run(
            command, cwd=source, env=env, capture_output=True, text=True, timeout=timeout
        )
    finally:
        target.unlink(missing_ok=True)
        config_file.unlink(missing_ok=True)
    return done.stdout + done.stderr


# --- caldav-server-tester (PyPI) -----------------------------------------------------------


_FEATURE = re.compile(r"^## (\S+)\nFeature support level found: (\S+)", re.MULTILINE)


def server_tester(server: DavServer, timeout: float = 600) -> Score:
    """Each feature the tester probes counts as passed when observed "full".

    Read from its verbose text report, which names every feature probed (the JSON report
    folds features that are at their default away). With a second account on the server,
    the multi-user scheduling checks (RFC 6638) run too.
    """
    tester = HOME / "venv" / "bin" / "caldav-server-tester"
    _need(tester, "caldav-server-tester")
    command = [str(tester), "--caldav-url", server.principal, "--format", "text", "--verbose"]
    # "--name=value": a random password may start with "-", which a parser takes for a flag.
    command += [f"--caldav-username={server.username}", f"--caldav-password={server.password}"]
    env = dict(os.environ)
    if server.other is not None:
        username, password = server.other
        config = HOME / f"tester-{server.name}.json"
        section = {"caldav_url": f"{server.root}{username}/", "caldav_username": username,
                   "caldav_password": password}  # fmt: skip
        config.write_text(json.dumps({"second": section}))
        env["CALDAV_CONFIG_FILE"] = str(config)
        command += ["--config-section", "second"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    support = dict(_FEATURE.findall(done.stdout))
    if not support:
        reason = f"caldav-server-tester gave no report: {done.stderr[-500:]}"
        raise SuiteUnavailable(reason)
    full = sorted(k for k, v in support.items() if v == "full")
    other = sorted(f"{k}={v}" for k, v in support.items() if v != "full")
    return Score(len(full), len(other), 0, " ".join(other))


# --- vdirsyncer's storage suite (tests/storage/dav in the vdirsyncer sdist) -----------------

_MIXIN = '''"""Written by Parley's ops/conformance: the DAV server under test, from the env."""
from __future__ import annotations

import os

import pytest


class ServerMixin:
    @pytest.fixture
    def get_storage_args(self, request, tmpdir, slow_create_collection, aio_connector):
        async def inner(collection="test"):
            args = {
                "url": os.environ["CONFORMANCE_DAV_URL"],
                "username": os.environ["CONFORMANCE_DAV_USER"],
                "password": os.environ["CONFORMANCE_DAV_PASSWORD"],
                "connector": aio_connector,
            }
            if collection is not None:
                args = await slow_create_collection(self.storage_class, args, collection)
            return args

        return inner
'''


def vdirsyncer_storage(server: DavServer, select: str = "", timeout: float = 900) -> Score:
    """tests/storage/dav/test_caldav.py with DAV_SERVER=radicale (upstream's allowances
    for Radicale apply to both servers alike), pointed at the server's principal."""
    source = HOME / "src" / "vdirsyncer"
    _need(source / "tests" / "storage" / "dav" / "test_caldav.py", "vdirsyncer sdist")
    (source / "tests" / "storage" / "servers" / "radicale" / "__init__.py").write_text(_MIXIN)
    env = {
        **os.environ,
        "DAV_SERVER": "radicale",
        "DETERMINISTIC_TESTS": "true",
        "CONFORMANCE_DAV_URL": server.principal,
        "CONFORMANCE_DAV_USER": server.username,
        "CONFORMANCE_DAV_PASSWORD": server.password,
    }
    command = [str(PYTHON), "-m", "pytest", "tests/storage/dav/test_caldav.py", "-q"]
    command += ["-p", "no:cacheprovider", "-o", "addopts=", "-rfE", "--tb=no"]
    command += ["-o", "asyncio_default_fixture_loop_scope=function"]
    if select:
        command += ["-k", select]
    done = subprocess.run(
        command, cwd=source, env=env, capture_output=True, text=True, timeout=timeout
    )
    return _pytest_score(done.stdout + done.stderr)


# --- litmus (Debian) -----------------------------------------------------------------------


def litmus(
    server: DavServer,
    collection: str,
    groups: tuple[str, ...] = LITMUS_GROUPS,
    timeout: float = 300,
) -> dict[str, Score]:
    """litmus's groups, one run each, at server.principal + collection. litmus first MKCOLs
    a plain collection for itself; a CalDAV-only server may refuse that (both do)."""
    binary = shutil.which("litmus")
    if binary is None:
        raise SuiteUnavailable("litmus is not installed (apt-get install litmus)")
    scores = {}
    for group in groups:
        done = subprocess.run(
            # "--" ends litmus's options: a random password may start with "-".
            [binary, "--", server.principal + collection, server.username, server.password],
            env={**os.environ, "TESTS": group},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HOME if HOME.exists() else None,  # litmus writes debug.log into its cwd
        )
        found = re.search(r"of (\d+) tests run: (\d+) passed, (\d+) failed", done.stdout)
        if found is None:
            detail = f"exit {done.returncode}: {done.stdout[-300:]} {done.stderr[-300:]}"
            scores[group] = Score(0, 0, 0, detail)
            continue
        skipped = re.search(r"(\d+) skipped", done.stdout)
        failing = re.findall(r"^\s*\d+\. (\S+?)\.*\s*FAIL", done.stdout, re.MULTILINE)
        scores[group] = Score(
            int(found.group(2)),
            int(found.group(3)),
            int(skipped.group(1)) if skipped else 0,
            " ".join(failing),
        )
    return scores
