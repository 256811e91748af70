"""What a running Parley process holds: settings, database engine, sessions, secrets, clock.

Built once at start-up (serve, worker, CLI commands, tests) and passed down explicitly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db.engine import make_engine, make_sessionmaker
from core.db.hot import HotConnections
from core.settings import Secrets, Settings, ensure_secrets


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(repr=False)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    secrets: Secrets
    clock: Callable[[], datetime] = field(default=utc_now)
    # Asyncio connections for the hottest public path; PostgreSQL only.
    hot: HotConnections | None = field(default=None, init=False)
    _closed: bool = field(default=False, init=False)
    # What services build once per process from this runtime (e.g. the tenants' mailboxes).
    services: dict[str, object] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.hot = HotConnections.for_engine(self.engine)

    def __repr__(self) -> str:
        # Reaches logs (Radicale prints its plugins): only what is safe to show.
        return f"Runtime(database={self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self._closed = True
        if self.hot is not None:
            self.hot.close()
        self.engine.dispose()

    def is_open(self) -> bool:
        """False once closed: nothing should check a connection out of its engine then."""
        return not self._closed


def open_runtime(settings: Settings, *, secrets: Secrets | None = None) -> Runtime:
    """Engine and sessions for settings; secrets generated into the data folder if unset."""
    engine = make_engine(settings.effective_database_url)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        secrets=secrets or ensure_secrets(settings),
    )
