"""Shared fixtures: settings in a temp folder, migrated SQLite and PostgreSQL databases.

Tests that take `runtime` (or `db_url`) run once per backend: SQLite always, PostgreSQL
when PARLEY_TEST_DATABASE_URL names a server. In CI (CI=true) a missing PostgreSQL is an
error, not a skip. Each backend database is migrated once per session with Alembic and
emptied before every test.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.db.engine import make_engine
from core.db.migrate import upgrade
from core.db.models import Base
from core.runtime import Runtime, open_runtime
from core.settings import Secrets, Settings
from tests.pg import create_database, drop_database

PG_ENV = "PARLEY_TEST_DATABASE_URL"
REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
DATA = Path(__file__).resolve().parent / "data"
ADMIN_TOKEN = "test-admin-token"


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports for servers the tests start, below the kernel's ephemeral range: a port taken
# from that range (bind to 0) may be handed to some client's outgoing connection (to
# PostgreSQL, a relay) before the server binds it, and the server then fails to start.
_PORTS = list(range(20000, min(_ephemeral_low(), 32768)))
_rng = random.Random(os.getpid())
_rng.shuffle(_PORTS)
_next_port = iter(_PORTS)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range."""
    for port in _next_port:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in 20000–32767")


def postgres_url_or_skip() -> str:
    """The base PostgreSQL URL for tests; skip (or fail in CI) when none is configured."""
    url = os.environ.get(PG_ENV, "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set: PostgreSQL tests may not skip in CI")
        pytest.skip(f"PostgreSQL not configured: set {PG_ENV} to run these tests")
    return url


def create_pg_database(base_url: str) -> str:
    """A fresh, empty database on the server of base_url; skips (fails in CI) if unreachable."""
    try:
        return create_database(base_url)
    except Exception as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL at {base_url} unreachable: {type(exc).__name__}")


drop_pg_database = drop_database


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per backend for the whole test session."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'parley.db'}"
        upgrade(url)
        yield url
        return
    url = create_pg_database(postgres_url_or_skip())
    upgrade(url)
    yield url
    drop_pg_database(url)


def _empty_all_tables(url: str) -> None:
    engine = make_engine(url)
    names = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "tenants"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " CASCADE"))
        else:
            for name in names:
                conn.execute(text(f'DELETE FROM "{name}"'))
        conn.execute(text("DELETE FROM tenants WHERE id <> 'default'"))
    engine.dispose()


@pytest.fixture
def db_url(migrated_url: str) -> str:
    """A migrated database of the current backend, emptied for this test."""
    _empty_all_tables(migrated_url)
    return migrated_url


@pytest.fixture
def make_settings(tmp_path: Path) -> Any:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "secret_key": "test-secret-key-0123456789abcdef",
            "admin_token": ADMIN_TOKEN,
            "smtp_port": 0,
            "import_allow_private": True,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def runtime(db_url: str, make_settings: Any) -> Iterator[Runtime]:
    """A runtime on a fresh migrated database of the current backend."""
    settings = make_settings(database_url=db_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    rt = open_runtime(settings, secrets=Secrets(settings.secret_key.encode(), ADMIN_TOKEN, False))
    yield rt
    rt.close()


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
