"""The front door at ``/``: what this server is and where each kind of visitor goes next.

It names no provider (booking pages are reached by the links providers hand out), so the
page tells a stranger nothing about who uses this server.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from web.templating import templates


async def landing(request: Request) -> Response:
    return templates.TemplateResponse(request, "landing.html", {})


def routes() -> list[BaseRoute]:
    return [Route("/", landing, methods=["GET"])]
