"""A provider's booking page look: an accent colour and a photo or logo.

The colour is ``#rrggbb``; the page draws it behind text in black or white, whichever
contrasts more (at least 4.58:1, above WCAG AA's 4.5:1, for any colour). The image is an
``https`` address only: a page served over https must not load it over http, and no
other scheme (``javascript:``, ``data:``) is an image the page should fetch.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from core.db.models import Provider
from core.services.errors import InvalidInput

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_URL_CHARS = re.compile(r"[!#-;=?-~]+")  # printable ASCII without space, quotes, < and >
MAX_URL = 500


def check_accent(text: str) -> str:
    """The colour in lower case; InvalidInput unless it is #rrggbb."""
    if not _COLOUR.fullmatch(text):
        raise InvalidInput("accent_colour must be a colour as #rrggbb", code="invalid_colour")
    return text.lower()


def check_photo_url(text: str) -> str:
    """The address; InvalidInput unless it is an https URL with a host."""
    parts = urlsplit(text) if len(text) <= MAX_URL and _URL_CHARS.fullmatch(text) else None
    if parts is None or parts.scheme != "https" or not parts.hostname or parts.username:
        raise InvalidInput(
            f"photo_url must be an https:// address of at most {MAX_URL} characters",
            code="invalid_url",
        )
    return text


def set_look(provider: Provider, changes: dict[str, str | None]) -> None:
    """Apply the given fields (``accent_colour``, ``photo_url``); None clears one."""
    if "accent_colour" in changes:
        colour = changes["accent_colour"]
        provider.accent_colour = None if colour is None else check_accent(colour)
    if "photo_url" in changes:
        url = changes["photo_url"]
        provider.photo_url = None if url is None else check_photo_url(url)


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i : i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, two: str) -> float:
    """The WCAG 2 contrast ratio of two #rrggbb colours, 1 to 21."""
    high, low = sorted((_luminance(one), _luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(colour: str) -> str:
    """Black or white, whichever reads better on colour."""
    return "#000000" if contrast(colour, "#000000") >= contrast(colour, "#ffffff") else "#ffffff"
