"""Running `parley` as a real subprocess, the way an operator does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

PARLEY = [sys.executable, "-m", "parley.cli"]


def parley_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update({"PARLEY_DATA_DIR": str(data_dir), "PARLEY_LOG_JSON": "true"})
    env.update(extra)
    return env


def start(args: list[str], env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    with open(cwd / f"parley-{args[0]}-{time.monotonic_ns()}.log", "wb") as log:
        return subprocess.Popen(
            [*PARLEY, *args], env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )


def wait_healthy(base_url: str, timeout: float = 10.0) -> float:
    """Seconds until /healthz answered 200; raises TimeoutError after timeout."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{base_url}/healthz did not answer 200 within {timeout} s")


@contextmanager
def serving(data_dir: Path, cwd: Path, **extra: str) -> Iterator[tuple[dict[str, str], str]]:
    """`parley serve` on data_dir on free ports: the environment every other command of the
    test should run with (the same settings, so its links point at this server) and its URL."""
    from tests.conftest import free_port

    http_port, smtp_port = free_port(), free_port()
    env = parley_env(
        data_dir, PARLEY_HTTP_PORT=str(http_port), PARLEY_SMTP_PORT=str(smtp_port), **extra
    )
    proc = start(["serve"], env, cwd)
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_healthy(base, timeout=20)
        yield env, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
