"""CalDAV app passwords: issued once, stored as salted scrypt hashes, revocable.

Failed logins are counted per client address in rate_limits (never per user name, which
is the public booking slug); an address with too many in a window is slowed by the CalDAV
auth plugin until the window passes, and the right password is never refused.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import AppPassword, Provider, RateLimit, new_id
from core.services import ratelimit
from core.services.errors import NotFoundError, RateLimited

# scrypt cost: ~16 MiB and some tens of ms; app passwords carry 192 random bits, so this
# guards the hashes against offline guessing far beyond what is needed.
_N, _R, _P = 2**14, 8, 1
FAILURE_LIMIT = 10
FAILURE_WINDOW_SECONDS = 900


@dataclass(frozen=True, slots=True)
class IssuedPassword:
    """What the provider sees once: the CalDAV user name and the new password."""

    id: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class PasswordInfo:
    id: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def password_matches(password: str, stored: str) -> bool:
    """Constant-time check of password against a stored hash_password() value."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


def _provider(session: Session, provider_id: str) -> Provider:
    provider = session.get(Provider, provider_id)
    if provider is None:
        raise NotFoundError("provider", provider_id)
    return provider


def issue(
    session: Session, provider_id: str, now: datetime, label: str | None = None
) -> IssuedPassword:
    """A new app password for the provider; only its hash is stored."""
    provider = _provider(session, provider_id)
    password = secrets.token_urlsafe(24)
    row = AppPassword(
        id=new_id("apw"),
        tenant_id=provider.tenant_id,
        provider_id=provider.id,
        label=label,
        password_hash=hash_password(password),
        created_at=now,
    )
    session.add(row)
    session.flush()
    return IssuedPassword(id=row.id, username=provider.dav_username, password=password)


def list_passwords(session: Session, provider_id: str) -> list[PasswordInfo]:
    _provider(session, provider_id)
    rows = session.scalars(
        select(AppPassword)
        .where(AppPassword.provider_id == provider_id)
        .order_by(AppPassword.created_at)
    )
    return [PasswordInfo(r.id, r.label, r.created_at, r.last_used_at, r.revoked_at) for r in rows]


def revoke(session: Session, provider_id: str, password_id: str, now: datetime) -> None:
    row = session.get(AppPassword, password_id)
    if row is None or row.provider_id != provider_id:
        raise NotFoundError("app password", password_id)
    if row.revoked_at is None:
        row.revoked_at = now


def _failure_key(address: str) -> str:
    return f"dav-auth-fail-ip:{address}"


def is_throttled(session: Session, address: str, now: datetime) -> bool:
    """Whether the client address had FAILURE_LIMIT failed logins in this window."""
    row = session.get(RateLimit, _failure_key(address))
    start = ratelimit.window_start(now, FAILURE_WINDOW_SECONDS)
    return row is not None and row.window_start == start and row.hits >= FAILURE_LIMIT


def record_failure(session: Session, address: str, now: datetime) -> None:
    """Count one failed login from the client address."""
    # The counter is what matters; is_throttled() tells the auth plugin to slow it.
    with contextlib.suppress(RateLimited):
        ratelimit.hit(
            session,
            _failure_key(address),
            now,
            limit=FAILURE_LIMIT,
            window_seconds=FAILURE_WINDOW_SECONDS,
        )


def candidates(session: Session, username: str) -> list[tuple[str, str]]:
    """(id, hash) of the user's live app passwords."""
    query = (
        select(AppPassword.id, AppPassword.password_hash)
        .join(Provider, Provider.id == AppPassword.provider_id)
        .where(Provider.dav_username == username, AppPassword.revoked_at.is_(None))
    )
    return [(i, h) for i, h in session.execute(query)]


def is_live(session: Session, password_id: str) -> bool:
    row = session.get(AppPassword, password_id)
    return row is not None and row.revoked_at is None


def mark_used(
    session: Session, password_id: str, now: datetime, every: timedelta = timedelta(0)
) -> None:
    """Record use, at most once per ``every`` so busy clients do not write on each request."""
    row = session.get(AppPassword, password_id)
    if row is not None and (row.last_used_at is None or now - row.last_used_at >= every):
        row.last_used_at = now
