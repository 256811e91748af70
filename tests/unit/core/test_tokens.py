"""Tests for core.tokens: signed magic links, random secrets, plus-address tags."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import TokenExpired, TokenInvalid, TokenWrongPurpose
from core.tokens import (
    address_digest,
    claims_match_address,
    issue,
    plus_address,
    plus_tag,
    plus_tag_matches,
    random_token,
    split_plus_address,
    token_hash,
    verify,
)

SECRET = b"0123456789abcdef-test-secret-key"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=48)
NONCE = bytes(range(16))
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def make(**overrides: object) -> str:
    fields: dict[str, object] = {
        "booking_id": "b7e1c0de-0000-4000-8000-000000000001",
        "role": "guest",
        "address": "Guest@Example.com",
        "purpose": "propose",
        "expires_at": EXPIRES,
        "nonce": NONCE,
    }
    fields.update(overrides)
    return issue(SECRET, **fields)  # type: ignore[arg-type]


def test_round_trip_returns_the_bound_claims() -> None:
    claims = verify(SECRET, make(), now=NOW, purpose="propose")
    assert claims.booking_id == "b7e1c0de-0000-4000-8000-000000000001"
    assert claims.role == "guest"
    assert claims.purpose == "propose"
    assert claims.expires_at == EXPIRES
    assert claims.nonce == NONCE
    assert claims.address_digest == address_digest(SECRET, "guest@example.com")


def test_token_is_url_safe_compact_and_hides_the_address() -> None:
    token = make()
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert len(token) < 140
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"example.com" not in raw.lower()
    assert b"guest@" not in raw.lower()


def test_address_binding_is_case_insensitive_and_exclusive() -> None:
    claims = verify(SECRET, make(), now=NOW, purpose="propose")
    assert claims_match_address(SECRET, claims, " guest@EXAMPLE.com ")
    assert not claims_match_address(SECRET, claims, "host@example.com")


def test_every_single_character_change_is_detected() -> None:
    token = make()
    for position, original in enumerate(token):
        for replacement in B64URL:
            if replacement == original:
                continue
            tampered = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(TokenInvalid):
                verify(SECRET, tampered, now=NOW, purpose="propose")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t + "A",
        lambda t: t + "=",
        lambda t: t[:10],
        lambda t: "",
        lambda t: t.replace(t[5], "+", 1),
        lambda t: t[:8] + "é" + t[9:],
        lambda t: t[:8] + " " + t[8:],
    ],
)
def test_malformed_tokens_are_invalid(mangle: object) -> None:
    with pytest.raises(TokenInvalid):
        verify(SECRET, mangle(make()), now=NOW, purpose="propose")  # type: ignore[operator]


def test_another_secret_does_not_verify() -> None:
    with pytest.raises(TokenInvalid):
        verify(b"another-secret-of-enough-length", make(), now=NOW, purpose="propose")


def test_expiry_is_exclusive_and_carries_claims() -> None:
    token = make()
    verify(SECRET, token, now=EXPIRES - timedelta(seconds=1), purpose="propose")
    with pytest.raises(TokenExpired) as caught:
        verify(SECRET, token, now=EXPIRES, purpose="propose")
    assert caught.value.claims.booking_id == "b7e1c0de-0000-4000-8000-000000000001"
    assert caught.value.claims.role == "guest"


def test_purpose_is_bound() -> None:
    with pytest.raises(TokenWrongPurpose) as caught:
        verify(SECRET, make(purpose="approve"), now=NOW, purpose="decline")
    assert caught.value.claims.purpose == "approve"
    assert caught.value.expected == "decline"


def test_nonce_makes_each_issue_distinct_and_inputs_make_it_deterministic() -> None:
    assert make() == make()
    assert make(nonce=b"\x01" * 16) != make()
    assert token_hash(make(nonce=b"\x01" * 16)) != token_hash(make())


def test_token_hash_is_sha256_hex_and_stable() -> None:
    assert token_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert token_hash("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


@pytest.mark.parametrize(
    "overrides",
    [
        {"nonce": b"short"},
        {"booking_id": ""},
        {"role": "x" * 300},
        {"expires_at": datetime(2030, 1, 1)},
    ],
)
def test_bad_issue_arguments_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make(**overrides)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError):
        issue(
            b"short",
            booking_id="1",
            role="host",
            address="a@b.c",
            purpose="propose",
            expires_at=EXPIRES,
            nonce=NONCE,
        )


@settings(max_examples=100, deadline=None)
@given(
    booking_id=st.text(min_size=1, max_size=60).filter(lambda s: len(s.encode()) <= 255),
    role=st.sampled_from(["host", "guest", "provider"]),
    purpose=st.sampled_from(["propose", "approve", "decline", "sign-in"]),
    address=st.emails(),
    hours=st.integers(min_value=1, max_value=24 * 365),
    nonce=st.binary(min_size=8, max_size=32),
)
def test_round_trip_property(
    booking_id: str, role: str, purpose: str, address: str, hours: int, nonce: bytes
) -> None:
    expires = NOW + timedelta(hours=hours)
    token = issue(
        SECRET,
        booking_id=booking_id,
        role=role,
        address=address,
        purpose=purpose,
        expires_at=expires,
        nonce=nonce,
    )
    claims = verify(SECRET, token, now=NOW, purpose=purpose)
    assert (claims.booking_id, claims.role, claims.purpose) == (booking_id, role, purpose)
    assert claims.expires_at == expires
    assert claims.nonce == nonce
    assert claims_match_address(SECRET, claims, address)


def test_random_token_has_at_least_256_bits() -> None:
    token = random_token()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert random_token() != token
    assert random_token(48, source=lambda n: b"\x00" * n) == "A" * 64
    with pytest.raises(ValueError):
        random_token(16)


def test_plus_tag_is_short_stable_and_verifiable() -> None:
    tag = plus_tag(SECRET, "inv-42")
    assert re.fullmatch(r"[a-z2-7]{16}", tag)
    assert plus_tag(SECRET, "inv-42") == tag
    assert plus_tag(SECRET, "inv-43") != tag
    assert plus_tag(b"another-secret-of-enough-length", "inv-42") != tag
    assert plus_tag_matches(SECRET, "inv-42", tag.upper())
    assert not plus_tag_matches(SECRET, "inv-43", tag)


def test_plus_tag_cannot_stand_in_for_a_token_mac() -> None:
    # Separate derived keys: the same message under both uses gives unrelated outputs.
    assert plus_tag(SECRET, "x") != address_digest(SECRET, "x")[:16]


def test_plus_addresses_are_built_and_split() -> None:
    assert plus_address("scheduling@example.org", "abc") == "scheduling+abc@example.org"
    assert plus_address("scheduling+old@example.org", "abc") == "scheduling+abc@example.org"
    assert split_plus_address("scheduling+abc@example.org") == ("scheduling@example.org", "abc")
    assert split_plus_address("scheduling@example.org") == ("scheduling@example.org", None)
    with pytest.raises(ValueError):
        plus_address("not-an-address", "abc")
