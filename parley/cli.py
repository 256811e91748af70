"""The `parley` command line: serve, migrate, worker, mail ingest|list|show, sync, demo,
provider add, tenant create/list, key create/list/revoke, backup, doctor.

Every command reads settings once; a bad setting ends the command with one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from core.errors import ConfigError
from core.logging import configure_logging
from core.runtime import Runtime, open_runtime
from core.settings import Settings, load_settings

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from core.services.access import Caller
    from core.services.inbound import Stored
    from parley.demo import DemoResult

app = typer.Typer(
    help="Parley: self-hosted scheduling over email invitations, CalDAV and one-click links.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
mail_app = typer.Typer(help="Organizer mailbox commands.", no_args_is_help=True)
app.add_typer(mail_app, name="mail")
provider_app = typer.Typer(help="Provider commands.", no_args_is_help=True)
app.add_typer(provider_app, name="provider")
tenant_app = typer.Typer(help="Tenant commands (as the system token).", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
key_app = typer.Typer(help="A tenant's API keys (as the system token).", no_args_is_help=True)
app.add_typer(key_app, name="key")
unit_app = typer.Typer(help="Rental units and their parent/child links.", no_args_is_help=True)
app.add_typer(unit_app, name="unit")

err = Console(stderr=True)
out = Console()
T = TypeVar("T")
EX_TEMPFAIL = 75


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        err.print(f"parley: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _runtime(settings: Settings, *, announce_token: bool = True) -> Runtime:
    runtime = open_runtime(settings)
    if announce_token and runtime.secrets.generated_admin_token:
        # Printed once, on the run that generated it; it is kept in the data folder (0600).
        out.print(
            f"Admin token (shown once, saved in {settings.data_dir / 'admin_token'}): "
            f"{runtime.secrets.admin_token}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    return runtime


def _migrate(settings: Settings) -> None:
    from core.db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)


def _seal_source_urls(runtime: Runtime) -> None:
    """Seal imported calendars' URLs stored before they were sealed (see migration 0011)."""
    from core.services.source_urls import seal_plain_urls

    with runtime.sessions.begin() as session:
        seal_plain_urls(session, runtime.secrets.secret_key)


def _exit_now(code: int) -> None:
    # Worker threads may still hold an abandoned job (its lease brings it back); don't wait.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@app.command()
def serve(
    no_worker: Annotated[bool, typer.Option(help="Run no job worker in this process.")] = False,
) -> None:
    """Migrate the database, then run web, CalDAV, SMTP inbound and the worker."""
    from parley.server import serve as run_serve

    settings = _settings()
    _migrate(settings)
    runtime = _runtime(settings)
    _seal_source_urls(runtime)
    out.print(
        f"Parley on {settings.effective_base_url}  (SMTP inbound "
        f"{settings.smtp_host}:{settings.smtp_port if settings.smtp_port else 'off'})",
        markup=False,
        highlight=False,
    )
    code = 0
    try:
        asyncio.run(run_serve(runtime, with_worker=not no_worker))
    except Exception as exc:
        err.print(f"parley: {exc}", markup=False, highlight=False)
        code = 1
    _exit_now(code)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic upgrade head)."""
    settings = _settings()
    _migrate(settings)
    out.print("database is up to date", highlight=False)


@app.command()
def worker() -> None:
    """Run only the background job worker (any number may share one PostgreSQL)."""
    from parley.server import work

    settings = _settings()
    runtime = _runtime(settings, announce_token=False)
    _seal_source_urls(runtime)
    asyncio.run(work(runtime))
    _exit_now(0)


@mail_app.command("ingest")
def mail_ingest(
    file: Annotated[str, typer.Argument(help="RFC 5322 message file, or - for stdin.")] = "-",
) -> None:
    """Store one message from a pipe transport (Postfix, Exim); exit 75 on a transient failure."""
    settings = _settings()
    try:
        raw = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        err.print(f"parley: cannot read {file}: {exc.strerror}", markup=False, highlight=False)
        raise typer.Exit(66) from None  # EX_NOINPUT
    if not raw.strip():
        err.print("parley: empty message, nothing stored", highlight=False)
        raise typer.Exit(65)  # EX_DATAERR
    try:
        runtime = _runtime(settings, announce_token=False)
        stored = _ingest(runtime, raw)
        runtime.close()
    except Exception as exc:
        err.print(f"parley: temporary failure storing the message: {type(exc).__name__}")
        raise typer.Exit(EX_TEMPFAIL) from None
    state = "duplicate of" if stored.duplicate else "stored as"
    out.print(f"{state} inbound message {stored.id}", highlight=False)


@mail_app.command("list")
def mail_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    to: Annotated[str | None, typer.Option(help="Only messages to this address.")] = None,
) -> None:
    """The local mail folder (mail sent while no relay is set), newest first."""
    from rich.table import Table

    from core.services import local_mail

    settings = _settings()
    found = local_mail.list_mail(settings.maildir, limit=limit, to=to)
    if not found:
        _say(f"No mail in {settings.maildir} yet.")
        if settings.smtp_relay_url:
            _say("Mail goes to the relay (PARLEY_SMTP_RELAY_URL), not to this folder.")
        return
    table = Table(box=None, pad_edge=False)
    for name in ("key", "when (UTC)", "to", "method", "subject"):
        table.add_column(name, overflow="fold")
    for mail in found:
        table.add_row(
            mail.key[:10], mail.received.strftime("%Y-%m-%d %H:%M"), ", ".join(mail.to),
            mail.method or "", mail.subject,
        )  # fmt: skip
    out.print(table)
    _say("Read one: parley mail show KEY")


@mail_app.command("show")
def mail_show(
    key: Annotated[str, typer.Argument(help="A key from `parley mail list` (or its start).")],
    raw: Annotated[bool, typer.Option("--raw", help="Print the message as stored.")] = False,
) -> None:
    """One message of the local mail folder, decoded: headers, text and its links."""
    from core.services import local_mail
    from core.services.errors import AmbiguousKey

    settings = _settings()
    try:
        mail = local_mail.find(settings.maildir, key)
    except AmbiguousKey as exc:
        err.print(f"parley: {exc}; give more of the key", markup=False, highlight=False)
        raise typer.Exit(2) from None
    if mail is None:
        err.print(f"parley: no message with key {key!r} in {settings.maildir}", highlight=False)
        raise typer.Exit(1)
    if raw:
        sys.stdout.buffer.write(mail.raw)
        return
    _say(f"From:    {mail.sender}")
    _say(f"To:      {', '.join(mail.to)}")
    _say(f"Date:    {mail.received.strftime('%Y-%m-%d %H:%M')} UTC")
    _say(f"Subject: {mail.subject}")
    if mail.method:
        _say(f"Invitation: METHOD:{mail.method} (a calendar app shows its buttons)")
    _say(f"File:    {mail.path}")
    _say("")
    _say(mail.text)
    if mail.links:
        _say("")
        _say("Links:")
        for link in mail.links:
            _say(f"  {link}")


def _ingest(runtime: Runtime, raw: bytes) -> Stored:
    """Store raw through core's Inbox, as every listener does, then wake inbound.process."""
    from core.services.inbound import Inbox, request_processing

    def wake(_: int) -> None:
        try:
            request_processing(runtime.sessions, runtime.clock())
        except Exception as exc:  # stored all the same: the job's next period takes it
            err.print(f"parley: stored, but could not wake processing: {type(exc).__name__}")

    inbox = Inbox(runtime.sessions, wake=wake)
    try:
        return asyncio.run(inbox.receive(raw, channel="pipe", now=runtime.clock()))
    finally:
        inbox.close()


@app.command()
def sync(
    source: Annotated[str | None, typer.Option(help="Only this source id.")] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Every source, due or not.")] = False,
) -> None:
    """Poll external calendars (ICS URLs, CalDAV) now."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from caldav_bridge.importers import make_fetcher
    from core.services.errors import SourceNotFound
    from core.services.sync import SyncPolicy, poll_sources, sources_to_poll

    settings = _settings()
    runtime = _runtime(settings, announce_token=False)
    try:
        with runtime.sessions.begin() as session:
            ids = sources_to_poll(
                session, runtime.clock(), source_id=source, everything=all_sources
            )
    except SourceNotFound as exc:
        err.print(f"parley: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    if not ids:
        out.print("no sources due (use --all to poll every source)", highlight=False)
        return
    fetcher = make_fetcher(settings)
    policy = SyncPolicy.from_settings(settings, runtime.secrets.secret_key)
    columns = (TextColumn("syncing"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("sync", total=len(ids))
        outcomes = poll_sources(
            runtime.sessions, ids, fetcher, now=runtime.clock, policy=policy,
            concurrency=settings.poll_concurrency, on_done=lambda _: progress.advance(task),
        )  # fmt: skip
    fetcher.close()
    table = Table(title=f"{len(outcomes)} source(s) synced")
    table.add_column("source", no_wrap=True)
    for name in ("status", "added", "updated", "removed", "not modified"):
        table.add_column(name, no_wrap=True)
    table.add_column("error", overflow="fold")
    for o in outcomes:
        table.add_row(
            o.source_id, o.status, str(o.added), str(o.updated), str(o.removed),
            "yes" if o.not_modified else "", o.error or "",
        )  # fmt: skip
    out.print(table)
    if any(o.status != "ok" for o in outcomes):
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """Create a demo provider and booking and print where to look."""
    from parley.demo import run_demo

    settings = _settings()
    _migrate(settings)
    runtime = _runtime(settings)
    try:
        result = run_demo(runtime)
    except Exception as exc:
        err.print(f"parley: demo failed: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    finally:
        runtime.close()

    _say_demo(result, _unreachable(settings.effective_base_url))


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _unreachable(base_url: str) -> str:
    """Why nothing Parley-like answers GET base_url/healthz, or "" when it does."""
    import httpx

    try:
        answer = httpx.get(f"{base_url}/healthz", timeout=3.0)
    except httpx.HTTPError as exc:
        return str(exc) or type(exc).__name__
    if answer.status_code != 200:
        return f"/healthz answered {answer.status_code}"
    return ""


def _say_demo(result: DemoResult, unreachable: str) -> None:
    """What the demo made, its times in the demo provider's zone, and what to try next.

    Links are printed only when the server they point at answers: a newcomer who runs the
    demo before `parley serve`, or with other settings than the server, would otherwise be
    handed links that do not open."""
    from core.formatting import format_datetime

    when = f"{format_datetime(result.start, result.timezone)} ({result.timezone})"
    _say(f"Demo booking:          {result.booking_id} on {when}")
    _say(f"Mail folder (Maildir): {result.maildir / 'new'}")
    for recipient, path in result.invitations:
        where = str(path) if path else "(not delivered yet: run `parley serve`)"
        _say(f"  invitation to {recipient}: {where}")
    _say("  read them with: parley mail list, then parley mail show KEY")
    if unreachable:
        _say(f"No links printed: nothing answers at {result.base_url} ({unreachable}).")
        _say("Start `parley serve` with the same settings in another terminal, then run")
        _say("`parley demo` again for the booking page, the guest's link and how to sign in.")
        return
    _say(f"Booking page:          {result.booking_page}")
    if result.reschedule_link:
        _say("Guest's 'Request a new time' link:")
        _say(f"  {result.reschedule_link}")
    _say(f"Sign in as the demo provider: open {result.sign_in_page},")
    _say(f"  enter {result.host_email}; the sign-in link arrives in the mail folder above")
    _say("  (parley mail list shows it).")


@provider_app.command("add")
def provider_add(
    name: Annotated[str, typer.Option(help="Name guests see, e.g. 'Dana Demo'.")],
    email: Annotated[str, typer.Option(help="Address for invitations and signing in at /me.")],
    slug: Annotated[str, typer.Option(help="Booking page address: /book/SLUG (a-z, 0-9, -).")],
    timezone: Annotated[str, typer.Option(help="IANA zone of the provider's hours.")],
    kind: Annotated[str, typer.Option(help="person, or unit (an apartment, a room).")] = "person",
    tenant: Annotated[str, typer.Option(help="The tenant's slug.")] = "default",
    locale: Annotated[
        str | None, typer.Option(help="Language of their pages and mails: en, de, fr or es.")
    ] = None,
) -> None:
    """Create a provider (as POST /api/v1/providers does) and print the next step."""
    from core.errors import ParleyError
    from core.services.providers import booking_url, create_provider

    settings = _settings()
    _migrate(settings)
    runtime = _runtime(settings)
    try:
        with runtime.sessions.begin() as session:
            caller = _in_tenant(session, tenant)
            provider = create_provider(
                session, name=name, email=email, timezone=timezone, slug=slug,
                now=runtime.clock(), kind=kind, tenant_id=caller.tenant_id, locale=locale,
            )  # fmt: skip
            provider_id, address = provider.id, provider.email
            page = booking_url(session, provider, settings.effective_base_url)
    except ParleyError as exc:
        err.print(f"parley: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    base = settings.effective_base_url
    _say(f"Provider:     {provider_id}")
    _say(f"Booking page: {page}")
    _say(f"Next: sign in at {base}/me with {address} and set your hours (Availability);")
    _say("  guests see bookable times once there are weekly hours.")


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"parley: {exc}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _in_tenant(session: Session, slug: str) -> Caller:
    """The system token acting in the tenant ``slug``; exit 1 when there is none."""
    from core.services.access import system_caller
    from core.services.errors import NotFoundError

    try:
        return system_caller(session, slug)
    except NotFoundError:
        err.print(f"parley: no tenant with slug {slug!r} (see `parley tenant list`)",
                  markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(1) from None


def _unit_id(session: Session, caller: Caller, slug: str) -> str:
    from sqlalchemy import select

    from core.db.models import Provider

    found = session.scalar(
        select(Provider.id).where(Provider.tenant_id == caller.tenant_id, Provider.slug == slug)
    )
    if found is None:
        err.print(f"parley: no provider with slug {slug!r} in this tenant",
                  markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(1)
    return str(found)


@unit_app.command("link")
def unit_link(
    parent: Annotated[str, typer.Option(help="Slug of the parent unit (the apartment).")],
    child: Annotated[str, typer.Option(help="Slug of the child unit (a room).")],
    tenant: Annotated[str, typer.Option(help="The tenant's slug.")] = "default",
    all_children: Annotated[
        bool, typer.Option(help="Also block the parent once every such child is busy.")
    ] = False,
) -> None:
    """Make one unit the child of another: a booking of the parent blocks the child."""
    from core.errors import ParleyError
    from core.services.units import create_relationship

    runtime = _command_runtime()
    try:
        with runtime.sessions.begin() as session:
            caller = _in_tenant(session, tenant)
            link = create_relationship(
                session, caller, parent_id=_unit_id(session, caller, parent),
                child_id=_unit_id(session, caller, child), block_child_on_parent=True,
                block_parent_on_all_children=all_children, now=runtime.clock(),
            )  # fmt: skip
            said = f"{link.row.id}: {link.child_name} is a child of {link.parent_name}"
    except ParleyError as exc:
        raise _fail(exc) from None
    finally:
        runtime.close()
    _say(said)


@unit_app.command("tree")
def unit_tree(tenant: Annotated[str, typer.Option(help="The tenant's slug.")] = "default") -> None:
    """The tenant's units, each with its children indented below it."""
    from core.services import units

    runtime = _command_runtime()
    lines: list[str] = []
    try:
        with runtime.sessions.begin() as session:
            tree = units.unit_tree(session, _in_tenant(session, tenant))

            def show(node: units.TreeNode, depth: int) -> None:
                lines.append(f"{'  ' * depth}{node.unit.name}  ({node.unit.id})")
                for child in node.children:
                    show(child, depth + 1)

            for root in tree.roots:
                show(root, 0)
    finally:
        runtime.close()
    for line in lines:
        _say(line)


@unit_app.command("unlink")
def unit_unlink(
    parent: Annotated[str, typer.Option(help="Slug of the parent unit.")],
    child: Annotated[str, typer.Option(help="Slug of the child unit.")],
    tenant: Annotated[str, typer.Option(help="The tenant's slug.")] = "default",
) -> None:
    """Remove the link between a parent and a child unit: each is booked on its own again."""
    from core.errors import ParleyError
    from core.services.units import delete_relationship, relationships_of

    runtime = _command_runtime()
    try:
        with runtime.sessions.begin() as session:
            caller = _in_tenant(session, tenant)
            parent_id, child_id = (
                _unit_id(session, caller, parent),
                _unit_id(session, caller, child),
            )
            found = [
                link for link in relationships_of(session, caller, child_id)
                if link.row.parent_id == parent_id and link.row.child_id == child_id
            ]  # fmt: skip
            if not found:
                err.print(f"parley: {child!r} is not a child of {parent!r}",
                          markup=False, highlight=False, soft_wrap=True)  # fmt: skip
                raise typer.Exit(1)
            delete_relationship(session, caller, found[0].row.id, runtime.clock())
            said = f"{found[0].child_name} is no longer a child of {found[0].parent_name}"
    except ParleyError as exc:
        raise _fail(exc) from None
    finally:
        runtime.close()
    _say(said)


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Option(help="The organisation's name.")],
    slug: Annotated[str, typer.Option(help="Short name in URLs: /t/SLUG/… (a-z, 0-9, -).")],
    organizer_email: Annotated[str, typer.Option(help="Its organizer mailbox address.")],
    organizer_name: Annotated[str | None, typer.Option(help="Name on its invitations.")] = None,
    host: Annotated[
        str | None, typer.Option(help="Its own site (book.example.org): links point there.")
    ] = None,
) -> None:
    """Create a tenant (as POST /api/v1/tenants does) and print its id."""
    from core.errors import ParleyError
    from core.services.access import SYSTEM
    from core.services.tenants import create_tenant, deployment_host

    runtime = _command_runtime()
    settings = runtime.settings
    try:
        with runtime.sessions.begin() as session:
            made = create_tenant(
                session, SYSTEM, name=name, slug=slug, organizer_email=organizer_email,
                organizer_name=organizer_name, now=runtime.clock(),
                reserved=(settings.organizer_email, *settings.organizer_aliases), host=host,
                reserved_hosts=(deployment_host(settings.effective_base_url),),
            )  # fmt: skip
            tenant_id, slug, address, site = made.id, made.slug, made.organizer_email, made.host
    except ParleyError as exc:
        raise _fail(exc) from None
    finally:
        runtime.close()
    _say(f"Tenant:    {tenant_id} (slug {slug})")
    _say(f"Organizer: {address}")
    if site:
        _say(f"Site:      {settings.effective_base_url.partition('://')[0]}://{site}")
    _say(f"Next: parley key create --tenant {slug} --role owner")


@tenant_app.command("list")
def tenant_list() -> None:
    """Every tenant: id, slug, organizer address, name."""
    from core.services.access import SYSTEM
    from core.services.tenants import list_tenants

    runtime = _command_runtime()
    try:
        with runtime.sessions.begin() as session:
            rows = [
                (t.id, t.slug, t.organizer_email or "(settings)", t.name)
                for t in list_tenants(session, SYSTEM)
            ]
    finally:
        runtime.close()
    _table(("id", "slug", "organizer", "name"), rows)


@key_app.command("create")
def key_create(
    tenant: Annotated[str, typer.Option(help="The tenant's slug.")],
    role: Annotated[str, typer.Option(help="owner, manager, staff or viewer.")],
    label: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    provider: Annotated[
        list[str] | None, typer.Option(help="Limit the key to this provider id (repeatable).")
    ] = None,
) -> None:
    """Make an API key and print it: the only time it is shown."""
    from core.errors import ParleyError
    from core.services.tenants import create_key

    runtime = _command_runtime()
    try:
        with runtime.sessions.begin() as session:
            caller = _in_tenant(session, tenant)
            issued = create_key(
                session, caller, caller.tenant_id, role=role, label=label,
                providers=provider or None, now=runtime.clock(),
            )  # fmt: skip
            key_id, key_role = issued.row.id, issued.row.role
    except ParleyError as exc:
        raise _fail(exc) from None
    finally:
        runtime.close()
    _say(f"Key id: {key_id} ({key_role} in {tenant})")
    _say(f"Key (shown once, keep it now): {issued.key}")


@key_app.command("list")
def key_list(tenant: Annotated[str, typer.Option(help="The tenant's slug.")]) -> None:
    """A tenant's keys, newest first, without their secrets."""
    from core.services.tenants import list_keys

    runtime = _command_runtime()
    try:
        with runtime.sessions.begin() as session:
            caller = _in_tenant(session, tenant)
            rows = [
                (k.id, k.role, ",".join(k.providers or []) or "all", _when(k.created_at),
                 _when(k.revoked_at) if k.revoked_at else "-", k.label or "")
                for k in list_keys(session, caller, caller.tenant_id)
            ]  # fmt: skip
    finally:
        runtime.close()
    _table(("id", "role", "providers", "created", "revoked", "label"), rows)


@key_app.command("revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `parley key list`).")],
    tenant: Annotated[str, typer.Option(help="The tenant's slug.")],
) -> None:
    """Revoke a key at once; requests with it are refused from now on."""
    from core.errors import ParleyError
    from core.services.tenants import revoke_key

    runtime = _command_runtime()
    try:
        with runtime.sessions.begin() as session:
            caller = _in_tenant(session, tenant)
            row = revoke_key(session, caller, caller.tenant_id, key_id, runtime.clock())
            revoked_at = row.revoked_at
    except ParleyError as exc:
        raise _fail(exc) from None
    finally:
        runtime.close()
    _say(f"revoked {key_id} (since {_when(revoked_at)})")


def _command_runtime() -> Runtime:
    settings = _settings()
    _migrate(settings)
    return _runtime(settings)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Plain aligned columns, easy to read and to cut/awk."""
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        _say("  ".join([*cells, line[-1]]).rstrip())


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="New file to write the copy to.")],
) -> None:
    """Copy the SQLite database while Parley runs (online backup API); not for PostgreSQL."""
    from parley.backup import backup_sqlite
    from parley.errors import BackupError

    settings = _settings()
    try:
        result = backup_sqlite(settings.effective_database_url, dest)
    except BackupError as exc:
        err.print(f"parley: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    say = f"backed up {result.bookings} booking(s), {result.size} bytes, to {result.path}"
    if not settings.secret_key:
        key = settings.data_dir / "secret_key"
        say += f"\nkeep {key} with it: it signs the links in sent mail (ops/deploy/backup.md)"
    out.print(say, markup=False, highlight=False, soft_wrap=True)


@app.command()
def doctor() -> None:
    """Check the configuration before going live; exit status 0 only when every check passes."""
    from core.settings import TOML_FILE_ENV
    from parley.doctor import render, run_checks

    settings = _settings()
    config_file = Path(os.environ.get(TOML_FILE_ENV, "parley.toml"))
    checks = run_checks(settings, config_file)
    for line in render(checks):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if any(check.status == "fail" for check in checks):
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
