"""The console's units page (/admin/units): the tenant's rental units as a tree (an
apartment, its rooms, their beds), a child unit added under a parent in one step, two
existing units linked, and a link removed. Writes need a manager or owner; refusals (a
loop, a duplicate, a taken slug) are shown in words on the page, with the form kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.services import units
from core.services.access import Grant
from core.services.errors import Forbidden, NotFoundError, ServiceError
from web.pages.admin_common import Ctx, back, console_page, render

NOTICES = {
    "added": "Child unit added: a booking of its parent now blocks it.",
    "linked": "Units linked.",
    "unlinked": "Link removed: the units no longer block each other through it.",
}
FIELDS = ("parent_id", "child_id", "name", "slug", "email")


async def _page(ctx: Ctx, *, error: str = "", form: str = "", status: int = 200) -> Response:
    caller = ctx.op.caller

    def work(session: Session, now: datetime) -> dict[str, Any]:
        tree = units.unit_tree(session, caller)
        return {"roots": tree.roots, "units": tree.units}

    context = await ctx.run(work)
    context.update(
        error=error, error_form=form, values={k: ctx.form.get(k, "") for k in FIELDS},
        notice=NOTICES.get(ctx.request.query_params.get("done", "")),
    )  # fmt: skip
    return render(ctx.request, "admin/units.html", context, status=status, op=ctx.op)


async def _show(ctx: Ctx) -> Response:
    return await _page(ctx)


async def _refused(ctx: Ctx, error: ServiceError, form: str) -> Response:
    status = 409 if error.code in ("relationship_refused", "slug_taken") else 400
    return await _page(ctx, error=error.message, form=form, status=status)


async def _add_child(ctx: Ctx) -> Response:
    caller, form = ctx.op.caller, ctx.form
    try:
        await ctx.run(
            lambda s, now: units.add_child_unit(
                s, caller, parent_id=form.get("parent_id", ""), name=form.get("name", ""),
                slug=form.get("slug", ""), email=form.get("email", "").strip() or None, now=now,
            )
        )  # fmt: skip
    except (NotFoundError, Forbidden):
        raise
    except ServiceError as error:
        return await _refused(ctx, error, "child")
    return back("/admin/units", "added")


async def _link(ctx: Ctx) -> Response:
    caller, form = ctx.op.caller, ctx.form
    try:
        await ctx.run(
            lambda s, now: units.create_relationship(
                s, caller, parent_id=form.get("parent_id", ""), child_id=form.get("child_id", ""),
                block_child_on_parent=True,
                block_parent_on_all_children=form.get("all_children") == "on", now=now,
            )
        )  # fmt: skip
    except (NotFoundError, Forbidden):
        raise
    except ServiceError as error:
        return await _refused(ctx, error, "link")
    return back("/admin/units", "linked")


async def _unlink(ctx: Ctx) -> Response:
    caller, ident = ctx.op.caller, ctx.request.path_params["relationship_id"]
    await ctx.run(lambda s, now: units.delete_relationship(s, caller, ident, now))
    return back("/admin/units", "unlinked")


def routes() -> list[BaseRoute]:
    write = Grant.WRITE
    return [
        Route("/admin/units", console_page(_show), methods=["GET"]),
        Route("/admin/units/children", console_page(_add_child, needs=write), methods=["POST"]),
        Route("/admin/units/links", console_page(_link, needs=write), methods=["POST"]),
        Route(
            "/admin/units/links/{relationship_id}/remove",
            console_page(_unlink, needs=write),
            methods=["POST"],
        ),
    ]
