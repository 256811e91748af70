"""Parley's configuration: PARLEY_* environment variables, else parley.toml, else defaults.

Read once at start-up and passed down; nothing deeper reads the environment. Secrets
that are not configured are generated into the data folder on first start.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from core.errors import ConfigError

TOML_FILE_ENV = "PARLEY_CONFIG"
# Never shown by repr(): the values themselves, and URLs that may carry a password.
SECRET_SETTINGS = frozenset({"secret_key", "admin_token"})
URL_SETTINGS = frozenset({"database_url", "smtp_relay_url", "imap_url"})


def redact_url(url: str) -> str:
    """url with any password replaced by ***; a value that is no URL is kept only if it
    has no '@' (which could hide credentials)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "**masked**"
    if password is None:
        return url if "@" not in parts.path + parts.query else "**masked**"
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Settings(BaseSettings):
    """Every setting Parley reads; names as in DESIGN.md "Interfaces"."""

    model_config = SettingsConfigDict(
        env_prefix="PARLEY_", extra="ignore", toml_file="parley.toml", validate_default=True
    )

    data_dir: Path = Path("./var")
    database_url: str = ""
    base_url: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    organizer_email: str = "scheduling@parley.localhost"
    organizer_name: str = "Parley Scheduling"
    organizer_aliases: list[str] = Field(default_factory=list)
    plus_addressing: bool = True
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    lmtp_port: int = Field(default=0, ge=0, le=65535)
    smtp_max_message_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    smtp_tls_cert: str = ""
    smtp_tls_key: str = ""
    smtp_relay_url: str = ""
    imap_url: str = ""
    imap_poll_seconds: int = Field(default=60, gt=0)
    imap_ca_file: str = ""
    imap_folder_prefix: str = "Parley"
    imap_sent_folder: str = "Sent"
    lmtp_host: str = "127.0.0.1"
    smtp_max_recipients: int = Field(default=50, gt=0)
    smtp_relay_ca_file: str = ""
    smtp_relay_timeout_seconds: float = Field(default=30.0, gt=0)
    inbound_auth: str = "none"
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_key_file: str = ""
    outbox_batch_size: int = Field(default=200, gt=0)
    # Relay connections the outbox sends over at once (each message waits for its 250).
    outbox_connections: int = Field(default=4, gt=0, le=64)
    outbox_lease_seconds: int = Field(default=300, gt=0)
    secret_key: str = ""
    admin_token: str = ""
    decline_policy: Literal["strict", "soft"] = "strict"
    # Automatic answers (reschedule link) to plain mail, per invitation per 24 hours.
    auto_reply_limit_per_day: int = Field(default=3, ge=0)
    hold_ttl_seconds: int = Field(default=600, gt=0)
    # Requests per client IP per minute on public endpoints (slots, holds); 0 turns it off.
    public_rate_limit_per_minute: int = Field(default=120, ge=0)
    # Proxies (IPs or CIDRs) whose X-Forwarded-For names the client; none by default.
    trusted_proxies: list[str] = Field(default_factory=list)
    proposal_ttl_hours: int = Field(default=48, gt=0)
    # A request to book nobody answers lapses after this (frees the slot, tells both).
    booking_request_ttl_minutes: int = Field(default=2880, gt=0)
    import_allow_private: bool = False
    # Private networks imports may still fetch from (CIDRs, e.g. an internal CalDAV server).
    import_allow_networks: list[str] = Field(default_factory=list)
    source_stale_minutes: int = Field(default=180, gt=0)
    # Port on PARLEY_HTTP_HOST where `parley worker` serves /metrics; 0: no metrics server.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    max_sources_per_provider: int = Field(default=10, gt=0)
    feed_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    feed_max_events: int = Field(default=50_000, gt=0)
    fetch_timeout_seconds: float = Field(default=20.0, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    poll_concurrency: int = Field(default=8, gt=0, le=256)
    # Politeness towards each calendar host (per worker process): fetches in flight to one
    # host, and the least time between two requests to it.
    poll_per_host: int = Field(default=2, gt=0, le=64)
    poll_host_gap_ms: int = Field(default=250, ge=0, le=60_000)
    # "Sync now" from the API, /me and the console: per source and per tenant a minute.
    sync_now_per_source_per_minute: int = Field(default=6, ge=0)
    sync_now_per_tenant_per_minute: int = Field(default=60, ge=0)
    poll_min_minutes: int = Field(default=15, gt=0)
    poll_max_minutes: int = Field(default=360, gt=0)
    poll_peak_hours: tuple[int, int] = (14, 22)
    poll_peak_factor: float = Field(default=0.5, gt=0, le=1)
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    # Jobs one worker runs at once (inbound mail is processed while the outbox sends).
    worker_concurrency: int = Field(default=4, gt=0, le=64)
    # Threads that process stored inbound mail side by side (PostgreSQL; SQLite uses 1).
    inbound_concurrency: int = Field(default=4, gt=0, le=64)
    job_lease_seconds: int = Field(default=120, gt=0)
    outbox_give_up_hours: int = Field(default=72, gt=0)
    # Provider self-service pages (/me): sign-in links, sessions and their rate limits.
    sign_in_link_minutes: int = Field(default=15, gt=0, le=24 * 60)
    session_lifetime_hours: int = Field(default=14 * 24, gt=0)
    sign_in_per_address_per_hour: int = Field(default=5, ge=0)
    sign_in_per_ip_per_hour: int = Field(default=30, ge=0)
    # CalDAV bounds: instances one REPORT may expand (also per event), the longest expand or
    # free-busy window, and the largest request body (PUT of one object, REPORT, PROPPATCH).
    dav_max_instances: int = Field(default=5000, gt=0)
    dav_max_expand_days: int = Field(default=1100, gt=0)
    dav_max_body_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    # Whether a calendar app may change availability by writing the inbox's
    # calendar-availability (RFC 7953); false: read-only there, 403.
    dav_availability_writable: bool = True
    log_level: str = "info"
    log_json: bool | None = None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Shown in logs and tracebacks: secrets masked, passwords cut out of URLs.
        for name, value in super().__repr_args__():
            if name in SECRET_SETTINGS:
                yield name, "**masked**" if value else ""
            elif name in URL_SETTINGS and isinstance(value, str):
                yield name, redact_url(value)
            else:
                yield name, value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get(TOML_FILE_ENV, "parley.toml")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, env_settings, toml)

    @field_validator("inbound_auth")
    @classmethod
    def _inbound_auth(cls, value: str) -> str:
        kind, _, ident = value.strip().partition(":")
        if kind.lower() not in ("none", "dkim", "authres") or (kind.lower() == "authres") != bool(
            ident
        ):
            raise ValueError("must be none, dkim or authres:<authserv-id>")
        return value.strip()

    @field_validator("trusted_proxies", "import_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return [item.strip() for item in value]

    @field_validator("decline_policy", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'parley.db').resolve()}"

    @property
    def effective_base_url(self) -> str:
        return (self.base_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def maildir(self) -> Path:
        return self.data_dir / "maildir"

    @property
    def organizer_domain(self) -> str:
        return self.organizer_email.rpartition("@")[2]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and parley.toml; a bad value raises ConfigError (one line)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read configuration: {exc}") from None


def _one_line(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "settings"
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
        parts.append(f"PARLEY_{field.upper()}: {error['msg']}{shown}")
    return "invalid setting " + "; ".join(parts)


@dataclass(frozen=True)
class Secrets:
    secret_key: bytes = field(repr=False)
    admin_token: str = field(repr=False)
    generated_admin_token: bool


def ensure_secrets(settings: Settings) -> Secrets:
    """The configured secrets, or ones generated once into the data folder (mode 0600)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key, _ = _secret_file(settings, "secret_key", settings.secret_key)
    token, generated = _secret_file(settings, "admin_token", settings.admin_token)
    return Secrets(secret_key=key.encode(), admin_token=token, generated_admin_token=generated)


def _secret_file(settings: Settings, name: str, configured: str) -> tuple[str, bool]:
    if configured:
        return configured, False
    path = settings.data_dir / name
    if path.exists():
        return path.read_text().strip(), False
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value, True
