"""What noticing dead pooled PostgreSQL connections costs per transaction.

One short transaction (SELECT 1) at a time on a pooled connection, three ways: no check,
Parley's check at checkout (poll the idle socket, no round trip), and SQLAlchemy's
pool_pre_ping (one more round trip). Then every backend is terminated and the next
transactions are counted as failed or fine. Prints microseconds per transaction.

    PARLEY_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/postgres \
        python bench/pool_checkout.py
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from sqlalchemy import create_engine, text

from core.db.engine import make_engine

URL = os.environ.get(
    "PARLEY_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROUNDS, PER_ROUND = 5, 2000


def _per_transaction_us(engine: Any) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(PER_ROUND):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        times.append((time.perf_counter() - started) / PER_ROUND * 1e6)
    return statistics.median(times)


def _after_termination(engine: Any) -> str:
    held = [engine.connect() for _ in range(5)]
    for conn in held:
        conn.close()
    killer = create_engine(URL)
    with killer.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> "
                "pg_backend_pid() AND datname = current_database() AND application_name = 'b'"
            )
        )
    killer.dispose()
    time.sleep(0.2)
    failed = 0
    held = []
    for _ in range(5):
        try:
            conn = engine.connect()
            conn.execute(text("SELECT 1"))
            held.append(conn)
        except Exception:
            failed += 1
    for conn in held:
        conn.close()
    return f"{failed} of 5 failed after pg_terminate_backend"


def main() -> None:
    args = {"connect_args": {"application_name": "b"}}
    engines = {
        "no check": create_engine(URL, pool_size=5, **args),
        "poll at checkout (Parley)": make_engine(URL, pool_size=5, **args),
        "pool_pre_ping": create_engine(URL, pool_size=5, pool_pre_ping=True, **args),
    }
    for name, engine in engines.items():
        cost = _per_transaction_us(engine)
        print(f"{name:28s} {cost:7.1f} µs per transaction; {_after_termination(engine)}")
        engine.dispose()


if __name__ == "__main__":
    main()
