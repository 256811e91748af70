"""Plain statements in the session's transaction: ``driver_batch`` and ``insert_of``.

On PostgreSQL the batch is one pipeline, where statements that return no rows share a
cursor; every statement's rows must still come back in order, and an error must stop
the batch and leave the transaction to roll back.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import select

from core.db.driver import _returns_rows, driver_batch, insert_of
from core.db.models import AuditEntry, Tenant
from core.runtime import Runtime

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def test_rows_come_back_in_order_between_writes(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        dialect = session.get_bind().dialect
        first = AuditEntry(
            at=NOW, actor="a@example.net", action="test.one", subject_type="booking",
            subject_id="b1", data={"n": 1, "when": "now"},
        )  # fmt: skip
        second = AuditEntry(
            at=NOW, actor="b@example.net", action="test.two", subject_type="booking",
            subject_id="b1", data={"n": 2},
        )  # fmt: skip
        results = driver_batch(
            session,
            [
                insert_of(first, dialect),
                ("SELECT count(*) FROM audit_log WHERE subject_id = :id", {"id": "b1"}),
                insert_of(second, dialect),
                ("UPDATE audit_log SET actor = :actor WHERE action = 'test.one'", {"actor": "c"}),
                # Taken for one that returns rows (it starts with WITH), yet it returns none.
                ("WITH one AS (SELECT 1) UPDATE audit_log SET subject_type = 'booking'", {}),
                ("SELECT action, actor FROM audit_log WHERE subject_id = :id ORDER BY id",
                 {"id": "b1"}),
            ],
        )  # fmt: skip
    assert results == [[], [(1,)], [], [], [], [("test.one", "c"), ("test.two", "b@example.net")]]
    with runtime.sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [(r.tenant_id, r.at, r.data) for r in rows] == [
            ("default", NOW, {"n": 1, "when": "now"}),  # the tenant's column default applied
            ("default", NOW, {"n": 2}),
        ]


def test_a_failing_statement_stops_the_batch(runtime: Runtime) -> None:
    with pytest.raises((psycopg.Error, sqlite3.Error)), runtime.sessions.begin() as session:
        driver_batch(
            session,
            [
                ("UPDATE tenants SET name = 'changed' WHERE id = 'default'", {}),
                ("INSERT INTO no_such_table (x) VALUES (1)", {}),
            ],
        )
    with runtime.sessions() as session:
        tenant = session.get(Tenant, "default")
        assert tenant is not None and tenant.name != "changed"


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT 1", True),
        ("  select id FROM jobs FOR UPDATE SKIP LOCKED", True),
        ("WITH x AS (SELECT 1) SELECT * FROM x", True),
        ("INSERT INTO t (a) VALUES (1)", False),
        ("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING RETURNING id", True),
        ("UPDATE t SET a = 1", False),
        ("update t set a = 1 returning a", True),
        ("DELETE FROM t", False),
        ("BEGIN", False),
    ],
)
def test_which_statements_return_rows(sql: str, rows: bool) -> None:
    assert _returns_rows(sql) is rows
