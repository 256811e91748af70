"""The Jinja2 environment of the web pages: one template folder, autoescaped, with time filters."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from starlette.templating import Jinja2Templates

from core.tzids import zone_for_tzid

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def local_time(moment: datetime, zone: str | None = None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    """moment shown in zone (IANA or Windows name), with the zone's abbreviation."""
    tz = zone_for_tzid(zone) or ZoneInfo("UTC")
    local = moment.astimezone(tz)
    return f"{local.strftime(fmt)} {local.tzname() or ''}".strip()


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
templates.env.filters["local"] = local_time
templates.env.filters["linkify"] = linkify
