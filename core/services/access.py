"""Who is calling and what they may do: the system token, tenant API keys and their roles.

A ``Caller`` acts inside exactly one tenant. The system token (PARLEY_ADMIN_TOKEN) may
act in any tenant it names and in ``default`` without naming one; a tenant key acts in
its own tenant only. Roles, each including the ones below it:

- viewer: read everything it may see;
- staff: also sync a calendar now, approve or decline a request to book;
- manager: also create and change providers, availability, sources, bookings, feeds;
- owner: also manage the tenant's keys and operators.

A key limited to some providers sees only those. Anything of another tenant, or of a
provider the key may not see, is "not found" (never "forbidden", so ids cannot be
probed); an action the role does not include is ``Forbidden``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import DEFAULT_TENANT, ApiKey, Booking, ExternalSource, Provider, Tenant
from core.services.errors import Forbidden, NotFoundError

KEY_PREFIX = "prl"
R = TypeVar("R", Provider, Booking, ExternalSource)
ROLES = ("viewer", "staff", "manager", "owner")


class Grant(IntEnum):
    """What an action needs, in the order the roles include them."""

    READ = 0  # viewer
    OPERATE = 1  # staff: sync now, approve or decline a request to book
    WRITE = 2  # manager
    KEYS = 3  # owner
    SYSTEM = 4  # the system token only: tenants


_ROLE_GRANT = {"viewer": Grant.READ, "staff": Grant.OPERATE, "manager": Grant.WRITE,
               "owner": Grant.KEYS}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller acting in ``tenant_id``."""

    tenant_id: str
    role: str  # one of ROLES, or "system"
    providers: frozenset[str] | None = None  # None: every provider of the tenant
    key_id: str | None = None
    operator_id: str | None = None  # an operator signed in to the console at /admin
    actor: str | None = None  # how the audit log names anyone else (a provider on /me)

    @property
    def grant(self) -> Grant:
        return Grant.SYSTEM if self.role == "system" else _ROLE_GRANT[self.role]

    @property
    def name(self) -> str:
        """How the audit log names this caller."""
        if self.actor is not None:
            return self.actor
        if self.operator_id is not None:
            return f"operator:{self.operator_id}"
        return "admin" if self.key_id is None else f"key:{self.key_id}"

    def require(self, needed: Grant) -> None:
        """Raise ``Forbidden`` unless the role includes ``needed``."""
        if self.grant < needed:
            raise Forbidden(f"a {self.role} key may not do this")

    def sees(self, tenant_id: str, provider_id: str | None = None) -> bool:
        """True when a row of ``tenant_id`` (and ``provider_id``) is visible to this caller."""
        if tenant_id != self.tenant_id:
            return False
        return self.providers is None or provider_id is None or provider_id in self.providers


SYSTEM = Caller(DEFAULT_TENANT, "system")  # the system token in the default tenant


def system_caller(session: Session, tenant_slug: str | None) -> Caller:
    """The system token acting in the tenant with ``tenant_slug`` (default when None)."""
    if tenant_slug is None:
        return SYSTEM
    found = session.scalar(select(Tenant.id).where(Tenant.slug == tenant_slug.strip().lower()))
    if found is None:
        raise NotFoundError("tenant", tenant_slug)
    return Caller(found, "system")


def authenticate(
    session: Session, token: str, admin_token: str, tenant_slug: str | None
) -> Caller | None:
    """The caller ``token`` stands for, in the tenant ``tenant_slug`` names; None if nobody.

    A tenant key with a ``tenant_slug`` of another tenant is ``NotFoundError``.
    """
    if hmac.compare_digest(token.encode(), admin_token.encode()):
        return system_caller(session, tenant_slug)
    caller = key_caller(session, token)
    if caller is not None and tenant_slug is not None:
        slug = session.scalar(select(Tenant.slug).where(Tenant.id == caller.tenant_id))
        if tenant_slug.strip().lower() != slug:
            raise NotFoundError("tenant", tenant_slug)
    return caller


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(tenant_id: str) -> str:
    """A fresh key naming its tenant: ``prl.<tenant id>.<43 characters, 256 bits>``."""
    return f"{KEY_PREFIX}.{tenant_id}.{secrets.token_urlsafe(32)}"


def key_caller(session: Session, key: str) -> Caller | None:
    """The caller a tenant key stands for, or None for an unknown or revoked key."""
    prefix, _, rest = key.partition(".")
    tenant_id, _, secret = rest.partition(".")
    if prefix != KEY_PREFIX or not tenant_id or not secret or len(key) > 200:
        return None
    digest = key_hash(key)
    row = session.scalar(
        select(ApiKey).where(ApiKey.tenant_id == tenant_id, ApiKey.key_hash == digest)
    )
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, digest):
        return None
    limited = frozenset(row.providers) if row.providers is not None else None
    return Caller(row.tenant_id, row.role, limited, key_id=row.id)


# --- the one place rows are checked against the caller ------------------------------------


def visible_provider(session: Session, caller: Caller, provider_id: str) -> Provider:
    """The provider, when the caller may see it; else ``NotFoundError``."""
    return _visible(session, caller, Provider, provider_id, "provider")


def visible_booking(session: Session, caller: Caller, booking_id: str) -> Booking:
    return _visible(session, caller, Booking, booking_id, "booking")


def visible_source(session: Session, caller: Caller, source_id: str) -> ExternalSource:
    return _visible(session, caller, ExternalSource, source_id, "source")


def _visible(session: Session, caller: Caller, model: type[R], ident: str, kind: str) -> R:
    """The row of ``model`` with ``ident`` when its tenant (and provider) are the caller's."""
    row = session.get(model, ident)
    provider_id = None if row is None else getattr(row, "provider_id", getattr(row, "id", None))
    if row is None or not caller.sees(row.tenant_id, provider_id):  # type: ignore[attr-defined]
        raise NotFoundError(kind, ident)
    return row
