"""Providers: creating and finding the people and units whose time is booked.

A provider's CalDAV user name is derived from its slug; the slug is unique per tenant
and the user name across the installation, so a clash of either is ``SlugTaken``.
Callers open the transaction; these functions only use the session they are given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.driver import driver_rows
from core.db.models import (
    DEFAULT_TENANT,
    AvailabilitySettings,
    Provider,
    Tenant,
    UnitRelationship,
    new_id,
)
from core.domain import parse_zone
from core.formatting import LOCALES
from core.services.busy import Related
from core.services.errors import InvalidInput, NotFoundError, SlugTaken

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?")
_EMAIL = re.compile(r"[^@\s<>\"]{1,64}@[^@\s<>\"]+\.[^@\s<>\"]+")


def dav_username(slug: str, tenant_slug: str = DEFAULT_TENANT) -> str:
    """The CalDAV user name of a provider with ``slug``: ``anna``, or ``anna.acme`` when the
    provider belongs to tenant ``acme`` (user names are unique across the deployment)."""
    return slug if tenant_slug == DEFAULT_TENANT else f"{slug}.{tenant_slug}"


def check_email(address: str, what: str = "email") -> str:
    """``address`` trimmed, or ``InvalidInput`` when it is not a plausible mail address."""
    address = address.strip()
    if len(address) > 320 or not _EMAIL.fullmatch(address):
        raise InvalidInput(f"{what} {address!r} is not an email address", code="invalid_email")
    return address


def create_provider(
    session: Session,
    *,
    name: str,
    email: str,
    timezone: str,
    slug: str,
    now: datetime,
    kind: str = "person",
    tenant_id: str = DEFAULT_TENANT,
    locale: str | None = None,
) -> Provider:
    """A new provider of ``tenant_id`` with default availability settings (no weekly rules);
    locale: the language of their pages and mails (English when None)."""
    slug = slug.strip().lower()
    if not _SLUG.fullmatch(slug):
        raise InvalidInput(
            "slug must be 1–80 characters a-z, 0-9 and '-', not starting or ending with '-'",
            code="invalid_slug",
        )
    if not name.strip() or len(name) > 200:
        raise InvalidInput("name must be 1–200 characters", code="invalid_name")
    if kind not in ("person", "unit"):
        raise InvalidInput("kind must be 'person' or 'unit'", code="invalid_kind")
    parse_zone(timezone)
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFoundError("tenant", tenant_id)
    username = dav_username(slug, tenant.slug)
    taken = select(Provider.id).where(
        ((Provider.slug == slug) & (Provider.tenant_id == tenant_id))
        | (Provider.dav_username == username)
    )
    if session.scalar(taken) is not None:
        raise SlugTaken(slug)
    provider = Provider(
        id=new_id("prv"),
        tenant_id=tenant_id,
        kind=kind,
        name=name.strip(),
        slug=slug,
        email=check_email(email),
        timezone=timezone,
        locale=_check_locale(locale) if locale is not None else None,
        dav_username=username,
        created_at=now,
        updated_at=now,
    )
    session.add(provider)
    try:
        session.flush()
    except IntegrityError as error:  # a concurrent create with the same slug won
        raise SlugTaken(slug) from error
    session.add(
        AvailabilitySettings(provider_id=provider.id, tenant_id=provider.tenant_id, updated_at=now)
    )
    session.flush()
    return provider


def _check_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise InvalidInput(f"locale must be one of {', '.join(LOCALES)}", code="invalid_locale")
    return locale


def update_provider(
    session: Session,
    provider: Provider,
    *,
    now: datetime,
    name: str | None = None,
    timezone: str | None = None,
    kind: str | None = None,
    locale: str | None = None,
) -> Provider:
    """Change a provider's name, zone, kind (a unit in a relationship stays a unit) or
    the language of their mails (one of core.formatting.LOCALES)."""
    if name is not None:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("name must be 1–200 characters", code="invalid_name")
        provider.name = name.strip()
    if timezone is not None:
        parse_zone(timezone)
        provider.timezone = timezone
    if locale is not None:
        provider.locale = _check_locale(locale)
    if kind is not None:
        if kind not in ("person", "unit"):
            raise InvalidInput("kind must be 'person' or 'unit'", code="invalid_kind")
        linked = select(UnitRelationship.id).where(
            (UnitRelationship.parent_id == provider.id) | (UnitRelationship.child_id == provider.id)
        )
        if kind == "person" and session.scalar(linked.limit(1)) is not None:
            raise InvalidInput(
                "this unit has parent or child units: delete those relationships first",
                code="unit_in_use",
            )
        provider.kind = kind
    provider.updated_at = now
    session.flush()
    return provider


def booking_url(session: Session, provider: Provider, base_url: str) -> str:
    """Where the provider's booking page is: base_url/book/{slug} for the default tenant;
    for another, /book/{slug} on the tenant's own host when it has one, else under
    base_url/t/{tenant} (two tenants may each have an ``anna``)."""
    if provider.tenant_id == DEFAULT_TENANT:
        return f"{base_url}/book/{provider.slug}"
    found = session.execute(
        select(Tenant.slug, Tenant.host).where(Tenant.id == provider.tenant_id)
    ).one()
    if found.host:
        return f"{base_url.partition('://')[0]}://{found.host}/book/{provider.slug}"
    return f"{base_url}/t/{found.slug}/book/{provider.slug}"


def get_provider(session: Session, provider_id: str) -> Provider:
    """The provider with ``provider_id`` or ``NotFoundError``."""
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFoundError("provider", provider_id)
    return provider


def get_provider_by_slug(session: Session, slug: str, tenant_id: str = DEFAULT_TENANT) -> Provider:
    """The provider of ``tenant_id`` whose public slug is ``slug`` or ``NotFoundError``."""
    query = select(Provider).where(Provider.slug == slug.lower(), Provider.tenant_id == tenant_id)
    provider = session.scalar(query)
    if provider is None:
        raise NotFoundError("provider", slug)
    return provider


def public_provider(session: Session, slug: str, tenant_slug: str | None = None) -> Provider:
    """The provider a public page names: by slug in the default tenant, or in the tenant
    with ``tenant_slug`` (the default tenant is never reached under a tenant slug)."""
    tenant_id = DEFAULT_TENANT
    if tenant_slug is not None:
        found = session.scalar(select(Tenant.id).where(Tenant.slug == tenant_slug.lower()))
        if found is None or found == DEFAULT_TENANT:
            raise NotFoundError("provider", slug)
        tenant_id = found
    return get_provider_by_slug(session, slug, tenant_id)


def lock_providers(session: Session, provider_ids: Iterable[str]) -> None:
    """Serialize writers per provider: row locks in id order (PostgreSQL).

    On SQLite every transaction already starts with BEGIN IMMEDIATE, which serializes
    all writers, so there is nothing to lock. Sorting the ids keeps two transactions
    that lock the same related units from deadlocking.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted(set(provider_ids))
    found = session.scalars(
        select(Provider.id).where(Provider.id.in_(ids)).order_by(Provider.id).with_for_update()
    ).all()
    missing = set(ids) - set(found)
    if missing:
        raise NotFoundError("provider", sorted(missing)[0])


@dataclass(frozen=True, slots=True)
class Scope:
    """What a slot check needs about a provider, read in one statement.

    ``settings`` holds the stored availability settings in column order (None when the
    provider has none yet); ``related`` the units whose time blocks this one.
    """

    id: str
    name: str
    email: str
    timezone: str
    settings: tuple[Any, ...] | None
    related: Related
    tenant_id: str = DEFAULT_TENANT


# The provider, its settings and the related units that can block it: every unit above it
# through links that block downwards, at any depth, and the children that block it only
# all together. With FOR UPDATE
# (PostgreSQL) it also locks all of them, in id order so that two transactions touching
# the same units never deadlock; SQLite's BEGIN IMMEDIATE already serializes writers.
_SCOPE = """
    WITH RECURSIVE above(id, depth) AS (
        SELECT parent_id, 1 FROM unit_relationships
         WHERE child_id = :provider AND active AND block_child_on_parent
        UNION
        SELECT r.parent_id, a.depth + 1
          FROM unit_relationships r JOIN above a ON r.child_id = a.id
         WHERE r.active AND r.block_child_on_parent AND a.depth < 16
    )
    SELECT p.id, p.name, p.email, p.timezone,
           s.lead_time_hours, s.booking_window_days, s.min_duration_minutes,
           s.slot_step_minutes, s.buffer_before_minutes, s.buffer_after_minutes,
           s.instant_book, s.provider_id,
           p.id IN (SELECT id FROM above),
           EXISTS (SELECT 1 FROM unit_relationships r
                    WHERE r.parent_id = :provider AND r.child_id = p.id
                      AND r.active AND r.block_parent_on_all_children),
           p.tenant_id
      FROM providers p LEFT JOIN availability_settings s ON s.provider_id = p.id
     WHERE p.id IN (
           SELECT CAST(:provider AS VARCHAR(40))
           UNION ALL
           SELECT id FROM above
           UNION ALL
           SELECT child_id FROM unit_relationships
            WHERE parent_id = :provider AND active AND block_parent_on_all_children)
     ORDER BY p.id
"""


def load_scope(session: Session, provider_id: str, *, lock: bool = False) -> Scope:
    """The provider with settings and related units; ``lock`` serializes writers per provider.

    Raises ``NotFoundError`` for an unknown provider.
    """
    rows = driver_rows(
        session, scope_sql(session.get_bind().dialect.name, lock=lock), {"provider": provider_id}
    )
    return scope_from_rows(rows, provider_id)


def scope_sql(dialect: str, *, lock: bool) -> str:
    """The scope statement (parameter ``provider``), locking on PostgreSQL when asked."""
    if lock and dialect == "postgresql":
        return _SCOPE + " FOR UPDATE OF p"
    return _SCOPE


def scope_from_rows(rows: list[tuple[Any, ...]], provider_id: str) -> Scope:
    """The ``Scope`` that the scope statement's rows describe, or ``NotFoundError``."""
    own = next((row for row in rows if row[0] == provider_id), None)
    if own is None:
        raise NotFoundError("provider", provider_id)
    related = Related(
        parents=tuple(row[0] for row in rows if row[12] and row[0] != provider_id),
        children_all=tuple(row[0] for row in rows if row[13] and row[0] != provider_id),
        names={row[0]: row[1] for row in rows},
    )
    settings = tuple(own[4:11]) if own[11] is not None else None
    return Scope(own[0], own[1], own[2], own[3], settings, related, own[14])
