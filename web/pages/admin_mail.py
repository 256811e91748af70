"""The console's mailbox (/admin/mail): every message in and out, with what became of it.

Inbound: who, what, when, the outcome and the reason in words, the booking it touched and
the raw message to download. Outbound: to whom, state, attempts, the last error, and
"retry now" for a failed one (managers and owners; a CSRF-protected POST). Owners of a
deployment without a relay also see the local mail folder (core.services.local_mail), the
tenant's messages decoded with their links clickable: what a newcomer would otherwise
dig out of quoted-printable .eml files.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.services import console, lists, local_mail, mailboxes
from core.services.access import Grant
from core.services.errors import AmbiguousKey, Forbidden, NotFoundError, NotRetryable
from web.pages.admin_common import Ctx, back, console_page, render, subject_of

NOTICES = {
    "retried": "The message is queued to be sent again now.",
    "not_failed": "That message has not failed (any more); nothing to retry.",
}


def _choice(ctx: Ctx, name: str, allowed: tuple[str, ...]) -> str | None:
    value = ctx.request.query_params.get(name) or None
    return value if value in allowed else None


LOCAL_PAGE = 100


def _local_folder(ctx: Ctx) -> bool:
    """Whether this operator sees the local mail folder: owners, when mail has no relay."""
    return not ctx.runtime.settings.smtp_relay_url and ctx.op.caller.grant >= Grant.KEYS


def _tenant_sender(ctx: Ctx) -> Callable[[str], bool]:
    boxes, tenant = mailboxes.of_runtime(ctx.runtime), ctx.op.caller.tenant_id
    return lambda sender: boxes.tenant_of(sender) == tenant


async def _local(ctx: Ctx) -> Response:
    if not _local_folder(ctx):
        raise Forbidden("only owners read the local mail folder, and only without a relay")
    root, keep = ctx.runtime.settings.maildir, _tenant_sender(ctx)
    found = await run_in_threadpool(
        lambda: local_mail.list_mail(root, limit=LOCAL_PAGE, sender_ok=keep)
    )
    context = {"box": "local", "local": found, "folder": root, "local_folder": True}
    return render(ctx.request, "admin/mail.html", context, op=ctx.op)


async def _local_message(ctx: Ctx) -> Response:
    key = ctx.request.path_params["key"]
    if not _local_folder(ctx):
        raise Forbidden("only owners read the local mail folder, and only without a relay")
    try:
        mail = await run_in_threadpool(local_mail.find, ctx.runtime.settings.maildir, key)
    except AmbiguousKey:
        mail = None
    if mail is None or not _tenant_sender(ctx)(mail.sender):
        raise NotFoundError("message", key)
    return render(ctx.request, "admin/local_message.html", {"mail": mail}, op=ctx.op)


async def _mailbox(ctx: Ctx) -> Response:
    caller, page = ctx.op.caller, ctx.page()
    box = ctx.request.query_params.get("box")
    if box == "local":
        return await _local(ctx)
    box = "out" if box == "out" else "in"
    outcome = _choice(ctx, "outcome", lists.INBOUND_OUTCOMES)
    status = _choice(ctx, "status", lists.OUTBOUND_STATUSES)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        if box == "in":
            found = lists.list_inbound(session, caller, outcome, page)
            return {"inbound": found.items, "next_cursor": found.next_cursor}
        sent = lists.list_outbound(session, caller, status, page)
        rows = [(row, subject_of(row)) for row in sent.items]
        return {"outbound": rows, "next_cursor": sent.next_cursor}

    context = await ctx.run(work)
    context.update(
        box=box, outcome=outcome, status=status, outcomes=lists.INBOUND_OUTCOMES,
        statuses=lists.OUTBOUND_STATUSES, local_folder=_local_folder(ctx),
        notice=NOTICES.get(ctx.request.query_params.get("done", "")),
    )  # fmt: skip
    return render(ctx.request, "admin/mail.html", context, op=ctx.op)


def _message_id(ctx: Ctx) -> int:
    raw = ctx.request.path_params["message_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFoundError("message", raw)
    return int(raw)


async def _raw(ctx: Ctx) -> Response:
    caller, ident = ctx.op.caller, _message_id(ctx)
    row = await ctx.run(lambda s, now: console.inbound_message(s, caller, ident))
    headers = {
        "Content-Disposition": f'attachment; filename="inbound-{row.id}.eml"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(row.raw, media_type="message/rfc822", headers=headers)


async def _retry(ctx: Ctx) -> Response:
    caller, ident = ctx.op.caller, _message_id(ctx)
    try:
        await ctx.run(lambda s, now: lists.retry_outbound(s, caller, ident, now))
    except NotRetryable:
        return back("/admin/mail?box=out", "not_failed")
    return back("/admin/mail?box=out", "retried")


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/mail", console_page(_mailbox), methods=["GET"]),
        Route("/admin/mail/in/{message_id}/raw", console_page(_raw), methods=["GET"]),
        Route("/admin/mail/local/{key}", console_page(_local_message), methods=["GET"]),
        Route(
            "/admin/mail/out/{message_id}/retry",
            console_page(_retry, needs=Grant.WRITE),
            methods=["POST"],
        ),
    ]
