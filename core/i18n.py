"""Parley's words in other languages: gettext catalogs (core/locale/*/LC_MESSAGES/messages.po,
compiled to .mo next to them) read with Babel, and the choice of a visitor's language.

Pages (web/templating.py) and mails (core/imip/compose.py) both translate through
``translations(locale)``; English is the source language, so it needs no catalog.
Extract and update with ``pybabel`` and babel.cfg (see README, "Languages").
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Final

from babel import Locale, UnknownLocaleError, negotiate_locale
from babel.support import NullTranslations, Translations

from core.formatting import DEFAULT_LOCALE, LOCALES, normalize_locale

LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
DOMAIN: Final = "messages"


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str | None) -> NullTranslations:
    """The catalog of a language (English and unknown languages: the source words)."""
    chosen = normalize_locale(locale) or DEFAULT_LOCALE
    if chosen == DEFAULT_LOCALE:
        return NullTranslations()
    found = Translations.load(str(LOCALE_DIR), [chosen], DOMAIN)
    return found if isinstance(found, Translations) else NullTranslations()


def gettext(locale: str | None, message: str) -> str:
    return translations(locale).gettext(message)


def accepted(header: str | None) -> list[str]:
    """The languages of an Accept-Language header, most wanted first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")[:40]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag.strip().replace("-", "_")))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(header: str | None) -> str | None:
    """The best of LOCALES for an Accept-Language header, or None when none fits."""
    wanted = accepted(header)
    found = negotiate_locale(wanted, list(LOCALES), sep="_")
    if found is None:  # "de_AT" matches "de" only by its language
        found = next((normalize_locale(tag) for tag in wanted if normalize_locale(tag)), None)
    return normalize_locale(found)


def language_name(locale: str) -> str:
    """The language's name in itself ("Deutsch")."""
    try:
        name = Locale.parse(locale).get_display_name(locale) or locale
    except (UnknownLocaleError, ValueError):
        return locale
    return name[:1].upper() + name[1:]
