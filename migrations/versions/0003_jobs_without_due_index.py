"""Jobs: no index on (status, run_at).

The jobs table holds one row per periodic job, and those rows are updated on every wake,
claim and finish: hundreds of times a second while mail streams in. An index on the
columns those updates change made each of them write new index entries (no heap-only
update), and a claim's index scan walked thousands of dead ones between vacuums. Without
it the updates stay on their page and the claim reads the table's few rows.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_jobs_due", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_due", "jobs", ["status", "run_at"], unique=False)
