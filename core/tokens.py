"""Signed magic-link tokens, random secrets and plus-address tags.

A token is URL-safe base64 of a small binary body and its HMAC-SHA256. It binds a booking,
a role, an address and a purpose, expires, and carries a random nonce so each issue is
distinct. Only token_hash() is stored; single use is the caller's database row. Pure:
time and randomness are passed in (random_token takes an injectable byte source).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from core.errors import TokenExpired, TokenInvalid, TokenWrongPurpose

_VERSION: Final = 1
# HMAC-SHA256 truncated to 128 bits (as RFC 4868 does): forging still takes ~2^128
# online guesses, and the links stay short enough to survive being copied by hand.
_MAC_BYTES: Final = 16
_DIGEST_BYTES: Final = 12
_MIN_SECRET: Final = 16
_MIN_NONCE: Final = 8
_MAX_FIELD: Final = 255
_HEAD: Final = struct.Struct(">BI")  # version, expires_at (Unix seconds, until 2106)
_TAG_CHARS: Final = 16  # 80 bits of base32; lower case because mail systems fold case


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says. The address is kept only as a keyed digest: tokens
    travel in URLs (logs, history, Referer), so they must not spell out a mail address."""

    booking_id: str
    role: str
    purpose: str
    address_digest: str
    expires_at: datetime
    nonce: bytes


def issue(
    secret: bytes,
    *,
    booking_id: str,
    role: str,
    address: str,
    purpose: str,
    expires_at: datetime,
    nonce: bytes,
) -> str:
    """A signed, URL-safe token; nonce must be fresh random bytes (secrets.token_bytes(16))."""
    _check_secret(secret)
    if len(nonce) < _MIN_NONCE or len(nonce) > _MAX_FIELD:
        raise ValueError(f"nonce must be {_MIN_NONCE}..{_MAX_FIELD} bytes")
    body = b"".join(
        [
            _HEAD.pack(_VERSION, _epoch(expires_at)),
            _field(nonce),
            bytes.fromhex(address_digest(secret, address)),
            _field(booking_id.encode()),
            _field(role.encode()),
            _field(purpose.encode()),
        ]
    )
    return _b64(body + _mac(secret, b"token", body)[:_MAC_BYTES])


def verify(secret: bytes, token: str, *, now: datetime, purpose: str) -> TokenClaims:
    """The claims of a genuine, unexpired token issued for purpose; raises a TokenError."""
    _check_secret(secret)
    raw = _unb64(token)
    body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(raw) <= _MAC_BYTES or not hmac.compare_digest(
        mac, _mac(secret, b"token", body)[:_MAC_BYTES]
    ):
        raise TokenInvalid("token signature does not match")
    claims = _decode(body)
    if not hmac.compare_digest(claims.purpose.encode(), purpose.encode()):
        raise TokenWrongPurpose(claims, purpose)
    if _epoch(now) >= _epoch(claims.expires_at):
        raise TokenExpired(claims)
    return claims


def address_digest(secret: bytes, address: str) -> str:
    """Keyed digest of a mail address (case- and space-insensitive), as in TokenClaims."""
    normalized = address.strip().casefold().encode()
    return _mac(secret, b"address", normalized)[:_DIGEST_BYTES].hex()


def claims_match_address(secret: bytes, claims: TokenClaims, address: str) -> bool:
    """True when the token was issued for this address (constant-time)."""
    return hmac.compare_digest(claims.address_digest, address_digest(secret, address))


def token_hash(token: str) -> str:
    """The SHA-256 hex of a token: the only form in which tokens are stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def random_token(nbytes: int = 32, *, source: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """A URL-safe random secret of at least 256 bits (feed tokens, app passwords)."""
    if nbytes < 32:
        raise ValueError("random tokens carry at least 32 bytes (256 bits)")
    return _b64(source(nbytes))


def plus_tag(secret: bytes, invitation_id: str) -> str:
    """A short, stable, unguessable tag for organizer+<tag>@domain (16 chars, a-z2-7)."""
    _check_secret(secret)
    digest = _mac(secret, b"plus-tag", str(invitation_id).encode())
    return base64.b32encode(digest).decode("ascii").lower()[:_TAG_CHARS]


def plus_tag_matches(secret: bytes, invitation_id: str, tag: str) -> bool:
    """True when tag is the plus tag of this invitation (constant-time, case-insensitive)."""
    return hmac.compare_digest(plus_tag(secret, invitation_id), tag.strip().lower())


def plus_address(mailbox: str, tag: str) -> str:
    """mailbox with +tag added to its local part: scheduling@x.org -> scheduling+tag@x.org."""
    local, at, domain = mailbox.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"{mailbox!r} is not a mail address")
    return f"{local.split('+', 1)[0]}+{tag}@{domain}"


def split_plus_address(address: str) -> tuple[str, str | None]:
    """(base mailbox, tag or None): scheduling+tag@x.org -> ("scheduling@x.org", "tag")."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return address, None
    base, plus, tag = local.partition("+")
    return f"{base}@{domain}", (tag or None) if plus else None


def _decode(body: bytes) -> TokenClaims:
    """Parse a body whose MAC already checked out; a bad layout still means invalid."""
    try:
        version, expires = _HEAD.unpack_from(body, 0)
        offset = _HEAD.size
        nonce, offset = _read_field(body, offset)
        digest = body[offset : offset + _DIGEST_BYTES]
        offset += _DIGEST_BYTES
        booking, offset = _read_field(body, offset)
        role, offset = _read_field(body, offset)
        purpose, offset = _read_field(body, offset)
        if version != _VERSION or offset != len(body) or len(digest) != _DIGEST_BYTES:
            raise TokenInvalid("token layout not understood")
        return TokenClaims(
            booking_id=booking.decode(),
            role=role.decode(),
            purpose=purpose.decode(),
            address_digest=digest.hex(),
            expires_at=datetime.fromtimestamp(expires, tz=UTC),
            nonce=nonce,
        )
    except (struct.error, UnicodeDecodeError, IndexError, OverflowError, ValueError) as exc:
        raise TokenInvalid("token layout not understood") from exc


def _field(value: bytes) -> bytes:
    if not value or len(value) > _MAX_FIELD:
        raise ValueError(f"token fields must be 1..{_MAX_FIELD} bytes")
    return bytes([len(value)]) + value


def _read_field(body: bytes, offset: int) -> tuple[bytes, int]:
    size = body[offset]
    value = body[offset + 1 : offset + 1 + size]
    if len(value) != size:
        raise TokenInvalid("token field truncated")
    return value, offset + 1 + size


def _mac(secret: bytes, domain: bytes, message: bytes) -> bytes:
    # One secret, separate keys per use, so a plus tag can never pass as a token MAC.
    key = hmac.new(secret, b"parley/" + domain, hashlib.sha256).digest()
    return hmac.new(key, message, hashlib.sha256).digest()


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()} has no time zone")
    return int(moment.timestamp())


def _check_secret(secret: bytes) -> None:
    if len(secret) < _MIN_SECRET:
        raise ValueError(f"the signing secret must be at least {_MIN_SECRET} bytes")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(token: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenInvalid("token is not URL-safe base64") from exc
    # Re-encoding must give the same text: otherwise the spare bits of the last character
    # (or stray characters the decoder skipped) could be changed without touching the MAC.
    if _b64(raw) != token:
        raise TokenInvalid("token is not in canonical form")
    return raw
