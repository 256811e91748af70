"""The gettext catalogs are complete and compiled: every marked string of the pages and
mails (extracted afresh with babel.cfg) has a German, French and Spanish translation with
the same placeholders, and each committed .mo says what its .po says."""

from __future__ import annotations

import re
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from core.formatting import LOCALES
from core.i18n import LOCALE_DIR, negotiate, translations

ROOT = Path(__file__).resolve().parents[3]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _extracted() -> set[str]:
    with open(ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found = extract_from_dir(ROOT, method_map, options_map, keywords=keywords)
    return {message if isinstance(message, str) else message[0] for _, _, message, *_ in found}


@pytest.fixture(scope="module")
def extracted() -> set[str]:
    return _extracted()


@pytest.mark.parametrize("locale", [code for code in LOCALES if code != "en"])
def test_every_marked_string_is_translated(locale: str, extracted: set[str]) -> None:
    with open(LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po", "rb") as po:
        catalog = read_po(po, locale=locale)
    assert len(extracted) > 200  # the extraction itself works
    missing = sorted(m for m in extracted if not (catalog.get(m) and catalog.get(m).string))
    assert not missing, f"{locale}: {len(missing)} untranslated, e.g. {missing[:5]}"
    for message in catalog:
        if message.id and message.string:
            assert set(PLACEHOLDER.findall(str(message.id))) == set(
                PLACEHOLDER.findall(str(message.string))
            ), (locale, message.id)
            assert not message.fuzzy, (locale, message.id)


def _key(text: object) -> object:
    return tuple(text) if isinstance(text, list | tuple) else text


@pytest.mark.parametrize("locale", [code for code in LOCALES if code != "en"])
def test_the_compiled_catalog_matches_its_source(locale: str) -> None:
    folder = LOCALE_DIR / locale / "LC_MESSAGES"
    with open(folder / "messages.po", "rb") as po:
        source = {_key(m.id): _key(m.string) for m in read_po(po, locale=locale) if m.id}
    compiled = read_mo(BytesIO((folder / "messages.mo").read_bytes()))
    built = {_key(m.id): _key(m.string) for m in compiled if m.id}
    assert built == source, "run: pybabel compile -d core/locale -D messages"


def test_languages_are_chosen_from_accept_language() -> None:
    assert negotiate("de-AT,de;q=0.9,en;q=0.8") == "de"
    assert negotiate("ja, fr-CA;q=0.7, es;q=0.9") == "es"
    assert negotiate("ja, zh;q=0.5") is None and negotiate("") is None
    assert negotiate("en;q=0, fr") == "fr"
    assert translations("de").gettext("Decline") == "Ablehnen"
    assert translations("en").gettext("Decline") == "Decline"
