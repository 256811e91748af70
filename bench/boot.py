"""Time from `parley serve` process start to the first 200 from /healthz.

Runs the real command in a subprocess on the embedded defaults (SQLite in a temp data
folder): once on an empty folder (migrations run), then warm starts. Prints medians.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def boot_once(data_dir: Path) -> float:
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(PARLEY_DATA_DIR=str(data_dir), PARLEY_HTTP_PORT=str(port), PARLEY_SMTP_PORT="0")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "parley.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError("parley serve exited before answering")
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def main(runs: int = 5) -> None:
    cold, warm = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            cold.append(boot_once(Path(tmp) / "data"))
            warm.append(boot_once(Path(tmp) / "data"))
    for label, times in (("fresh data folder (migrates)", cold), ("existing data folder", warm)):
        median_ms = statistics.median(times) * 1000
        print(f"boot to first /healthz 200, {label}: median {median_ms:.0f} ms")


if __name__ == "__main__":
    main()
