"""Every unique constraint and foreign key includes tenant_id (a schema Citus can distribute).

Unique keys gain tenant_id first; every parent gets UNIQUE (tenant_id, id), and each child's
foreign key becomes (x_id, tenant_id) -> parent (id, tenant_id), so the database refuses
a row pointing at another tenant's parent. holds.booking_id and
proposals.inbound_message_id were ON DELETE SET NULL; on a composite key that would null
tenant_id too, so they become NO ACTION (see the models for why that is safe).

Revision ID: 0007_tenant_keys
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_tenant_keys"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Parents before children, so that PostgreSQL finds UNIQUE (tenant_id, id) to point at.
# table: (unique keys before (each gains tenant_id), [(fk column, parent, ondelete before)])
_TABLES: dict[str, tuple[list[list[str]], list[tuple[str, str, str]]]] = {
    "providers": ([["dav_username"]], []),
    "availability_settings": ([], [("provider_id", "providers", "CASCADE")]),
    "weekly_rules": ([], [("provider_id", "providers", "CASCADE")]),
    "availability_exceptions": ([], [("provider_id", "providers", "CASCADE")]),
    "vacations": ([], [("provider_id", "providers", "CASCADE")]),
    "unit_relationships": (
        [["parent_id", "child_id"]],
        [("parent_id", "providers", "CASCADE"), ("child_id", "providers", "CASCADE")],
    ),
    "bookings": ([["uid"]], [("provider_id", "providers", "CASCADE")]),
    "holds": (
        [],
        [("provider_id", "providers", "CASCADE"), ("booking_id", "bookings", "SET NULL")],
    ),
    "invitations": (
        [["booking_id", "role"], ["plus_tag"]],
        [("booking_id", "bookings", "CASCADE")],
    ),
    "inbound_messages": ([["message_key"]], []),
    "proposals": (
        [],
        [
            ("booking_id", "bookings", "CASCADE"),
            ("inbound_message_id", "inbound_messages", "SET NULL"),
        ],
    ),
    "magic_links": (
        [["token_hash"]],
        [
            ("booking_id", "bookings", "CASCADE"),
            ("proposal_id", "proposals", "CASCADE"),
            ("provider_id", "providers", "CASCADE"),
        ],
    ),
    "outbound_messages": ([["idempotency_key"], ["uid", "sequence", "attendee", "method"]], []),
    "external_sources": ([["provider_id", "url"]], [("provider_id", "providers", "CASCADE")]),
    "external_events": (
        [["source_id", "uid", "recurrence_id"]],
        [("source_id", "external_sources", "CASCADE"), ("provider_id", "providers", "CASCADE")],
    ),
    "sync_logs": ([], [("source_id", "external_sources", "CASCADE")]),
    "conflicts": (
        [["event_a_id", "event_b_id"]],
        [
            ("provider_id", "providers", "CASCADE"),
            ("event_a_id", "external_events", "CASCADE"),
            ("event_b_id", "external_events", "CASCADE"),
        ],
    ),
    "dav_calendars": ([["provider_id", "name"]], [("provider_id", "providers", "CASCADE")]),
    "dav_objects": ([["calendar_id", "href"]], [("calendar_id", "dav_calendars", "CASCADE")]),
    "dav_busy": (
        [],
        [
            ("provider_id", "providers", "CASCADE"),
            ("calendar_id", "dav_calendars", "CASCADE"),
            ("object_id", "dav_objects", "CASCADE"),
        ],
    ),
    "dav_changes": ([], [("calendar_id", "dav_calendars", "CASCADE")]),
    "feed_tokens": ([["token_hash"]], [("provider_id", "providers", "CASCADE")]),
    "app_passwords": ([], [("provider_id", "providers", "CASCADE")]),
    "web_sessions": ([["token_hash"]], [("provider_id", "providers", "CASCADE")]),
}
_PARENTS = {parent for _, fks in _TABLES.values() for _, parent, _ in fks}
_KEEP_SET_NULL_AS_NO_ACTION = {"SET NULL": None}
_MESSAGE_KEY = "ix_inbound_messages_message_key"


def _uq(table: str, columns: list[str]) -> str:
    return op.f(f"uq_{table}_{'_'.join(columns)}")


def _fk(table: str, column: str, parent: str) -> str:
    return op.f(f"fk_{table}_{column}_{parent}")


def _repair() -> None:
    """Put each row in its parent's tenant before the keys demand it.

    Until now rows of a provider could be written in the default tenant whatever the
    provider's (availability settings and rules were); the row's tenant is its parent's.
    A nullable reference that was SET NULL and still crosses tenants is cleared.
    """
    for table, (_, fks) in _TABLES.items():
        for column, parent, before in fks:
            theirs = f"(SELECT p.tenant_id FROM {parent} p WHERE p.id = {table}.{column})"
            crossing = f"{column} IS NOT NULL AND tenant_id <> {theirs}"
            if before == "SET NULL":
                op.execute(f"UPDATE {table} SET {column} = NULL WHERE {crossing}")
            else:
                op.execute(f"UPDATE {table} SET tenant_id = {theirs} WHERE {crossing}")


def upgrade() -> None:
    _repair()
    for table, (uniques, fks) in _TABLES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, parent, _ in fks:
                batch_op.drop_constraint(_fk(table, column, parent), type_="foreignkey")
            for columns in uniques:
                batch_op.drop_constraint(_uq(table, columns), type_="unique")
                batch_op.create_unique_constraint(
                    _uq(table, ["tenant_id", *columns]), ["tenant_id", *columns]
                )
            if table in _PARENTS:
                batch_op.create_unique_constraint(
                    _uq(table, ["tenant_id", "id"]), ["tenant_id", "id"]
                )
            if table == "inbound_messages":  # its key's lookup across tenants
                batch_op.create_index(_MESSAGE_KEY, ["message_key"], unique=False)
            for column, parent, before in fks:
                batch_op.create_foreign_key(
                    _fk(table, column, parent), parent, [column, "tenant_id"], ["id", "tenant_id"],
                    ondelete=_KEEP_SET_NULL_AS_NO_ACTION.get(before, before),
                )  # fmt: skip


def downgrade() -> None:
    for table, (uniques, fks) in reversed(_TABLES.items()):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, parent, _ in fks:
                batch_op.drop_constraint(_fk(table, column, parent), type_="foreignkey")
            if table in _PARENTS:
                batch_op.drop_constraint(_uq(table, ["tenant_id", "id"]), type_="unique")
            if table == "inbound_messages":
                batch_op.drop_index(_MESSAGE_KEY)
            for columns in uniques:
                batch_op.drop_constraint(_uq(table, ["tenant_id", *columns]), type_="unique")
                batch_op.create_unique_constraint(_uq(table, columns), columns)
            for column, parent, before in fks:
                batch_op.create_foreign_key(
                    _fk(table, column, parent), parent, [column], ["id"], ondelete=before
                )
