"""Where outbound mail goes: an SMTP relay (aiosmtplib) or, without one, a local Maildir.

The relay client keeps one connection for a whole batch and sorts every failure into
transient (4xx, refused connection, timeout: try again later) or permanent (5xx).
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib

from mailagent.errors import RelayUrlError


@dataclass(frozen=True)
class DeliveryResult:
    """The relay's verdict on one message."""

    ok: bool
    permanent: bool = False
    error: str = ""


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool | None  # None: use it when offered
    username: str | None
    password: str | None = field(repr=False)

    @classmethod
    def from_url(cls, url: str) -> RelayConfig:
        """smtp://[user:pass@]host[:port][?starttls=require|no] or smtps://…"""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise RelayUrlError(f"relay URL must be smtp://host[:port] or smtps://…, got {url!r}")
        implicit = parts.scheme == "smtps"
        query = dict(p.partition("=")[::2] for p in parts.query.split("&") if p)
        mode = query.get("starttls", "")
        starttls = {"require": True, "yes": True, "no": False}.get(mode) if not implicit else False
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls=starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class RelayClient:
    """One SMTP connection to the relay, opened lazily and reopened after it drops."""

    def __init__(
        self, config: RelayConfig, *, timeout: float = 30.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self._config = config
        self._timeout = timeout
        self._tls = tls or client_tls()
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, sender: str, recipient: str, message: bytes) -> DeliveryResult:
        try:
            client = await self._connected()
            errors, _ = await client.sendmail(sender, [recipient], message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0] if exc.recipients else None
            code = first.code if first else 550
            return self._failed(code, first.message if first else str(exc))
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset_after_error()
            return self._failed(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            return DeliveryResult(False, False, f"{type(exc).__name__}: {exc}"[:500])
        if errors:
            response = next(iter(errors.values()))
            return self._failed(response.code, response.message)
        return DeliveryResult(True)

    def abort(self) -> None:
        """Drop the connection without QUIT (a send on it was cancelled half way)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        config = self._config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.implicit_tls,
            start_tls=config.starttls,
            tls_context=self._tls,
            timeout=self._timeout,
            local_hostname=_local_hostname(),
        )
        try:
            await client.connect()
            if config.username is not None:
                await client.login(config.username, config.password or "")
        except BaseException:  # failed or cancelled half way: leave no socket behind
            client.close()
            raise
        self._client = client
        return client

    async def _reset_after_error(self) -> None:
        # A refused transaction leaves the session usable after RSET; a dead one is reopened.
        client = self._client
        if client is None or not client.is_connected:
            return
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            await self.close()

    @staticmethod
    def _failed(code: int, message: str) -> DeliveryResult:
        return DeliveryResult(False, 500 <= code < 600, f"{code} {message}"[:500])


@functools.lru_cache(maxsize=4)
def client_tls(ca_file: str = "") -> ssl.SSLContext:
    """The TLS context for a server Parley connects to (relay, IMAP), trusting the system's
    CAs and ca_file; one per file for the process, since loading the CAs costs milliseconds
    and the outbox sender starts again on every wake-up."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return context


@functools.lru_cache(maxsize=1)
def _local_hostname() -> str:
    """The name given in EHLO, looked up once (a reverse lookup can be slow)."""
    return socket.getfqdn()


class MaildirWriter:
    """Writes messages as .eml files into a Maildir: tmp/ first, then renamed into new/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._host = socket.gethostname().replace("/", "_").replace(":", "_")

    def deliver(self, message_id: str, message: bytes, *, timestamp: float) -> Path:
        for sub in ("tmp", "new", "cur"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        # Named after the Message-ID, so writing the same message twice leaves one file.
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:24]
        name = f"{int(timestamp)}.{digest}.{self._host}.eml"
        tmp = self.root / "tmp" / f"{name}.{os.getpid()}"
        with open(tmp, "wb") as handle:
            handle.write(message)
            handle.flush()
            os.fsync(handle.fileno())
        final = self.root / "new" / name
        os.replace(tmp, final)
        return final
