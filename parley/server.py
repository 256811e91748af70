"""`parley serve`: web, SMTP inbound and the worker in one asyncio process.

SIGTERM and SIGINT stop everything within seconds: the HTTP server drains, the SMTP
listener closes, and the worker finishes or abandons the job in hand to its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

import uvicorn
from prometheus_client import start_http_server

from core.logging import get_logger
from core.runtime import Runtime
from core.services import gauges
from core.services.inbound import request_processing
from core.services.mailboxes import of_runtime as mailboxes_of
from mailagent.delivery import client_tls
from mailagent.imap import ImapConfig, ImapPoller
from mailagent.lmtp import LmtpHandler, lmtp_factory
from mailagent.smtp import InboundHandler, RecipientPolicy, smtp_factory
from parley.handlers import inbound_context, job_handlers, periodic_jobs
from parley.worker import Worker
from web.app import create_app

_log = get_logger("parley.serve")
STOP_GRACE_SECONDS = 8.0


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process runner owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def _waker(runtime: Runtime) -> Callable[[int], None]:
    """After a message is stored: make inbound.process due, here and for workers elsewhere.

    One wake at a time; messages stored while one is under way get one more after it, so
    the last of them is never left for the job's next period. A worker in this process
    hears of each wake at once (``core.jobs.on_wake``); with ``--no-worker`` the workers
    of other processes see it at their next poll.
    """
    running: asyncio.Task[None] | None = None
    again = False

    async def bump() -> None:
        nonlocal again
        while True:
            again = False
            try:
                await asyncio.to_thread(request_processing, runtime.sessions, runtime.clock())
            except Exception as exc:  # the periodic run picks the message up anyway
                _log.warning("mail.inbound.wake_failed", error=type(exc).__name__)
            if not again:
                return

    def wake(_: int) -> None:
        nonlocal again, running
        # done() turns true in the step bump() returns in, so a wake is never dropped
        # between its last look at `again` and its end.
        if running is not None and not running.done():
            again = True
            return
        running = asyncio.get_running_loop().create_task(bump())

    return wake


def _server_tls(runtime: Runtime) -> ssl.SSLContext | None:
    settings = runtime.settings
    if not settings.smtp_tls_cert:
        return None
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key or None)
    return tls


async def _start_smtp(runtime: Runtime) -> list[asyncio.Server]:
    """The SMTP listener and, when PARLEY_LMTP_PORT is set, the LMTP one."""
    settings = runtime.settings
    policy = RecipientPolicy(mailboxes_of(runtime))
    wake, tls, loop = _waker(runtime), _server_tls(runtime), asyncio.get_running_loop()
    servers = []
    if settings.smtp_port != 0:
        handler = InboundHandler(
            runtime.sessions, policy, clock=runtime.clock, on_stored=wake,
            max_recipients=settings.smtp_max_recipients, hot=runtime.hot,
        )  # fmt: skip
        factory = smtp_factory(handler, data_size_limit=settings.smtp_max_message_bytes, tls=tls)
        servers.append(await loop.create_server(factory, settings.smtp_host, settings.smtp_port))
        _log.info("smtp.listening", host=settings.smtp_host, port=settings.smtp_port)
    if settings.lmtp_port != 0:
        lmtp = LmtpHandler(
            runtime.sessions, policy, channel="lmtp", clock=runtime.clock, on_stored=wake,
            max_recipients=settings.smtp_max_recipients, hot=runtime.hot,
        )  # fmt: skip
        factory = lmtp_factory(lmtp, data_size_limit=settings.smtp_max_message_bytes, tls=tls)
        servers.append(await loop.create_server(factory, settings.lmtp_host, settings.lmtp_port))
        _log.info("lmtp.listening", host=settings.lmtp_host, port=settings.lmtp_port)
    return servers


def _imap_poller(runtime: Runtime) -> ImapPoller | None:
    settings = runtime.settings
    if not settings.imap_url:
        return None
    tls = client_tls(settings.imap_ca_file)
    return ImapPoller(
        ImapConfig.from_url(settings.imap_url), inbound_context(runtime),
        poll_seconds=settings.imap_poll_seconds, folder_prefix=settings.imap_folder_prefix,
        tls=tls, on_stored=_waker(runtime),
    )  # fmt: skip


async def serve(runtime: Runtime, *, with_worker: bool = True) -> None:
    """Run until SIGTERM/SIGINT."""
    settings = runtime.settings
    stop = asyncio.Event()
    _install_signals(stop)
    worker = Worker(runtime, job_handlers(), periodic_jobs(settings)) if with_worker else None
    app = create_app(settings, runtime=runtime)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        # uvicorn would trust X-Forwarded-For from 127.0.0.1 by default; the app reads
        # it only from PARLEY_TRUSTED_PROXIES (web.edge.ClientAddress), under any server.
        proxy_headers=False,
    )
    http = _Server(config)
    smtp = await _start_smtp(runtime)
    tasks = [asyncio.create_task(http.serve(), name="http")]
    if worker is not None:
        tasks.append(asyncio.create_task(worker.run(stop), name="worker"))
    poller = _imap_poller(runtime)
    if poller is not None:
        tasks.append(asyncio.create_task(poller.run(stop), name="imap"))
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if task is not stopper and task.exception() is not None:
            _log.error("serve.component_failed", component=task.get_name())
    _log.info("serve.stopping")
    stop.set()
    http.should_exit = True
    for server in smtp:
        server.close()
    _, pending = await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
    for task in pending:
        task.cancel()
    for server in smtp:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 1.0)
    _log.info("serve.stopped")
    failed = [t for t in done if t is not stopper and t.exception() is not None]
    if failed:
        raise RuntimeError(f"{failed[0].get_name()} stopped: {failed[0].exception()}")


def _serve_metrics(runtime: Runtime) -> WSGIServer | None:
    """/metrics of a worker process on PARLEY_WORKER_METRICS_PORT (a thread), or None when 0.

    The same registry as the web app's: this process's counters plus the database gauges.
    """
    port = runtime.settings.worker_metrics_port
    if not port:
        return None
    gauges.bind_runtime(runtime)
    server, _ = start_http_server(port, addr=runtime.settings.http_host)
    _log.info("worker.metrics.listening", host=runtime.settings.http_host, port=port)
    return server


async def work(runtime: Runtime) -> None:
    """`parley worker`: only the job loop, until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    _install_signals(stop)
    metrics_server = _serve_metrics(runtime)
    worker = Worker(runtime, job_handlers(), periodic_jobs(runtime.settings))
    task = asyncio.create_task(worker.run(stop))
    await stop.wait()
    try:
        await asyncio.wait_for(task, STOP_GRACE_SECONDS)
    except TimeoutError:
        _log.warning("worker.abandoned_job_to_lease")
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
