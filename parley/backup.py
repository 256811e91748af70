"""`parley backup`: a consistent copy of the embedded SQLite database while Parley runs.

SQLite's online backup API copies the pages under its own locking, so writers that
commit meanwhile (WAL mode) never leave a torn file. PostgreSQL is refused: its own
pg_dump/pg_restore do that job (ops/deploy/backup.md).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from parley.errors import BackupError


@dataclass(frozen=True)
class BackupResult:
    """Where the copy went, how big it is and how many bookings it holds."""

    path: Path
    size: int
    bookings: int


def pg_commands(database_url: str) -> str:
    """The pg_dump and pg_restore lines an admin runs instead for a PostgreSQL database."""
    url = make_url(database_url).set(drivername="postgresql")
    plain = url.render_as_string(hide_password=True)
    return (
        f"pg_dump --format=custom --file=parley.dump '{plain}'\n"
        f"pg_restore --clean --if-exists --no-owner --dbname='{plain}' parley.dump"
    )


def sqlite_path(database_url: str) -> Path:
    """The database file behind a sqlite:/// URL; BackupError for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        raise BackupError(
            "parley backup copies SQLite only; for PostgreSQL use pg_dump and pg_restore:\n"
            + pg_commands(database_url)
        )
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise BackupError(f"cannot back up {url.get_backend_name()} database {url.database!r}")
    path = Path(url.database)
    if not path.is_file():
        raise BackupError(f"database file {path} does not exist (run `parley migrate` first)")
    return path


def backup_sqlite(database_url: str, dest: Path) -> BackupResult:
    """Copy the live database to dest (which must not exist yet) and check the copy."""
    source_path = sqlite_path(database_url)
    if dest.exists():
        raise BackupError(f"{dest} already exists; choose a new file name")
    if not dest.parent.is_dir():
        raise BackupError(f"folder {dest.parent} does not exist")
    source = sqlite3.connect(f"{source_path.as_uri()}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)
        return _checked(target, dest)
    except sqlite3.Error as exc:
        target.close()
        dest.unlink(missing_ok=True)
        raise BackupError(f"backup failed: {exc}") from None
    finally:
        source.close()
        target.close()


def _checked(copy: sqlite3.Connection, dest: Path) -> BackupResult:
    """The result for a copy that passes SQLite's integrity check."""
    (verdict,) = copy.execute("PRAGMA integrity_check").fetchone()
    if verdict != "ok":
        raise sqlite3.DatabaseError(f"integrity check of the copy: {verdict}")
    (bookings,) = copy.execute("SELECT count(*) FROM bookings").fetchone()
    copy.close()
    dest.chmod(0o600)
    return BackupResult(dest, dest.stat().st_size, int(bookings))
