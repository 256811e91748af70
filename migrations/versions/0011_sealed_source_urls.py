"""Imported calendars' URLs sealed at rest: sealed, a keyed digest, and a masked form.

Rows already stored are sealed here when the secret key can be read (PARLEY_SECRET_KEY or
the data folder's secret_key file); otherwise the first `parley serve` or `parley worker`
seals them (core.services.source_urls.seal_plain_urls). Until then they still work.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _secret_key() -> bytes | None:
    from core.settings import load_settings

    try:
        settings = load_settings()
    except Exception:
        return None
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.data_dir / "secret_key"
    return path.read_text().strip().encode() if path.exists() else None


def _seal_existing() -> None:
    from core.services.source_urls import seal_url

    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, url FROM external_sources")).all()
    key = _secret_key() if rows else None
    if key is None:
        return
    for ident, url in rows:
        sealed = seal_url(key, url)
        bind.execute(
            sa.text(
                "UPDATE external_sources SET url = :shown, url_sealed = :sealed,"
                " url_digest = :digest WHERE id = :id"
            ),
            {"shown": sealed.shown, "sealed": sealed.sealed, "digest": sealed.digest, "id": ident},
        )


def upgrade() -> None:
    with op.batch_alter_table("external_sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("url_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("url_digest", sa.String(length=64), nullable=True))
        batch_op.drop_constraint(
            op.f("uq_external_sources_tenant_id_provider_id_url"), type_="unique"
        )
        batch_op.create_unique_constraint(
            op.f("uq_external_sources_tenant_id_provider_id_url_digest"),
            ["tenant_id", "provider_id", "url_digest"],
        )
    _seal_existing()


def _unseal_existing() -> None:
    from core.crypto import URL_PURPOSE, unseal

    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, url_sealed FROM external_sources WHERE url_sealed IS NOT NULL")
    ).all()
    key = _secret_key() if rows else None
    if rows and key is None:
        raise RuntimeError("downgrading needs the secret key to put the sealed URLs back")
    for ident, sealed in rows:
        url = unseal(key or b"", bytes(sealed), purpose=URL_PURPOSE)
        bind.execute(
            sa.text("UPDATE external_sources SET url = :url WHERE id = :id"),
            {"url": url, "id": ident},
        )


def downgrade() -> None:
    _unseal_existing()
    with op.batch_alter_table("external_sources", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("uq_external_sources_tenant_id_provider_id_url_digest"), type_="unique"
        )
        batch_op.create_unique_constraint(
            op.f("uq_external_sources_tenant_id_provider_id_url"),
            ["tenant_id", "provider_id", "url"],
        )
        batch_op.drop_column("url_digest")
        batch_op.drop_column("url_sealed")
