"""`parley backup` while `parley serve` runs, then a restore into a new data folder.

Bookings are made over the JSON API; the backup is taken through the CLI with the server
still up; the copy, put in a fresh data folder with the same secret key, is served by a
second Parley that must return every booking. PostgreSQL is refused with the commands to use.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import PARLEY, parley_env
from tests.e2e.inbound import book_many
from tests.e2e.relay import running_relay
from tests.e2e.test_negotiation_smtp import Parley, serve_parley, stop_parley

pytestmark = pytest.mark.slow


@pytest.fixture
def sqlite_parley(tmp_path: Path) -> Iterator[Parley]:
    url = f"sqlite:///{tmp_path / 'data' / 'parley.db'}"
    with running_relay() as (sink, relay_port):
        proc, parley = serve_parley(tmp_path, url, sink, relay_port)
        try:
            yield parley
        finally:
            parley.http.close()
            stop_parley(proc)


def run_backup(data_dir: Path, dest: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = parley_env(data_dir, **extra)
    return subprocess.run(
        [*PARLEY, "backup", str(dest)], env=env, capture_output=True, text=True, timeout=60
    )


def test_backup_taken_while_serving_restores_every_booking(
    sqlite_parley: Parley, tmp_path: Path
) -> None:
    booked = book_many(sqlite_parley.base, sqlite_parley.relay, 6)
    dest = tmp_path / "backups" / "parley-backup.db"
    dest.parent.mkdir()
    done = run_backup(tmp_path / "data", dest)
    assert done.returncode == 0, done.stderr
    assert "backed up 6 booking(s)" in done.stdout
    assert dest.stat().st_mode & 0o077 == 0
    again = run_backup(tmp_path / "data", dest)
    assert again.returncode == 1 and "already exists" in again.stderr

    restored = tmp_path / "restored"
    (restored / "data").mkdir(parents=True)
    shutil.copyfile(dest, restored / "data" / "parley.db")
    url = f"sqlite:///{restored / 'data' / 'parley.db'}"
    with running_relay() as (sink, relay_port):
        proc, second = serve_parley(restored, url, sink, relay_port)
        try:
            for invited in booked:
                booking = second.booking(invited.id)
                assert booking["uid"] == invited.uid
                assert booking["status"] == "confirmed"
        finally:
            second.http.close()
            stop_parley(proc)


def test_backup_refuses_postgresql_and_names_pg_dump(tmp_path: Path) -> None:
    url = "postgresql+psycopg://parley:s3cret@db.internal:5432/parley"
    done = run_backup(tmp_path / "data", tmp_path / "x.db", PARLEY_DATABASE_URL=url)
    assert done.returncode == 1
    assert "pg_dump --format=custom" in done.stderr and "pg_restore" in done.stderr
    assert "s3cret" not in done.stderr
    assert not (tmp_path / "x.db").exists()
