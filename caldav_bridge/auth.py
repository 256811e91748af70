"""Radicale auth over Parley's app passwords, with throttling after repeated failures.

scrypt is deliberately slow, and calendar apps authenticate every request, so a verified
(user, password) pair is remembered for a few minutes by a keyed digest only; revocation
is still checked in the database on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from datetime import timedelta

from radicale import auth, config
from sqlalchemy.orm import Session

from core.runtime import Runtime
from core.services import app_passwords

_CACHE_SECONDS = 300.0
_LAST_USED_EVERY = timedelta(minutes=5)


class ParleyAuth(auth.BaseAuth):
    """The auth plugin; build it with functools.partial(ParleyAuth, runtime=…)."""

    def __init__(self, configuration: config.Configuration, runtime: Runtime) -> None:
        super().__init__(configuration)
        self.runtime = runtime
        self._verified: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _login(self, login: str, password: str) -> str:
        if not login or not password:
            return ""
        now = self.runtime.clock()
        key = hmac.new(
            self.runtime.secrets.secret_key, f"{login}\0{password}".encode(), hashlib.sha256
        ).digest()
        with self.runtime.sessions.begin() as session:
            if app_passwords.is_throttled(session, login, now):
                return ""
            password_id = self._cached(key)
            if password_id is None or not app_passwords.is_live(session, password_id):
                password_id = self._verify(session, login, password)
            if password_id is None:
                app_passwords.record_failure(session, login, now)
                return ""
            self._remember(key, password_id)
            app_passwords.mark_used(session, password_id, now, every=_LAST_USED_EVERY)
        return login

    def _verify(self, session: Session, login: str, password: str) -> str | None:
        found = None
        # Check every live password so the time taken does not tell which one matched.
        for password_id, stored in app_passwords.candidates(session, login):
            if app_passwords.password_matches(password, stored):
                found = password_id
        return found

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
