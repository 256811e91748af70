"""`parley doctor`: the checks an admin runs before going live, printed as a checklist.

Each check looks at one part of the configuration the way the running system will use
it (connects to the database, talks SMTP to the relay up to RCPT, logs in to IMAP) and
says what to fix. Nothing is changed: no migration, no mail sent, no folder created.
"""

from __future__ import annotations

import base64
import imaplib
import ipaddress
import re
import smtplib
import ssl
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from core.db.engine import make_engine
from core.db.migrate import alembic_config
from core.settings import Settings, redact_url
from mailagent.delivery import RelayConfig, client_tls
from mailagent.errors import ImapError, RelayUrlError
from mailagent.imap import FOLDERS, ImapConfig

Status = Literal["ok", "fail", "skip"]
# Names no guest on the internet can reach (RFC 6761 and common LAN suffixes; RFC 8375's
# home.arpa is checked apart).
PRIVATE_SUFFIXES = ("localhost", "test", "example", "invalid", "local", "internal", "lan")
_LIST_NAME_RE = re.compile(rb'^\([^)]*\) (?:"(.)"|NIL) (.+)$')


@dataclass(frozen=True)
class Check:
    """One line of the checklist: what was checked, what was found, what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    extra: tuple[str, ...] = ()  # lines to show below it (the DKIM TXT record)


def run_checks(settings: Settings, config_file: Path | None = None) -> list[Check]:
    """Every check, in the order an admin would fix them."""
    return [
        check_database(settings),
        check_base_url(settings),
        check_relay(settings),
        check_dkim(settings),
        check_imap(settings),
        check_inbound_auth(settings),
        check_secret_files(settings, config_file),
    ]


def render(checks: list[Check]) -> list[str]:
    """The checklist as text lines, a summary last."""
    marks = {"ok": "[ ok ]", "fail": "[FAIL]", "skip": "[skip]"}
    lines = []
    for check in checks:
        lines.append(f"{marks[check.status]} {check.name}: {check.detail}")
        lines += [f"       {line}" for line in check.extra]
        if check.status == "fail" and check.fix:
            lines.append(f"       fix: {check.fix}")
    failed = sum(c.status == "fail" for c in checks)
    lines.append(
        f"{len(checks)} checks: {sum(c.status == 'ok' for c in checks)} ok, {failed} failed, "
        f"{sum(c.status == 'skip' for c in checks)} not configured"
    )
    return lines


# --- database ------------------------------------------------------------------------------


def check_database(settings: Settings) -> Check:
    """Reachable, and at the migration head the code expects."""
    url = settings.effective_database_url
    shown = redact_url(url)
    fix = "run `parley migrate`"
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return Check("database", "fail", f"no SQLite database at {parsed.database}", fix)
    options = {} if url.startswith("sqlite") else {"connect_args": {"connect_timeout": 10}}
    engine = make_engine(url, **options)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        fix = "check PARLEY_DATABASE_URL and that the database server runs and lets Parley in"
        return Check("database", "fail", f"cannot connect to {shown}: {reason}", fix)
    finally:
        engine.dispose()
    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    if current == heads:
        return Check("database", "ok", f"{shown} is migrated (revision {', '.join(heads)})")
    if not current:
        return Check("database", "fail", f"{shown} has no Parley schema", fix)
    found, wanted = ", ".join(sorted(current)), ", ".join(sorted(heads))
    return Check("database", "fail", f"{shown} is at revision {found}, not {wanted}", fix)


# --- base URL ------------------------------------------------------------------------------


def is_public_host(host: str) -> bool:
    """True when guests on the internet could reach host: a global IP or a public name."""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    labels = host.lower().rstrip(".").split(".")
    private = labels[-1] in PRIVATE_SUFFIXES or labels[-2:] == ["home", "arpa"]
    return len(labels) > 1 and not private


def check_base_url(settings: Settings) -> Check:
    """Links in mail point at a public https address."""
    fix = "set PARLEY_BASE_URL=https://<the public name guests open> (ops/deploy/nginx)"
    if not settings.base_url:
        shown = settings.effective_base_url
        return Check("base URL", "fail", f"PARLEY_BASE_URL is not set: links use {shown}", fix)
    parts = urlsplit(settings.base_url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return Check("base URL", "fail", f"{settings.base_url} is not an http(s) URL", fix)
    if not is_public_host(host):
        return Check("base URL", "fail", f"{host} cannot be reached from the internet", fix)
    if parts.scheme != "https":
        detail = f"{settings.base_url} is a public host over plain http (links carry tokens)"
        return Check(
            "base URL", "fail", detail, "serve it over TLS and set PARLEY_BASE_URL=https://…"
        )
    return Check("base URL", "ok", f"{settings.effective_base_url} (public, https)")


# --- relay ---------------------------------------------------------------------------------


def check_relay(settings: Settings) -> Check:
    """The relay answers, lets Parley log in, and takes mail from and to the organizer."""
    if not settings.smtp_relay_url:
        detail = f"PARLEY_SMTP_RELAY_URL is not set: mail is only written to {settings.maildir}"
        return Check("relay", "fail", detail, "set PARLEY_SMTP_RELAY_URL=smtp://host:587")
    try:
        config = RelayConfig.from_url(settings.smtp_relay_url)
    except RelayUrlError as exc:
        return Check("relay", "fail", str(exc), "use smtp://[user:pass@]host[:port] or smtps://…")
    where = f"{config.host}:{config.port}"
    try:
        refused = _refused_by_relay(config, settings)
    except smtplib.SMTPAuthenticationError as exc:
        detail = f"{where} refused the login: {_reply(exc)}"
        return Check("relay", "fail", detail, "check the user and password in the URL")
    except (smtplib.SMTPException, OSError) as exc:
        fix = "check host, port and firewall; a private CA goes in PARLEY_SMTP_RELAY_CA_FILE"
        return Check("relay", "fail", f"cannot talk to {where}: {_reply(exc)}", fix)
    if refused:
        fix = f"let the relay take mail from and for {settings.organizer_email}"
        return Check("relay", "fail", f"{where} refused {refused}", fix)
    return Check("relay", "ok", f"{where} accepts mail from and to {settings.organizer_email}")


def _refused_by_relay(config: RelayConfig, settings: Settings) -> str:
    """One SMTP conversation up to RCPT, then RSET and QUIT; what was refused, or ""."""
    tls = client_tls(settings.smtp_relay_ca_file)
    timeout = settings.smtp_relay_timeout_seconds
    client: smtplib.SMTP
    if config.implicit_tls:
        client = smtplib.SMTP_SSL(config.host, config.port, timeout=timeout, context=tls)
    else:
        client = smtplib.SMTP(config.host, config.port, timeout=timeout)
    with client:
        client.ehlo()
        offered = config.starttls is None and client.has_extn("starttls")
        if not config.implicit_tls and (config.starttls or offered):
            client.starttls(context=tls)
            client.ehlo()
        if config.username is not None:
            client.login(config.username, config.password or "")
        address = settings.organizer_email
        code, message = client.mail(address)
        if code != 250:
            return f"MAIL FROM:<{address}>: {code} {message.decode(errors='replace')}"
        code, message = client.rcpt(address)
        client.rset()
        if code not in (250, 251):
            return f"RCPT TO:<{address}>: {code} {message.decode(errors='replace')}"
    return ""


def _reply(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        shown = text.decode(errors="replace") if isinstance(text, bytes) else text
        return f"{exc.smtp_code} {shown}"
    return f"{type(exc).__name__}: {exc}"


# --- DKIM ----------------------------------------------------------------------------------


def check_dkim(settings: Settings) -> Check:
    """The signing key is readable, and the TXT record to publish for it."""
    if not settings.dkim_key_file:
        detail = "PARLEY_DKIM_KEY_FILE is not set (fine when the relay signs for Parley)"
        return Check("DKIM", "skip", detail)
    if not (settings.dkim_selector and settings.dkim_domain):
        fix = "set PARLEY_DKIM_SELECTOR and PARLEY_DKIM_DOMAIN"
        return Check("DKIM", "fail", "a key file but no selector or domain", fix)
    path = Path(settings.dkim_key_file)
    fix = f"make {path} a PEM RSA private key (2048 bits) readable by Parley's user only"
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        return Check("DKIM", "fail", f"cannot read {path}: {exc.strerror}", fix)
    except (ValueError, TypeError):
        return Check("DKIM", "fail", f"{path} is not an unencrypted PEM private key", fix)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 1024:
        return Check("DKIM", "fail", f"{path} is not an RSA key of 1024 bits or more", fix)
    name = f"{settings.dkim_selector}._domainkey.{settings.dkim_domain}"
    detail = f"{path} signs for {settings.dkim_domain}; publish this TXT record:"
    return Check("DKIM", "ok", detail, extra=txt_record(name, key))


def txt_record(name: str, key: rsa.RSAPrivateKey) -> tuple[str, ...]:
    """The zone-file lines of the DKIM TXT record, in strings of at most 255 characters."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    value = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"
    chunks = textwrap.wrap(value, 255, break_on_hyphens=False, drop_whitespace=False)
    return (f"{name}. IN TXT (", *(f'  "{chunk}"' for chunk in chunks), ")")


# --- IMAP ----------------------------------------------------------------------------------


def check_imap(settings: Settings) -> Check:
    """Login works, the mailbox opens, and which of Parley's folders exist yet."""
    if not settings.imap_url:
        return Check("IMAP", "skip", "PARLEY_IMAP_URL is not set (mail arrives over SMTP/LMTP)")
    try:
        config = ImapConfig.from_url(settings.imap_url)
    except ImapError as exc:
        return Check("IMAP", "fail", str(exc), "use imaps://user:pass@host[:993][/INBOX]")
    where = f"{config.username}@{config.host}:{config.port}"
    try:
        client = _imap_login(config, settings.imap_ca_file)
    except (imaplib.IMAP4.error, OSError, ssl.SSLError) as exc:
        fix = "check host, port, user and password; a private CA goes in PARLEY_IMAP_CA_FILE"
        return Check("IMAP", "fail", f"cannot log in as {where}: {exc}", fix)
    try:
        status, _ = client.select(_quoted(config.mailbox), readonly=True)
        folders = _folders(client)
    finally:
        client.logout()
    if status != "OK":
        detail = f"{where} has no mailbox {config.mailbox}"
        return Check("IMAP", "fail", detail, "name an existing folder in the URL's path")
    prefix = settings.imap_folder_prefix
    wanted = sorted({f"{prefix}/{name}" for name in (*FOLDERS.values(), "Failed")})
    missing = [name for name in wanted if name not in folders]
    later = f"; created on the first poll: {', '.join(missing)}" if missing else ""
    return Check("IMAP", "ok", f"{where} logged in, {config.mailbox} opens{later}")


def _imap_login(config: ImapConfig, ca_file: str) -> imaplib.IMAP4:
    client: imaplib.IMAP4
    if config.tls:
        context = client_tls(ca_file)
        client = imaplib.IMAP4_SSL(config.host, config.port, ssl_context=context, timeout=30)
    else:
        client = imaplib.IMAP4(config.host, config.port, timeout=30)
    try:
        client.login(config.username, config.password)
    except BaseException:
        client.shutdown()
        raise
    return client


def _folders(client: imaplib.IMAP4) -> set[str]:
    """Every folder name on the server, with "/" as the hierarchy separator."""
    status, lines = client.list('""', "*")
    names = set()
    for line in lines if status == "OK" else []:
        match = _LIST_NAME_RE.match(line) if isinstance(line, bytes) else None
        if match:
            name = match.group(2).decode("utf-7", "replace").strip('"')
            sep = match.group(1).decode() if match.group(1) else "/"
            names.add(name.replace(sep, "/"))
    return names


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- inbound authentication and secrets ----------------------------------------------------


def check_inbound_auth(settings: Settings) -> Check:
    """Whether an answer's sender is vouched for, or taken on trust."""
    kind, _, ident = settings.inbound_auth.partition(":")
    kind = kind.lower()
    if kind == "dkim":
        return Check("inbound auth", "ok", "answers need a valid DKIM signature of their domain")
    if kind == "authres":
        detail = f"answers need dkim/dmarc=pass in Authentication-Results from {ident}"
        return Check("inbound auth", "ok", detail + " (that MTA must remove forged copies)")
    detail = "PARLEY_INBOUND_AUTH=none: whoever knows a private address can answer as the guest"
    fix = "set PARLEY_INBOUND_AUTH=dkim, or authres:<authserv-id> of your receiving MTA"
    return Check("inbound auth", "fail", detail, fix)


def check_secret_files(settings: Settings, config_file: Path | None) -> Check:
    """Files holding secrets are readable by their owner only."""
    candidates = [settings.data_dir / "secret_key", settings.data_dir / "admin_token"]
    if config_file is not None:
        candidates.append(config_file)
    if settings.dkim_key_file:
        candidates.append(Path(settings.dkim_key_file))
    present = [path for path in candidates if path.is_file()]
    loose = [path for path in present if path.stat().st_mode & 0o077]
    if loose:
        shown = ", ".join(f"{p} ({p.stat().st_mode & 0o777:o})" for p in loose)
        fix = "chmod 600 " + " ".join(str(p) for p in loose)
        return Check("secret files", "fail", f"readable by others: {shown}", fix)
    if not present:
        return Check("secret files", "ok", "none on disk yet (generated 0600 on first start)")
    return Check("secret files", "ok", f"owner-only: {', '.join(str(p) for p in present)}")
