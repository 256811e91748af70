"""Settings: environment over parley.toml over defaults; bad values give one line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import ensure_secrets, load_settings


def test_bad_port_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_HTTP_PORT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "PARLEY_HTTP_PORT" in message and "\n" not in message


def test_bad_decline_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_DECLINE_POLICY", "sometimes")
    with pytest.raises(ConfigError, match="PARLEY_DECLINE_POLICY"):
        load_settings()


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "parley.toml"
    toml.write_text('http_port = 9100\norganizer_email = "book@example.org"\n')
    monkeypatch.setenv("PARLEY_CONFIG", str(toml))
    monkeypatch.setenv("PARLEY_HTTP_PORT", "9200")
    settings = load_settings()
    assert settings.http_port == 9200
    assert settings.organizer_email == "book@example.org"
    assert settings.organizer_domain == "example.org"


def test_defaults_are_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.http_port == 8000 and settings.smtp_port == 2525
    assert settings.decline_policy == "strict"


def test_secrets_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d")
    first = ensure_secrets(settings)
    second = ensure_secrets(settings)
    assert first.generated_admin_token and not second.generated_admin_token
    assert first.admin_token == second.admin_token and first.secret_key == second.secret_key
    assert len(first.admin_token) >= 40
    for name in ("secret_key", "admin_token"):
        mode = stat.S_IMODE(os.stat(tmp_path / "d" / name).st_mode)
        assert mode == 0o600


def test_configured_secrets_are_not_written(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d", admin_token="given", secret_key="k")
    got = ensure_secrets(settings)
    assert got.admin_token == "given" and not got.generated_admin_token
    assert not (tmp_path / "d" / "admin_token").exists()


def test_bad_inbound_auth_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_INBOUND_AUTH", "authres")  # the authserv-id is missing
    with pytest.raises(ConfigError, match="PARLEY_INBOUND_AUTH"):
        load_settings()
