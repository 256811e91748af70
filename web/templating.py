"""The Jinja2 environment of the web pages: one template folder, autoescaped, with time
filters (core.formatting) and gettext (core.i18n) in the request's language (web.i18n)."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from core.formatting import (
    DEFAULT_LOCALE,
    LANGUAGE_NAMES,
    LOCALES,
    Style,
    format_datetime,
    format_day,
    format_range,
    normalize_locale,
)
from core.i18n import translations
from web.i18n import locale_of

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def context_locale(context: Context) -> str:
    """The page's language: the context's own ``locale``, else the request's."""
    given = normalize_locale(context.get("locale"))
    if given:
        return given
    request = context.get("request")
    return locale_of(request) if isinstance(request, Request) else DEFAULT_LOCALE


@pass_context
def local_time(
    context: Context, moment: datetime | None, zone: str | None = None, style: Style = "datetime"
) -> str:
    """moment shown in zone (IANA or Windows name; none: UTC), named by core.formatting."""
    if moment is None:
        return ""
    return format_datetime(moment, zone, context_locale(context), style)


@pass_context
def time_span(context: Context, start: datetime, end: datetime | None, zone: str | None) -> str:
    """[start, end) in zone: "Thu, 3 Dec 2026, 05:00–06:00 EST"."""
    return format_range(start, end, zone, context_locale(context))


@pass_context
def translate(context: Context, message: str) -> str:
    """A text made elsewhere (a service's message) in the page's language when the
    catalogs know it; plain text, escaped like any other value."""
    return translations(context_locale(context)).gettext(str(message))


@pass_context
def day_label(context: Context, day: date | str) -> str:
    """A calendar day without its year: "Thu, 3 Dec" (an ISO date string or a date)."""
    found = date.fromisoformat(day) if isinstance(day, str) else day
    return format_day(found, context_locale(context), year=False)


@pass_context
def _gettext(context: Context, message: str) -> str:
    return translations(context_locale(context)).gettext(message)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, n: int) -> str:
    return translations(context_locale(context)).ngettext(singular, plural, n)


@pass_context
def _pgettext(context: Context, ctx: str, message: str) -> str:
    return str(translations(context_locale(context)).pgettext(ctx, message))


@pass_context
def _npgettext(context: Context, ctx: str, singular: str, plural: str, n: int) -> str:
    return translations(context_locale(context)).npgettext(ctx, singular, plural, n)


# Which of a page's parameters the language switch carries over: short, plain values (a
# link's token, a date, a zone); anything else is dropped rather than echoed into the page.
_CARRIED = re.compile(r"[A-Za-z0-9_\-.~=:/+%]{1,1000}")


@pass_context
def language_links(context: Context) -> list[dict[str, Any]]:
    """The language switch: this page again in each language (GET pages only). Links are
    query-only, so they stay on the path the browser sees (a tenant's own host too)."""
    request = context.get("request")
    if not isinstance(request, Request) or request.method != "GET":
        return []
    current = context_locale(context)
    kept = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k != "lang" and k.isidentifier() and _CARRIED.fullmatch(v)
    ]
    return [
        {"code": code, "name": LANGUAGE_NAMES[code], "current": code == current,
         "url": "?" + urlencode([*kept, ("lang", code)])}
        for code in LOCALES
    ]  # fmt: skip


_LINK = re.compile(r"https?://[^\s<>\"')\]]+")


def linkify(text: str) -> Markup:
    """text escaped, its http(s) links made into links that open apart from the console."""
    out, last = [], 0
    for found in _LINK.finditer(text):
        url = found.group(0).rstrip(".,;:")
        end = found.start() + len(url)
        out.append(escape(text[last : found.start()]))
        out.append(Markup('<a href="{0}" rel="noreferrer noopener">{0}</a>').format(url))
        last = end
    out.append(escape(text[last:]))
    return Markup("").join(out)


templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    _gettext, _ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext
)
templates.env.filters["local"] = local_time
templates.env.filters["span"] = time_span
templates.env.filters["linkify"] = linkify
templates.env.filters["translate"] = translate
templates.env.filters["day"] = day_label
templates.env.globals["language_links"] = language_links
templates.env.globals["page_locale"] = pass_context(context_locale)
