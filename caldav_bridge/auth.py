"""Radicale auth over Parley's app passwords, with throttling per client address.

scrypt is deliberately slow, and calendar apps authenticate every request, so a verified
(user, password) pair is remembered for a few minutes by a keyed digest only; revocation
is still checked in the database on every request.

Failures are counted per client address (Radicale gives it as context.remote_addr, the
WSGI REMOTE_ADDR), never per user name: the user name is the public booking slug, and a
lock on it would let anyone lock the provider out. The right password is not refused for
failures: an address over the limit is slowed instead. Its password checks run one at a
time, a check that cannot start within THROTTLED_DELAY_SECONDS is answered 401 unchecked
(so a flood from one address cannot hold every worker thread), and each failure it causes
waits THROTTLED_DELAY_SECONDS more: it cannot spend the server's CPU on scrypt nor guess
quickly. A pair verified in the last few minutes skips all of this.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from datetime import timedelta

from radicale import auth, config
from sqlalchemy.orm import Session

from core.logging import get_logger
from core.runtime import Runtime
from core.services import app_passwords

_CACHE_SECONDS = 300.0
_LAST_USED_EVERY = timedelta(minutes=5)
THROTTLED_DELAY_SECONDS = 2.0
_MAX_TRACKED_ADDRESSES = 4096

_log = get_logger(__name__)


class ParleyAuth(auth.BaseAuth):
    """The auth plugin; Radicale builds it through caldav_bridge.app.Plugin."""

    def __init__(self, configuration: config.Configuration, runtime: Runtime) -> None:
        super().__init__(configuration)
        self.runtime = runtime
        self._verified: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._address_locks: OrderedDict[str, threading.Lock] = OrderedDict()

    def __repr__(self) -> str:
        return "ParleyAuth()"

    def login(  # type: ignore[misc]  # final in Radicale for typing only
        self, login: str, password: str, context: auth.AuthContext
    ) -> tuple[str, str, set[str]]:
        # The throttle waits outside BaseAuth.login, which times failed logins to make them
        # all take as long as the slowest: a throttled address must not slow everyone.
        address = getattr(context, "remote_addr", None) or ""
        if not address or not login or not password:
            return super().login(login, password, context)
        # A pair verified a moment ago is the right password: no throttle lookup for it.
        if self._cached(self._key(login, password)) is not None:
            return super().login(login, password, context)
        with self.runtime.sessions.begin() as session:
            throttled = app_passwords.is_throttled(session, address, self.runtime.clock())
        if not throttled:
            return super().login(login, password, context)
        # One check at a time from this address, and a bounded wait for it: requests piled
        # up behind one another would hold every worker thread, everyone else's too.
        lock = self._address_lock(address)
        if not lock.acquire(timeout=THROTTLED_DELAY_SECONDS):
            _log.warning("dav.auth.throttled", client=address, busy=True)
            return "", self._type, set()
        try:
            result = super().login(login, password, context)
        finally:
            lock.release()
        if not result[0]:
            _log.warning("dav.auth.throttled", client=address)
            time.sleep(THROTTLED_DELAY_SECONDS)
        return result

    def _login_ext(self, login: str, password: str, context: auth.AuthContext) -> str:
        return self.check(login, password, getattr(context, "remote_addr", None) or "")

    def _login(self, login: str, password: str) -> str:
        return self.check(login, password, "")

    def check(self, login: str, password: str, address: str) -> str:
        """The user name when password is one of login's live app passwords, else "";
        a failure is counted against the client address."""
        if not login or not password:
            return ""
        key = self._key(login, password)
        password_id = self._cached(key)
        if password_id is not None:
            with self.runtime.sessions.begin() as session:
                if app_passwords.is_live(session, password_id):
                    app_passwords.mark_used(
                        session, password_id, self.runtime.clock(), every=_LAST_USED_EVERY
                    )
                    return login
        return login if self._check_and_count(login, password, address, key) else ""

    def _key(self, login: str, password: str) -> bytes:
        """The keyed digest the verified-pair cache is indexed by (never the password)."""
        secret = self.runtime.secrets.secret_key
        return hmac.new(secret, f"{login}\0{password}".encode(), hashlib.sha256).digest()

    def _check_and_count(self, login: str, password: str, address: str, key: bytes) -> bool:
        now = self.runtime.clock()
        with self.runtime.sessions.begin() as session:
            password_id = self._verify(session, login, password)
            if password_id is None:
                if address:
                    app_passwords.record_failure(session, address, now)
                return False
            self._remember(key, password_id)
            app_passwords.mark_used(session, password_id, now, every=_LAST_USED_EVERY)
        return True

    def _verify(self, session: Session, login: str, password: str) -> str | None:
        found = None
        # Check every live password so the time taken does not tell which one matched.
        for password_id, stored in app_passwords.candidates(session, login):
            if app_passwords.password_matches(password, stored):
                found = password_id
        return found

    def _address_lock(self, address: str) -> threading.Lock:
        with self._lock:
            lock = self._address_locks.get(address)
            if lock is None:
                lock = self._address_locks[address] = threading.Lock()
                while len(self._address_locks) > _MAX_TRACKED_ADDRESSES:
                    self._address_locks.popitem(last=False)
            else:
                self._address_locks.move_to_end(address)
            return lock

    def _cached(self, key: bytes) -> str | None:
        with self._lock:
            entry = self._verified.get(key)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def _remember(self, key: bytes, password_id: str) -> None:
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[key] = (password_id, time.monotonic() + _CACHE_SECONDS)
