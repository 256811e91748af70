"""The schema can be distributed by tenant (Citus) without change: every unique constraint
and foreign key of a tenant table includes tenant_id, and a child's tenant_id is its parent's.

Read from the models (Alembic check keeps the migrations equal to them). Primary keys stay
the single-column ``id`` (SQLite's rowid autoincrement needs it); Citus also wants
tenant_id in each distributed table's primary key, which is left for when Citus is
actually adopted: ``UNIQUE (tenant_id, id)`` on every parent already gives the composite
foreign keys their target.
"""

from __future__ import annotations

from sqlalchemy import ForeignKeyConstraint, Index, Table, UniqueConstraint

from core.db.models import Base

# Tables that are not distributed by tenant. A new table must either follow the rule or be
# listed here with its reason.
LOCAL = {
    "tenants": "the tenant list itself: a Citus reference table every tenant table points at",
    "jobs": "one queue per deployment: periodic jobs exist once (dedup_key), not per tenant",
    "rate_limits": "per-process-group counters keyed by a string (IP, address); stay local",
    "imap_state": "where the poller stopped in a mailbox of this deployment; stays local",
}


def _tenant_tables() -> list[Table]:
    return [t for name, t in Base.metadata.tables.items() if name not in LOCAL]


def test_every_table_is_either_local_with_a_reason_or_a_tenant_table() -> None:
    assert set(LOCAL) <= set(Base.metadata.tables), "LOCAL names a table that does not exist"
    assert all(reason.strip() for reason in LOCAL.values())
    assert [t.name for t in _tenant_tables() if "tenant_id" not in t.columns] == []
    assert len(_tenant_tables()) >= 25  # the rule below is not vacuous


def test_every_unique_constraint_and_unique_index_includes_tenant_id() -> None:
    missing = []
    for table in _tenant_tables():
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and "tenant_id" not in constraint.columns:
                missing.append(f"{table.name}: UNIQUE({', '.join(constraint.columns.keys())})")
        for index in table.indexes:
            if index.unique and "tenant_id" not in index.columns:
                missing.append(f"{table.name}: unique index {index.name}")
    assert missing == []


def _target(constraint: ForeignKeyConstraint, column: str) -> str:
    return next(f"{e.column.table.name}.{e.column.name}" for e in constraint.elements
                if e.parent.name == column)  # fmt: skip


def test_every_foreign_key_carries_tenant_id_to_the_parents_tenant_id() -> None:
    wrong = []
    for table in _tenant_tables():
        for fk in table.foreign_key_constraints:
            columns = list(fk.column_keys)
            if columns == ["tenant_id"]:
                if _target(fk, "tenant_id") != "tenants.id":
                    wrong.append(f"{table.name}: tenant_id -> {_target(fk, 'tenant_id')}")
                continue
            parent = fk.referred_table.name
            if "tenant_id" not in columns:
                wrong.append(f"{table.name}: ({', '.join(columns)}) -> {parent} without tenant_id")
            elif _target(fk, "tenant_id") != f"{parent}.tenant_id":
                wrong.append(f"{table.name}: tenant_id -> {_target(fk, 'tenant_id')}")
            elif parent in LOCAL:
                wrong.append(f"{table.name}: -> {parent}, a local table")
    assert wrong == []


def test_every_tenant_table_points_at_its_tenant() -> None:
    # Deleting a tenant takes all its rows; a table without this FK would keep orphans.
    missing = [
        t.name
        for t in _tenant_tables()
        if not any(list(fk.column_keys) == ["tenant_id"] for fk in t.foreign_key_constraints)
    ]
    assert missing == []


def test_a_foreign_key_never_sets_tenant_id_to_null() -> None:
    # ON DELETE SET NULL on (tenant_id, x_id) would null tenant_id too (NOT NULL): refused.
    wrong = [
        f"{t.name}: {', '.join(fk.column_keys)}"
        for t in _tenant_tables()
        for fk in t.foreign_key_constraints
        if "tenant_id" in fk.column_keys and (fk.ondelete or "").upper() == "SET NULL"
    ]
    assert wrong == []


def test_referenced_parents_have_a_unique_key_on_tenant_id_and_id() -> None:
    missing = set()
    for table in _tenant_tables():
        for fk in table.foreign_key_constraints:
            parent = fk.referred_table
            targets = {e.column.name for e in fk.elements}
            if parent.name == "tenants":
                continue
            keys = [set(c.columns.keys()) for c in parent.constraints
                    if isinstance(c, UniqueConstraint)]  # fmt: skip
            keys += [
                set(i.columns.keys()) for i in parent.indexes if isinstance(i, Index) and i.unique
            ]
            if targets not in keys:
                missing.add(f"{parent.name}({', '.join(sorted(targets))})")
    assert sorted(missing) == []
