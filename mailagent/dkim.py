"""DKIM for the organizer mailbox: signing outbound mail, checking inbound senders.

Signing uses dkimpy with the key in PARLEY_DKIM_KEY_FILE. Inbound, a sender's domain is
vouched for either by a valid DKIM signature of that domain (checked here, DNS through a
replaceable dnsfunc) or by an Authentication-Results header from the trusted receiving MTA.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import dkim

from mailagent.errors import DkimKeyError

DnsFunc = Callable[..., bytes | None]

# Headers worth binding to the signature; dkimpy skips the ones a message lacks.
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"in-reply-to",
    b"references",
    b"auto-submitted",
)
_METHOD_RE = re.compile(r"([a-z0-9_-]+)\s*=\s*([a-z]+)\b([^;]*)", re.IGNORECASE)
_PROP_RE = re.compile(r"header\.(d|i|from)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


class DkimSigner:
    """Adds a DKIM-Signature of one domain to outbound messages."""

    def __init__(self, selector: str, domain: str, private_key: bytes) -> None:
        self.selector = selector.encode()
        self.domain = domain.encode()
        self._key = private_key

    @classmethod
    def from_file(cls, selector: str, domain: str, key_file: str) -> DkimSigner:
        try:
            key = Path(key_file).read_bytes()
        except OSError as exc:
            raise DkimKeyError(f"cannot read DKIM key {key_file}: {exc.strerror}") from None
        return cls(selector, domain, key)

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header prepended."""
        try:
            header = dkim.sign(
                message,
                self.selector,
                self.domain,
                self._key,
                include_headers=list(SIGNED_HEADERS),
                canonicalize=(b"relaxed", b"relaxed"),
            )
        except dkim.DKIMException as exc:
            raise DkimKeyError(f"DKIM signing failed: {exc}") from None
        return bytes(header) + message


def dkim_domain_passes(raw: bytes, domain: str, dnsfunc: DnsFunc | None = None) -> bool:
    """True when some DKIM signature on raw verifies and was made by domain (or a parent)."""
    checker = dkim.DKIM(raw, minkey=1024)
    count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    for index in range(count):
        try:
            ok = (
                checker.verify(idx=index, dnsfunc=dnsfunc)
                if dnsfunc is not None
                else checker.verify(idx=index)
            )
        except dkim.DKIMException:
            continue
        signer = (checker.domain or b"").decode("ascii", "replace").lower()
        if ok and _aligned(domain, signer):
            return True
    return False


def authres_passes(raw: bytes, authserv_id: str, domain: str) -> bool:
    """True when the topmost Authentication-Results of authserv_id says dkim or dmarc pass.

    Only the first header carrying that id counts: the receiving MTA prepends its own and
    should strip forged copies, so lower ones may come from the sender.
    """
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:262_144])
    for value in headers.get_all("Authentication-Results") or []:
        text = " ".join(str(value).split())
        ident, _, results = text.partition(";")
        words = ident.split()
        if not words or words[0] != authserv_id:
            continue
        return _results_pass(results, domain)
    return False


def _results_pass(results: str, domain: str) -> bool:
    for clause in results.split(";"):
        match = _METHOD_RE.search(clause)
        if not match or match.group(2).lower() != "pass":
            continue
        method = match.group(1).lower()
        for prop, value in _PROP_RE.findall(clause):
            value = value.rpartition("@")[2].lower()
            if method == "dkim" and prop.lower() in ("d", "i") and _aligned(domain, value):
                return True
            if method == "dmarc" and prop.lower() == "from" and value == domain.lower():
                return True
    return False


def _aligned(domain: str, signer: str) -> bool:
    domain, signer = domain.lower().rstrip("."), signer.lower().rstrip(".")
    return bool(signer) and (domain == signer or domain.endswith("." + signer))
