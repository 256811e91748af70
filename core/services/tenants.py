"""Tenants and their API keys: creating, listing, revoking.

A tenant is one organisation on a shared deployment, with its own organizer address; the
default tenant (id and slug "default") is the one a single-organisation install lives in
and keeps the organizer address of the settings. A key is shown once, when it is made,
and stored only as its SHA-256.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import (
    DEFAULT_TENANT,
    ApiKey,
    FeedToken,
    MagicLink,
    Provider,
    Tenant,
    new_id,
)
from core.services.access import ROLES, Caller, Grant, key_hash, new_key
from core.services.errors import InvalidInput, NotFoundError, TenantTaken
from core.services.providers import check_email
from core.tokens import token_hash

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
RESERVED_SLUGS = frozenset({"admin", "api", "dav", "book", "feeds", "me", "t", "static"})
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*(?::[1-9][0-9]{{0,4}})?")


def deployment_host(base_url: str) -> str:
    """The host of the deployment's own PARLEY_BASE_URL, which no tenant may take."""
    return base_url.partition("://")[2].partition("/")[0].lower()


def check_host(value: str | None) -> str | None:
    """A tenant's own host, as a browser sends it in Host: a DNS name, lower case, with a
    port when not the default one (book.casas.example, book.casas.example:8443); None
    (or "") for none. No scheme, path or address literal."""
    if value is None or not value.strip():
        return None
    host = value.strip().lower().rstrip(".")
    name = host.rpartition(":")[0] if ":" in host else host
    if len(host) > 260 or not _HOST.fullmatch(host) or name.replace(".", "").isdigit():
        raise InvalidInput(
            "host must be a DNS name with an optional port, like book.casas.example "
            "(no scheme, no path)",
            code="invalid_host",
        )
    return host


def create_tenant(
    session: Session,
    caller: Caller,
    *,
    name: str,
    slug: str,
    organizer_email: str,
    organizer_name: str | None,
    now: datetime,
    reserved: Iterable[str] = (),
    host: str | None = None,
    reserved_hosts: Iterable[str] = (),
) -> Tenant:
    """A new tenant (system token only).

    reserved: addresses no tenant may take (the default tenant's organizer and aliases);
    reserved_hosts: hosts no tenant may take (the deployment's own).
    """
    caller.require(Grant.SYSTEM)
    host = _free_host(session, check_host(host), reserved_hosts)
    slug = slug.strip().lower()
    if not _SLUG.fullmatch(slug) or slug in RESERVED_SLUGS or slug == DEFAULT_TENANT:
        raise InvalidInput(
            "slug must be 1–40 characters a-z, 0-9 and '-' (not a reserved word)",
            code="invalid_slug",
        )
    if not name.strip() or len(name) > 200:
        raise InvalidInput("name must be 1–200 characters", code="invalid_name")
    if organizer_name is not None and len(organizer_name) > 200:
        raise InvalidInput("organizer_name must be at most 200 characters", code="invalid_name")
    address = check_email(organizer_email, "organizer_email").lower()
    if "+" in address.partition("@")[0]:
        raise InvalidInput(
            "organizer_email must not carry a plus tag: Parley adds one per invitation",
            code="invalid_email",
        )
    if address in {r.strip().lower() for r in reserved}:
        raise TenantTaken(f"{address!r} is the default tenant's organizer address or alias")
    clash = select(Tenant.id).where(
        (Tenant.slug == slug) | (func.lower(Tenant.organizer_email) == address)
    )
    if session.scalar(clash) is not None:
        raise TenantTaken(f"a tenant with slug {slug!r} or address {address!r} exists")
    tenant = Tenant(
        id=new_id("tnt"),
        name=name.strip(),
        slug=slug,
        organizer_email=address,
        organizer_name=(organizer_name or "").strip() or None,
        host=host,
        created_at=now,
    )
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError as error:  # a concurrent create with the same slug won
        raise TenantTaken(f"a tenant with slug {slug!r} exists") from error
    return tenant


def set_host(
    session: Session,
    caller: Caller,
    tenant_id: str,
    host: str | None,
    *,
    reserved_hosts: Iterable[str] = (),
) -> Tenant:
    """Give a tenant a host of its own, or none (system token only; not the default)."""
    caller.require(Grant.SYSTEM)
    tenant = tenant_for(session, caller, tenant_id)
    if tenant.id == DEFAULT_TENANT:
        raise InvalidInput(
            "the default tenant lives at PARLEY_BASE_URL; set that instead", code="invalid_host"
        )
    checked = check_host(host)
    if checked != tenant.host:
        tenant.host = _free_host(session, checked, reserved_hosts)
        try:
            session.flush()
        except IntegrityError as error:
            raise TenantTaken(f"another tenant has host {checked!r}") from error
    return tenant


def _free_host(session: Session, host: str | None, reserved: Iterable[str]) -> str | None:
    if host is None:
        return None
    if host in {r.lower() for r in reserved}:
        raise TenantTaken(f"{host!r} is the deployment's own host (PARLEY_BASE_URL)")
    if session.scalar(select(Tenant.id).where(Tenant.host == host)) is not None:
        raise TenantTaken(f"another tenant has host {host!r}")
    return host


def tenant_of_token(session: Session, token: str, *, feed: bool = False) -> str | None:
    """The tenant a mailed link's token (or, with feed, a feed URL's) belongs to, else None."""
    table = FeedToken if feed else MagicLink
    query = select(table.tenant_id).where(table.token_hash == token_hash(token)).limit(1)
    return session.scalar(query)


def list_tenants(session: Session, caller: Caller) -> list[Tenant]:
    caller.require(Grant.SYSTEM)
    return list(session.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id)))


def tenant_for(session: Session, caller: Caller, tenant_id: str) -> Tenant:
    """The tenant ``tenant_id`` as ``caller`` may address it (its own, or any for system)."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or (caller.role != "system" and tenant.id != caller.tenant_id):
        raise NotFoundError("tenant", tenant_id)
    return tenant


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as made: ``key`` is the only time the secret is seen."""

    row: ApiKey
    key: str


def create_key(
    session: Session,
    caller: Caller,
    tenant_id: str,
    *,
    role: str,
    label: str | None,
    providers: Sequence[str] | None,
    now: datetime,
) -> IssuedKey:
    """A new key of ``role`` in the tenant (owner or system)."""
    caller.require(Grant.KEYS)
    tenant = tenant_for(session, caller, tenant_id)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    if label is not None and len(label) > 200:
        raise InvalidInput("label must be at most 200 characters", code="invalid_label")
    limited = None if providers is None else sorted(set(providers))
    if limited is not None:
        if not limited or len(limited) > 1000:
            raise InvalidInput("providers must list 1–1000 provider ids", code="invalid_providers")
        found = set(
            session.scalars(
                select(Provider.id).where(Provider.id.in_(limited), Provider.tenant_id == tenant.id)
            )
        )
        missing = [ident for ident in limited if ident not in found]
        if missing:
            raise NotFoundError("provider", missing[0])
    key = new_key(tenant.id)
    row = ApiKey(
        id=new_id("key"),
        tenant_id=tenant.id,
        key_hash=key_hash(key),
        role=role,
        label=label,
        providers=limited,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return IssuedKey(row, key)


def list_keys(session: Session, caller: Caller, tenant_id: str) -> list[ApiKey]:
    caller.require(Grant.KEYS)
    tenant = tenant_for(session, caller, tenant_id)
    query = select(ApiKey).where(ApiKey.tenant_id == tenant.id)
    return list(session.scalars(query.order_by(ApiKey.created_at.desc(), ApiKey.id.desc())))


def revoke_key(
    session: Session, caller: Caller, tenant_id: str, key_id: str, now: datetime
) -> ApiKey:
    """Revoke a key at once; revoking twice keeps the first time."""
    caller.require(Grant.KEYS)
    tenant = tenant_for(session, caller, tenant_id)
    row = session.get(ApiKey, key_id)
    if row is None or row.tenant_id != tenant.id:
        raise NotFoundError("api key", key_id)
    if row.revoked_at is None:
        row.revoked_at = now
    return row
