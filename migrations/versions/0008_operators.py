"""Operators of a tenant (the console at /admin); sessions and sign-in links for them.

A web session or sign-in link now belongs to a provider or to an operator; the operator
keys include tenant_id, so the schema stays distributable by tenant.

Revision ID: 0008
Revises: 0009_list_indexes
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0009_list_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPERATOR = (["tenant_id", "operator_id"], ["tenant_id", "id"])


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role in ('owner', 'manager', 'staff', 'viewer')", name=op.f("ck_operators_role")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_operators_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("tenant_id", "email", name=op.f("uq_operators_tenant_id_email")),
        sa.UniqueConstraint("tenant_id", "id", name=op.f("uq_operators_tenant_id_id")),
    )
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_operators_tenant_id"), ["tenant_id"], unique=False)
    with op.batch_alter_table("magic_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("operator_id", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_magic_links_tenant_id_operators"), "operators", *_OPERATOR,
            ondelete="CASCADE",
        )  # fmt: skip
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("operator_id", sa.String(length=40), nullable=True))
        batch_op.alter_column("provider_id", existing_type=sa.String(length=40), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_web_sessions_tenant_id_operators"), "operators", *_OPERATOR,
            ondelete="CASCADE",
        )  # fmt: skip
        batch_op.create_check_constraint(
            batch_op.f("ck_web_sessions_one_subject"),
            "(provider_id is null) <> (operator_id is null)",
        )


def downgrade() -> None:
    op.execute("DELETE FROM web_sessions WHERE operator_id IS NOT NULL")
    op.execute("DELETE FROM magic_links WHERE operator_id IS NOT NULL")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_web_sessions_one_subject"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_web_sessions_tenant_id_operators"), type_="foreignkey"
        )
        batch_op.alter_column("provider_id", existing_type=sa.String(length=40), nullable=False)
        batch_op.drop_column("operator_id")
    with op.batch_alter_table("magic_links", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_magic_links_tenant_id_operators"), type_="foreignkey")
        batch_op.drop_column("operator_id")
    with op.batch_alter_table("operators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_operators_tenant_id"))
    op.drop_table("operators")
