"""No object that carries a secret shows it in repr() or str(): they end up in logs."""

from __future__ import annotations

from pathlib import Path

from core.runtime import open_runtime
from core.services.sources import NewSource
from core.services.sync import SyncPolicy
from core.settings import Secrets, Settings, redact_url
from mailagent.delivery import RelayConfig
from mailagent.imap import ImapConfig

KEY, TOKEN, RELAY_PW, IMAP_PW, DB_PW = "key-s3cr3t", "tok-s3cr3t", "rpw-1", "ipw-2", "dpw-3"


def _shown(value: object) -> str:
    return repr(value) + str(value)


def test_settings_runtime_and_configs_hide_secrets(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        secret_key=KEY,
        admin_token=TOKEN,
        smtp_relay_url=f"smtp://user:{RELAY_PW}@relay.example:587",
        imap_url=f"imaps://me:{IMAP_PW}@imap.example/INBOX",
        database_url=f"sqlite:///{tmp_path}/x.db",
    )
    runtime = open_runtime(settings)
    try:
        objects: list[object] = [
            settings,
            runtime,
            runtime.secrets,
            Secrets(KEY.encode(), TOKEN, False),
            RelayConfig.from_url(settings.smtp_relay_url),
            ImapConfig.from_url(settings.imap_url),
            SyncPolicy.from_settings(settings, KEY.encode()),
            NewSource(url="https://x.example/cal", username="u", password=RELAY_PW),
        ]
        for value in objects:
            text = _shown(value)
            for secret in (KEY, TOKEN, RELAY_PW, IMAP_PW):
                assert secret not in text, type(value).__name__
        assert "smtp://user:***@relay.example:587" in repr(settings)
    finally:
        runtime.close()


def test_redact_url() -> None:
    assert (
        redact_url(f"postgresql://pg:{DB_PW}@db:5432/parley")
        == "postgresql://pg:***@db:5432/parley"
    )
    assert redact_url("smtps://relay.example") == "smtps://relay.example"
    assert redact_url("") == ""
