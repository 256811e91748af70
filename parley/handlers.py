"""Which background jobs exist: the handler of each job kind and the periodic schedule.

Also where core's inbound decisions are handed the mail agent's wires (MAIL_READER).
"""

from __future__ import annotations

import time
from typing import Any

from caldav_bridge.importers import make_fetcher
from core.jobs import Handler, JobContext, Periodic
from core.runtime import Runtime
from core.services import dav
from core.services.bookings import actor_of
from core.services.expiry import expire_holds
from core.services.inbound import PROCESS_JOB
from core.services.mail_in import AuthPolicy, MailReader, ProcessingContext, process_pending
from core.services.mailboxes import of_runtime as mailboxes_of
from core.services.outbox import DELIVER_JOB
from core.services.proposals import expire_proposals
from core.services.ratelimit import purge as purge_rate_limits
from core.services.sync import SyncPolicy, poll_due
from core.settings import Settings
from mailagent.dkim import authres_passes, dkim_domain_passes
from mailagent.mime import parse_message
from mailagent.outbox import deliver_outbox

# The mail agent's MIME parser and signature checks, for core's inbound decisions.
MAIL_READER = MailReader(parse_message, dkim_domain_passes, authres_passes)


def inbound_context(runtime: Runtime) -> ProcessingContext:
    """How the mailbox settles inbound mail: the configured sender proof, acting as "mailbox"."""
    auth = AuthPolicy.from_setting(runtime.settings.inbound_auth)
    actor = actor_of(runtime, "mailbox")
    return ProcessingContext(
        runtime.sessions, runtime.settings, auth, runtime.clock, actor, reader=MAIL_READER,
        mailboxes=mailboxes_of(runtime),
    )  # fmt: skip


def _expire_holds(context: JobContext, payload: dict[str, Any]) -> None:
    expire_holds(context.sessions, context.now)


def _expire_proposals(context: JobContext, payload: dict[str, Any]) -> None:
    with context.sessions.begin() as session:
        expire_proposals(session, context.now)


def _purge_rate_limits(context: JobContext, payload: dict[str, Any]) -> None:
    with context.sessions.begin() as session:
        purge_rate_limits(session, context.now)


def _refresh_dav_spans(context: JobContext, payload: dict[str, Any]) -> None:
    with context.sessions.begin() as session:
        dav.refresh_recurring_busy(session, context.now)


def _sleep(context: JobContext, payload: dict[str, Any]) -> None:
    # An operational probe: `parley worker` fleets are checked by queueing one of these.
    time.sleep(min(float(payload.get("seconds", 1)), 300.0))


def _deliver_outbox(context: JobContext, payload: dict[str, Any]) -> None:
    runtime = context.services["runtime"]
    deliver_outbox(runtime.settings, context.sessions, runtime.clock, owner=context.worker)


def _process_inbound(context: JobContext, payload: dict[str, Any]) -> None:
    runtime = context.services["runtime"]
    processing = inbound_context(runtime)
    # Several batches per run, so a burst is drained without waiting for the next period.
    for _ in range(20):
        if process_pending(processing, limit=200) == 0:
            break


# Sources polled per run: well inside the job lease even when every fetch is slow.
POLL_BATCH = 500


def _poll_sources(context: JobContext, payload: dict[str, Any]) -> None:
    runtime = context.services["runtime"]
    settings = runtime.settings
    fetcher = make_fetcher(settings)
    try:
        poll_due(
            context.sessions,
            fetcher,
            now=runtime.clock,
            policy=SyncPolicy.from_settings(settings, runtime.secrets.secret_key),
            concurrency=settings.poll_concurrency,
            limit=POLL_BATCH,
        )
    finally:
        fetcher.close()


def job_handlers() -> dict[str, Handler]:
    return {
        "holds.expire": _expire_holds,
        "ratelimit.purge": _purge_rate_limits,
        "proposals.expire": _expire_proposals,
        "system.sleep": _sleep,
        DELIVER_JOB: _deliver_outbox,
        PROCESS_JOB: _process_inbound,
        "sources.poll": _poll_sources,
        "dav.spans": _refresh_dav_spans,
    }


def periodic_jobs(settings: Settings) -> list[Periodic]:
    return [
        Periodic("holds.expire", 30),
        Periodic("ratelimit.purge", 600),
        Periodic("proposals.expire", 300),
        Periodic(DELIVER_JOB, 5),
        # Two instances: a second worker process shares a burst (messages are taken with
        # SKIP LOCKED, so any number of drains can run side by side).
        Periodic(PROCESS_JOB, 10, instances=2),
        Periodic("sources.poll", 60),
        # Recurring events in providers' own calendars: keep their spans a horizon ahead.
        Periodic("dav.spans", 6 * 3600),
    ]
