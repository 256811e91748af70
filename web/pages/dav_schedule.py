"""The no-login pages behind the links of events providers schedule from their calendar app.

/schedule/reschedule?r=… lets an attendee ask for another time; /schedule/approve?t=… and
/schedule/decline?t=… let the provider settle it (core.services.dav_scheduling). As with
the booking links, GET only shows what the button would do; the POST acts.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from core.domain.zones import is_nonexistent
from core.runtime import Runtime
from core.services import dav_scheduling
from core.services.errors import LinkProblem
from core.services.notify import Mailer
from core.tzids import zone_for_tzid
from web.errors import LINK_STATUS
from web.http import runtime_of
from web.templating import templates

_VERBS = {"approve": dav_scheduling.APPROVE, "decline": dav_scheduling.DECLINE}


def _look(runtime: Runtime, token: str, purpose: str) -> dav_scheduling.Shown:
    with runtime.sessions.begin() as session:  # committed, so the rows stay loaded
        return dav_scheduling.open_link(
            session, Mailer.from_runtime(runtime), token, purpose, runtime.clock()
        )


def _problem(request: Request, problem: LinkProblem) -> Response:
    context = {"problem": problem, "fresh_link": None}
    status = LINK_STATUS.get(problem.reason, 409)
    return templates.TemplateResponse(request, "link_problem.html", context, status_code=status)


async def confirm_page(request: Request) -> Response:
    verb = request.url.path.rsplit("/", 1)[1]
    token = request.query_params.get("t", "")
    try:
        shown = await run_in_threadpool(_look, runtime_of(request), token, _VERBS[verb])
        if shown.proposal is None or shown.proposal.status != "pending":
            status = shown.proposal.status if shown.proposal else "gone"
            raise LinkProblem("not_pending", f"This proposed time is {status}.")
    except LinkProblem as problem:
        return _problem(request, problem)
    context = {"shown": shown, "token": token, "verb": verb, "zone": shown.provider.timezone}
    return templates.TemplateResponse(request, "schedule/confirm.html", context)


def _act(runtime: Runtime, token: str, verb: str) -> None:
    mailer = Mailer.from_runtime(runtime)
    with runtime.sessions.begin() as session:
        act = dav_scheduling.approve if verb == "approve" else dav_scheduling.decline
        act(session, mailer, token, now=runtime.clock())


async def action_submit(request: Request) -> Response:
    verb = request.url.path.rsplit("/", 1)[1]
    token = str((await request.form()).get("t", ""))
    try:
        await run_in_threadpool(_act, runtime_of(request), token, verb)
    except LinkProblem as problem:
        return _problem(request, problem)
    if verb == "approve":
        heading, message = (
            "Approved",
            "The event moved in your calendar; every attendee gets the update.",
        )
    else:
        heading, message = "Declined", "The time stays as it was; the attendee is told."
    context = {"heading": heading, "message": message}
    return templates.TemplateResponse(request, "schedule/done.html", context)


async def reschedule_page(request: Request) -> Response:
    token = request.query_params.get("r", "")
    try:
        shown = await run_in_threadpool(_look, runtime_of(request), token, dav_scheduling.PROPOSE)
    except LinkProblem as problem:
        return _problem(request, problem)
    return _form(request, shown, token, {}, None)


def _form(
    request: Request, shown: Any, token: str, form: dict[str, str], error: str | None
) -> Response:
    zone = form.get("tz") or shown.provider.timezone
    context = {"shown": shown, "token": token, "zone": zone, "form": form, "error": error}
    status = 400 if error else 200
    return templates.TemplateResponse(
        request, "schedule/reschedule.html", context, status_code=status
    )


def _start_of(form: dict[str, str], zone: str) -> datetime:
    tz = zone_for_tzid(zone)
    try:
        day = date.fromisoformat(form.get("date", ""))
        clock = time.fromisoformat(form.get("time", ""))
    except ValueError:
        raise LinkProblem("invalid", "Enter a date and a time.") from None
    local = datetime.combine(day, clock, tz)
    if tz is None or is_nonexistent(local):
        raise LinkProblem("invalid", "That local time does not exist (clocks change then).")
    return local


def _propose(runtime: Runtime, token: str, form: dict[str, str], shown: Any) -> None:
    start = _start_of(form, form.get("tz") or shown.provider.timezone)
    length = timedelta(hours=1)
    if shown.schedule.start_at and shown.schedule.end_at:
        length = shown.schedule.end_at - shown.schedule.start_at
    if start <= runtime.clock():
        raise LinkProblem("invalid", "The proposed time is in the past.")
    with runtime.sessions.begin() as session:
        dav_scheduling.propose(
            session, Mailer.from_runtime(runtime), token, start=start, end=start + length,
            note=form.get("note", "")[:2000], now=runtime.clock(),
        )  # fmt: skip


async def reschedule_submit(request: Request) -> Response:
    runtime = runtime_of(request)
    form = {k: str(v) for k, v in (await request.form()).items()}
    token = form.get("r", "")
    try:
        shown = await run_in_threadpool(_look, runtime, token, dav_scheduling.PROPOSE)
    except LinkProblem as problem:
        return _problem(request, problem)
    try:
        await run_in_threadpool(_propose, runtime, token, form, shown)
    except LinkProblem as problem:
        return _form(request, shown, token, form, problem.message)
    context = {
        "heading": "Proposal sent",
        "message": f"{shown.provider.name} is asked to approve the new time.",
    }
    return templates.TemplateResponse(request, "schedule/done.html", context, status_code=201)


def routes() -> list[BaseRoute]:
    return [
        Route("/schedule/reschedule", reschedule_page, methods=["GET"]),
        Route("/schedule/reschedule", reschedule_submit, methods=["POST"]),
        Route("/schedule/approve", confirm_page, methods=["GET"]),
        Route("/schedule/approve", action_submit, methods=["POST"]),
        Route("/schedule/decline", confirm_page, methods=["GET"]),
        Route("/schedule/decline", action_submit, methods=["POST"]),
    ]
