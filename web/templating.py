"""The Jinja2 environment of the web pages: one template folder, autoescaped, with time filters."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from starlette.templating import Jinja2Templates

from core.tzids import zone_for_tzid

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def local_time(moment: datetime, zone: str | None = None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    """moment shown in zone (IANA or Windows name), with the zone's abbreviation."""
    tz = zone_for_tzid(zone) or ZoneInfo("UTC")
    local = moment.astimezone(tz)
    return f"{local.strftime(fmt)} {local.tzname() or ''}".strip()


templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
templates.env.filters["local"] = local_time
