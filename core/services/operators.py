"""Operators: the people who run a tenant from the console at /admin.

An operator is an address with a role (the roles of API keys) in one tenant. The owner
(or the system token) adds and removes them; removing one ends their sessions at once.
They sign in by an emailed single-use link through the accounts machinery, and the
console acts for them as a ``Caller`` with their role in their tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import MagicLink, Operator, Tenant, WebSession, new_id
from core.events import record
from core.services import accounts
from core.services.access import ROLES, Caller, Grant
from core.services.errors import InvalidInput, NotFoundError, OperatorExists
from core.services.notify import Mailer
from core.services.providers import check_email
from core.services.tenants import tenant_for

LINK_PATH = "/admin/link?t="


@dataclass(frozen=True, slots=True)
class SignedIn:
    """An operator's live console session: who, where, and the caller they act as."""

    viewer: accounts.OperatorViewer
    operator_id: str
    email: str
    role: str
    tenant_id: str
    tenant_name: str
    caller: Caller


def caller_of(operator: Operator) -> Caller:
    """The caller an operator acts as: their role, in their tenant, over every provider."""
    return Caller(operator.tenant_id, operator.role, None, operator_id=operator.id)


# --- managing operators ------------------------------------------------------------------------


def add_operator(
    session: Session, caller: Caller, tenant_id: str, *, email: str, role: str, now: datetime
) -> Operator:
    """A new operator of the tenant (its owner, or the system token)."""
    caller.require(Grant.KEYS)
    tenant = tenant_for(session, caller, tenant_id)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    address = check_email(email).lower()
    taken = select(Operator.id).where(Operator.tenant_id == tenant.id, Operator.email == address)
    if session.scalar(taken) is not None:
        raise OperatorExists(f"{address} is an operator of this tenant already")
    row = Operator(id=new_id("opr"), tenant_id=tenant.id, email=address, role=role, created_at=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError as error:  # a concurrent add of the same address won
        raise OperatorExists(f"{address} is an operator of this tenant already") from error
    record("admin.operator.added", tenant_id=tenant.id, operator_id=row.id, role=role)
    return row


def list_operators(session: Session, caller: Caller, tenant_id: str) -> list[Operator]:
    caller.require(Grant.KEYS)
    tenant = tenant_for(session, caller, tenant_id)
    query = select(Operator).where(Operator.tenant_id == tenant.id)
    return list(session.scalars(query.order_by(Operator.created_at.desc(), Operator.id.desc())))


def remove_operator(
    session: Session, caller: Caller, tenant_id: str, operator_id: str, now: datetime
) -> None:
    """Remove an operator; their sessions and unused sign-in links end with them."""
    caller.require(Grant.KEYS)
    tenant = tenant_for(session, caller, tenant_id)
    row = session.get(Operator, operator_id)
    if row is None or row.tenant_id != tenant.id:
        raise NotFoundError("operator", operator_id)
    # Explicit, so it does not depend on the database enforcing ON DELETE CASCADE.
    mine = (WebSession.tenant_id == tenant.id, WebSession.operator_id == row.id)
    session.execute(delete(WebSession).where(*mine))
    session.execute(
        delete(MagicLink).where(MagicLink.tenant_id == tenant.id, MagicLink.operator_id == row.id)
    )
    session.delete(row)
    record("admin.operator.removed", tenant_id=tenant.id, operator_id=operator_id)


# --- signing in ----------------------------------------------------------------------------------


def request_sign_in(
    session: Session, mailer: Mailer, address: str, *, now: datetime, ttl: timedelta
) -> int:
    """Mail a console sign-in link to each operator with this address (one per tenant).

    Returns how many were sent; the page says the same whatever the count.
    """
    address = check_email(address).lower()
    found = session.scalars(
        select(Operator).where(Operator.email == address).order_by(Operator.created_at).limit(5)
    ).all()
    for operator in found:
        account = accounts.Account.of(operator)
        accounts.send_sign_in_link(session, mailer, account, LINK_PATH, now=now, ttl=ttl)
    record("admin.sign_in.requested", sent=len(found))
    return len(found)


def check_sign_in_link(session: Session, secret: bytes, token: str, *, now: datetime) -> str:
    """Whom a still usable console link signs in, as "address (tenant)"; changes nothing."""
    account = accounts.check_link(session, secret, token, kind=accounts.OPERATOR_ROLE, now=now)
    tenant = session.get(Tenant, account.tenant_id)
    return f"{account.email} ({tenant.name if tenant else account.tenant_id})"


def redeem_sign_in(
    session: Session, secret: bytes, token: str, *, now: datetime, lifetime: timedelta
) -> accounts.OpenedSession:
    """Use up a console sign-in link and open the operator's session."""
    kind = accounts.OPERATOR_ROLE
    return accounts.redeem_link(session, secret, token, kind=kind, now=now, lifetime=lifetime)


def signed_in(session: Session, cookie: str, *, now: datetime) -> SignedIn | None:
    """The operator behind a console cookie, or None (unknown, expired, revoked, removed)."""
    row = accounts.live_session(session, cookie, kind=accounts.OPERATOR_ROLE, now=now)
    operator = session.get(Operator, row.operator_id) if row and row.operator_id else None
    if row is None or operator is None or operator.tenant_id != row.tenant_id:
        return None
    tenant = session.get(Tenant, operator.tenant_id)
    viewer = accounts.OperatorViewer(row.id, operator.id, row.csrf_secret)
    return SignedIn(
        viewer=viewer,
        operator_id=operator.id,
        email=operator.email,
        role=operator.role,
        tenant_id=operator.tenant_id,
        tenant_name=tenant.name if tenant else operator.tenant_id,
        caller=caller_of(operator),
    )


def names(session: Session, tenant_id: str) -> dict[str, str]:
    """How the audit log's operator actors read: "operator:<id>" → their address."""
    rows = session.execute(
        select(Operator.id, Operator.email).where(Operator.tenant_id == tenant_id)
    ).all()
    return {f"operator:{ident}": email for ident, email in rows}
