"""Radicale rights: a provider reaches only its own principal; generated calendars are read-only.

Paths are /<dav_username>/<calendar>/<href>. The root is listable (discovery needs it), the
principal readable, bookings and holds readable, blocks writable but not deletable, and
calendars the provider creates fully its own. Anyone else's path gets no rights at all.
"""

from __future__ import annotations

from radicale import pathutils, rights

from core.services.dav import READ_ONLY_KINDS


class ParleyRights(rights.BaseRights):
    """The rights plugin (no runtime needed: the rules depend on the path alone)."""

    def authorization(self, user: str, user_groups: set[str], path: str) -> str:
        if not user:
            return ""
        parts = [p for p in pathutils.strip_path(path).split("/") if p]
        if not parts:
            return "R"
        if parts[0] != user:
            return ""
        if len(parts) == 1:
            return "R"
        if parts[1] == "outbox":
            return "R"  # the schedule outbox: a collection without items, POSTed to
        if parts[1] in READ_ONLY_KINDS:
            return "r"
        if parts[1] == "blocks":
            return "rwd"  # the blocks calendar itself may not be deleted
        return "rw"
