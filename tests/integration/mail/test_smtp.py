"""The SMTP and LMTP listeners over real sockets: smtplib and aiosmtplib as clients."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from pathlib import Path

import aiosmtplib
import pytest
from sqlalchemy import func, select

from core.db.engine import make_engine, make_sessionmaker
from core.db.migrate import upgrade
from core.db.models import InboundMessage
from core.runtime import Runtime
from mailagent.lmtp import LmtpHandler, lmtp_factory
from mailagent.smtp import InboundHandler, RecipientPolicy, smtp_factory
from tests.integration.mail.helpers import mail, run_client, self_signed, server_in_thread

ORGANIZER = "scheduling@parley.localhost"
POLICY = RecipientPolicy.single(ORGANIZER, ["bookings@parley.localhost"])


def _rows(runtime: Runtime) -> list[InboundMessage]:
    with runtime.sessions() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_smtplib_stores_before_250_and_refuses_strangers(runtime: Runtime) -> None:
    stored: list[int] = []
    handler = InboundHandler(runtime.sessions, POLICY, on_stored=stored.append, max_recipients=3)
    with (
        server_in_thread(smtp_factory(handler, data_size_limit=10_000)) as port,
        smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
    ):
        raw = mail(message_id="<a@example.net>")
        recipients = ["scheduling+b42@parley.localhost", "Bookings@Parley.Localhost"]
        assert client.sendmail("guest@example.net", recipients, raw) == {}
        # The row exists as soon as the 250 arrived.
        assert [r.message_key for r in _rows(runtime)] == ["<a@example.net>"]
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("guest@example.net", ["other@parley.localhost"], raw)
        assert refused.value.recipients["other@parley.localhost"][0] == 550
        with pytest.raises(smtplib.SMTPSenderRefused) as big:
            client.sendmail("guest@example.net", [ORGANIZER], raw + b"x" * 20_000)
        assert big.value.smtp_code == 552
        many = [f"scheduling+{i}@parley.localhost" for i in range(5)]
        refused_some = client.sendmail("guest@example.net", many, mail(message_id="<b@x>"))
        assert {code for code, _ in refused_some.values()} == {452}
        assert len(refused_some) == 2
    rows = _rows(runtime)
    assert [r.message_key for r in rows] == ["<a@example.net>", "<b@x>"]
    assert rows[0].raw == raw and rows[0].outcome == "pending" and rows[0].channel == "smtp"
    assert rows[0].envelope_to == ",".join(recipients)
    assert stored == [r.id for r in rows]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # hot connections: PG only
def test_hot_store_on_the_event_loop_keeps_every_message_once(runtime: Runtime) -> None:
    assert runtime.hot is not None
    stored: list[int] = []
    handler = InboundHandler(runtime.sessions, POLICY, on_stored=stored.append, hot=runtime.hot)

    async def send_all(port: int) -> None:
        async def one(i: int) -> None:
            raw = mail(message_id=f"<h{i % 10}@example.net>", body=f"copy {i}")
            to = [f"scheduling+t{i}@parley.localhost"]
            await aiosmtplib.send(raw, sender="g@example.net", recipients=to,
                                  hostname="127.0.0.1", port=port, timeout=10)  # fmt: skip

        await asyncio.gather(*(one(i) for i in range(30)))

    with server_in_thread(smtp_factory(handler, data_size_limit=10_000)) as port:
        run_client(send_all(port))
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            raw = mail(message_id="<single@example.net>")
            client.sendmail("guest@example.net", [ORGANIZER], raw)
            # Stored (and committed) before the 250 came back.
            assert _rows(runtime)[-1].message_key == "<single@example.net>"
    rows = _rows(runtime)
    assert sorted(r.message_key for r in rows) == sorted(
        [*(f"<h{i}@example.net>" for i in range(10)), "<single@example.net>"]
    )
    single = rows[-1]
    assert single.raw == raw and single.size == len(raw) and single.outcome == "pending"
    assert single.envelope_from == "guest@example.net" and single.envelope_to == ORGANIZER
    assert single.channel == "smtp" and single.received_at.tzinfo is not None
    assert sorted(stored) == sorted(r.id for r in rows)  # duplicates are not announced


def test_aiosmtplib_concurrent_senders_and_dedup(runtime: Runtime) -> None:
    handler = InboundHandler(runtime.sessions, POLICY)

    async def send_all(port: int) -> None:
        async def one(i: int) -> None:
            raw = mail(message_id=f"<c{i % 10}@example.net>", body=f"copy {i}")
            await aiosmtplib.send(raw, sender="g@example.net", recipients=[ORGANIZER],
                                  hostname="127.0.0.1", port=port, timeout=10)  # fmt: skip

        await asyncio.gather(*(one(i) for i in range(40)))
        # Without a Message-ID the content hash is the key: same bytes, one row.
        bare = b"From: g@example.net\r\nSubject: no id\r\n\r\nbody\r\n"
        for _ in range(3):
            await aiosmtplib.send(bare, sender="g@example.net", recipients=[ORGANIZER],
                                  hostname="127.0.0.1", port=port)  # fmt: skip

    with server_in_thread(smtp_factory(handler, data_size_limit=10_000)) as port:
        run_client(send_all(port))
    keys = [r.message_key for r in _rows(runtime)]
    assert sorted(k for k in keys if not k.startswith("sha256:")) == sorted(
        f"<c{i}@example.net>" for i in range(10)
    )
    assert len([k for k in keys if k.startswith("sha256:")]) == 1


def test_database_down_answers_451(make_settings: object) -> None:
    engine = make_engine("postgresql+psycopg://parley@127.0.0.1:1/nowhere?connect_timeout=2")
    handler = InboundHandler(make_sessionmaker(engine), POLICY)
    try:
        with (
            server_in_thread(smtp_factory(handler, data_size_limit=10_000)) as port,
            smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
            pytest.raises(smtplib.SMTPDataError) as failed,
        ):
            client.sendmail("g@example.net", [ORGANIZER], mail())
    finally:
        engine.dispose()
    assert failed.value.smtp_code == 451


def test_starttls_with_a_configured_certificate(runtime: Runtime, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    handler = InboundHandler(runtime.sessions, POLICY)
    client_tls = ssl.create_default_context(cafile=str(cert))
    with server_in_thread(smtp_factory(handler, data_size_limit=10_000, tls=server_tls)) as port:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            client.starttls(context=client_tls)
            client.ehlo()
            assert isinstance(client.sock, ssl.SSLSocket)
            client.sendmail("g@example.net", [ORGANIZER], mail(message_id="<tls@x>"))
        run_client(
            aiosmtplib.send(mail(message_id="<tls2@x>"), sender="g@example.net",
                            recipients=[ORGANIZER], hostname="127.0.0.1", port=port,
                            start_tls=True, tls_context=client_tls)
        )  # fmt: skip
    assert [r.message_key for r in _rows(runtime)] == ["<tls@x>", "<tls2@x>"]


def test_lmtp_answers_once_per_recipient(runtime: Runtime) -> None:
    handler = LmtpHandler(runtime.sessions, POLICY, channel="lmtp")
    with server_in_thread(lmtp_factory(handler, data_size_limit=10_000)) as port:
        client = smtplib.LMTP("127.0.0.1", port)
        try:
            refused = client.sendmail(
                "g@example.net",
                [ORGANIZER, "scheduling+x@parley.localhost", "nobody@parley.localhost"],
                mail(message_id="<l@x>"),
            )
        finally:
            client.quit()
    assert refused == {"nobody@parley.localhost": (550, b"5.1.1 No such user here")}
    with_rows = _rows(runtime)
    assert [(r.message_key, r.channel) for r in with_rows] == [("<l@x>", "lmtp")]
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1


def test_sqlite_store_thread_answers_451_then_recovers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'late.db'}"
    engine = make_engine(url)
    handler = InboundHandler(make_sessionmaker(engine), POLICY)
    try:
        with (
            server_in_thread(smtp_factory(handler, data_size_limit=10_000)) as port,
            smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
        ):
            # No tables yet: the store fails and the sender is told to come back later.
            with pytest.raises(smtplib.SMTPDataError) as failed:
                client.sendmail("g@example.net", [ORGANIZER], mail(message_id="<early@x>"))
            assert failed.value.smtp_code == 451
            upgrade(url)
            for message_id in ("<late@x>", "<late@x>", "<later@x>"):
                assert (
                    client.sendmail("g@example.net", [ORGANIZER], mail(message_id=message_id)) == {}
                )
            with make_sessionmaker(engine)() as session:
                rows = session.execute(select(InboundMessage.message_key, InboundMessage.outcome))
                assert sorted(rows) == [("<late@x>", "pending"), ("<later@x>", "pending")]
    finally:
        handler.close()
        engine.dispose()
