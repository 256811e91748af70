"""Whether the database answers, for /healthz: one round trip, never an exception."""

from __future__ import annotations

from sqlalchemy import Engine, text


def database_ok(engine: Engine) -> bool:
    """True when a connection opens and runs SELECT 1."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
