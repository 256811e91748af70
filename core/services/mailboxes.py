"""Every tenant's organizer mailbox: the address a tenant's mail is sent from, and the
tenant an inbound address belongs to.

The default tenant sends as PARLEY_ORGANIZER_EMAIL / _NAME and also owns the configured
aliases; every other tenant has its own organizer address. With plus addressing on, the
tagged forms of an address (``scheduling+tag@…``) belong to the same tenant.

A tenant may also have a host of its own (its site: links in its mail point there, and
its pages answer there). The table is small and asked often (each SMTP RCPT, each
message composed, sent or settled, each page request), so a process keeps it in
memory. It is read again every ``ttl`` seconds, at once after this process created or
changed a tenant (``changed``), and, when an address or tenant is not known, at most
every ``retry`` seconds: a tenant created by another process is found within that, and
a flood of mail to unknown addresses costs one query a second. When the database
cannot be read the last table stays in use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from core.db.driver import engine_of
from core.db.engine import make_engine
from core.db.models import DEFAULT_TENANT
from core.logging import get_logger
from core.runtime import Runtime
from core.settings import Settings

_log = get_logger("parley.mailboxes")

# Bumped by ``changed``: every Mailboxes of this process reads its table again.
_generation = 0


def changed() -> None:
    """A tenant's organizer address was added or changed (call after the commit)."""
    global _generation
    _generation += 1


@dataclass(frozen=True)
class TenantMailbox:
    """One tenant's organizer: the address its mail comes from and the name shown."""

    tenant_id: str
    address: str
    name: str
    host: str | None = None  # the tenant's own site, when it has one
    slug: str = ""

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


Loader = Callable[[], Iterable[TenantMailbox]]


def _split_plus(address: str) -> str | None:
    """local@domain of a plus-addressed form (lower-case), or None when it has no tag."""
    local, at, domain = address.rpartition("@")
    if not at or "+" not in local:
        return None
    return f"{local.split('+', 1)[0]}@{domain}"


class Mailboxes:
    """The organizer mailboxes of every tenant, as this process last read them."""

    def __init__(
        self,
        default: TenantMailbox,
        *,
        aliases: Iterable[str] = (),
        plus: bool = True,
        load: Loader | None = None,
        ttl: float = 10.0,
        retry: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default = default
        self._aliases = tuple(a.strip().lower() for a in aliases if a.strip())
        self._plus = plus
        self._load = load
        self._ttl, self._retry, self._clock = ttl, retry, clock
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._seen = -1
        self._boxes: dict[str, TenantMailbox] = {}
        self._owners: dict[str, str] = {}
        self._hosts: dict[str, TenantMailbox] = {}
        self._slugs: dict[str, TenantMailbox] = {}
        self._install([])
        if load is None:
            self._seen = _generation
            self._loaded_at = float("inf")

    @classmethod
    def of_settings(
        cls, settings: Settings, sessions: sessionmaker[Session] | None = None
    ) -> Mailboxes:
        """The mailboxes settings name, and (with sessions) every tenant's from the table."""
        default = TenantMailbox(DEFAULT_TENANT, settings.organizer_email, settings.organizer_name)
        load = None if sessions is None else _table_loader(sessions, settings.organizer_name)
        return cls(
            default, aliases=settings.organizer_aliases, plus=settings.plus_addressing, load=load
        )

    # --- sending ------------------------------------------------------------------------

    def of(self, tenant_id: str) -> TenantMailbox:
        """The organizer tenant_id's mail is sent from (the default one if it has none)."""
        if tenant_id == DEFAULT_TENANT:
            return self.default
        self._fresh()
        box = self._boxes.get(tenant_id)
        if box is None and self._refresh_if(miss=True):
            box = self._boxes.get(tenant_id)
        return box or self.default

    # --- receiving ----------------------------------------------------------------------

    def tenant_of(self, address: str) -> str | None:
        """The tenant whose organizer address (alias or tagged form) this is, else None."""
        address = address.strip().strip("<>").lower()
        self._fresh()
        found = self._owner(address)
        if found is None and self._refresh_if(miss=True):
            found = self._owner(address)
        return found

    def tenant_among(self, addresses: Iterable[str]) -> str | None:
        """The tenant of the first of addresses that belongs to one, else None."""
        for address in addresses:
            if (tenant := self.tenant_of(address)) is not None:
                return tenant
        return None

    def accepts(self, address: str) -> bool:
        return self.tenant_of(address) is not None

    # --- sites ----------------------------------------------------------------------------

    def at_host(self, host: str) -> TenantMailbox | None:
        """The tenant whose own host this is (from the table in memory: a host that is
        no tenant's, the deployment's own, is asked on every request), else None."""
        self._fresh()
        return self._hosts.get(host.strip().lower())

    def has_hosts(self) -> bool:
        """Whether any tenant has a host of its own (from the table in memory)."""
        self._fresh()
        return bool(self._hosts)

    def by_slug(self, slug: str) -> TenantMailbox | None:
        self._fresh()
        return self._slugs.get(slug)

    def knows(self, address: str) -> bool:
        """``accepts`` from the table in memory only: never waits for the database."""
        return self._owner(address.strip().strip("<>").lower()) is not None

    # --- the table ----------------------------------------------------------------------

    def _owner(self, address: str) -> str | None:
        owners = self._owners
        if address in owners:
            return owners[address]
        base = _split_plus(address) if self._plus else None
        return owners.get(base) if base is not None else None

    def _fresh(self) -> None:
        if self._seen != _generation or self._clock() - self._loaded_at > self._ttl:
            self._refresh_if(miss=False)

    def _refresh_if(self, *, miss: bool) -> bool:
        """Read the table again when it is due (or, for a miss, not read just now)."""
        if self._load is None:
            return False
        with self._lock:
            now = self._clock()
            age = now - self._loaded_at
            due = self._seen != _generation or age > (self._retry if miss else self._ttl)
            if not due:
                return False
            generation = _generation
            try:
                boxes = list(self._load())
            except Exception as exc:  # keep serving the last table; try again after retry
                _log.warning("mailboxes.load_failed", error=type(exc).__name__)
                self._loaded_at = now - self._ttl + self._retry
                return False
            self._install(boxes)
            self._loaded_at, self._seen = now, generation
            return True

    def _install(self, boxes: list[TenantMailbox]) -> None:
        by_tenant = {box.tenant_id: box for box in boxes}
        by_tenant[DEFAULT_TENANT] = self.default
        owners = {box.address.lower(): box.tenant_id for box in boxes}
        owners[self.default.address.lower()] = DEFAULT_TENANT
        for alias in self._aliases:
            owners.setdefault(alias, DEFAULT_TENANT)
        hosts = {box.host: box for box in boxes if box.host}
        slugs = {box.slug: box for box in boxes if box.slug}
        # swapped whole: readers need no lock
        self._boxes, self._owners, self._hosts, self._slugs = by_tenant, owners, hosts, slugs


_TENANT_MAILBOXES = (
    "SELECT id, organizer_email, organizer_name, name, host, slug FROM tenants"
    f" WHERE organizer_email IS NOT NULL AND id <> '{DEFAULT_TENANT}'"
)


def _table_loader(sessions: sessionmaker[Session], fallback_name: str) -> Loader:
    url = engine_of(sessions).url.render_as_string(hide_password=False)
    # A connection of its own, not from the pool: the caller may be inside a transaction
    # (the SQLite write lock held, every pooled connection taken by requests waiting for
    # it), and a plain SELECT outside any transaction reads without waiting.
    if url.startswith("sqlite"):
        engine = make_engine(url, poolclass=NullPool)
    else:
        engine = create_engine(url, poolclass=NullPool)

    def load() -> list[TenantMailbox]:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(_TENANT_MAILBOXES)
            rows = cursor.fetchall()
            cursor.close()
            connection.rollback()
        finally:
            connection.close()
        return [
            TenantMailbox(tid, str(address), organizer_name or name or fallback_name, host, slug)
            for tid, address, organizer_name, name, host, slug in rows
        ]

    return load


def of_runtime(runtime: Runtime) -> Mailboxes:
    """The process's one Mailboxes for runtime (built the first time it is asked for)."""
    found = runtime.services.get("mailboxes")
    if found is None:
        found = runtime.services.setdefault(
            "mailboxes", Mailboxes.of_settings(runtime.settings, runtime.sessions)
        )
    return cast(Mailboxes, found)
