"""Secrets Parley must read back (CalDAV passwords and URLs of imported calendars), encrypted
at rest.

Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from PARLEY_SECRET_KEY with HKDF,
so a database dump alone reveals nothing and rotating the secret key is one re-encryption.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import CannotDecrypt

_INFO = b"parley:external-source-credentials:v1"


def _fernet(secret_key: bytes, purpose: bytes) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret_key)
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret_key: bytes, plaintext: str, *, purpose: bytes = _INFO) -> bytes:
    """plaintext encrypted and authenticated under a key derived from secret_key."""
    return _fernet(secret_key, purpose).encrypt(plaintext.encode())


def unseal(
    secret_key: bytes, token: bytes, *, purpose: bytes = _INFO, ttl: int | None = None
) -> str:
    """The plaintext of a token made by seal() (at most ttl seconds ago, when given); raises
    CannotDecrypt when it does not verify or is older."""
    try:
        return _fernet(secret_key, purpose).decrypt(token, ttl=ttl).decode()
    except (InvalidToken, UnicodeDecodeError):
        raise CannotDecrypt("stored secret cannot be decrypted with this secret key") from None


URL_PURPOSE = b"parley:external-source-url:v1"


def keyed_digest(secret_key: bytes, text: str, *, purpose: bytes = URL_PURPOSE) -> str:
    """A keyed SHA-256 of text (hex): equal texts match without the text being stored."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose + b":digest")
    return hmac.new(derived.derive(secret_key), text.encode(), hashlib.sha256).hexdigest()
