"""The example deployment files of ops/deploy: systemd units and the nginx site.

The units are checked by `systemd-analyze verify` (when the machine has it) with ExecStart
pointed at this venv's `parley`, and always parsed: each ExecStart names a real `parley`
sub-command with options its --help lists, under the hardening an admin expects. The nginx
site must forward what web/edge.py's ClientAddress reads, and pass `nginx -t` where nginx
is installed (with a throwaway certificate).
"""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.mail.helpers import self_signed

DEPLOY = Path(__file__).resolve().parents[2] / "ops" / "deploy"
UNITS = DEPLOY / "systemd"
SITE = DEPLOY / "nginx" / "parley.conf"
PARLEY_BIN = Path(sys.executable).with_name("parley")
HARDENING = {
    "ProtectSystem": "strict",
    "NoNewPrivileges": "true",
    "PrivateTmp": "true",
    "ProtectHome": "true",
}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def help_text(*command: str) -> str:
    done = subprocess.run(
        [str(PARLEY_BIN), *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("name", "command"),
    [("parley-web.service", ["serve", "--no-worker"]), ("parley-worker@.service", ["worker"])],
)
def test_exec_start_is_a_real_command_with_accepted_options(name: str, command: list[str]) -> None:
    service = unit(name)["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "parley"
    assert argv[1:] == command
    words = [a for a in argv[1:] if not a.startswith("-")]
    text = help_text(*words)
    for option in (a for a in argv[1:] if a.startswith("-")):
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), (option, text)


@pytest.mark.parametrize("name", ["parley-web.service", "parley-worker@.service"])
def test_units_are_hardened_and_write_only_the_data_dir(name: str) -> None:
    service = unit(name)["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == value, key
    assert service["ReadWritePaths"] == "/var/lib/parley"
    assert service["EnvironmentFile"] == "/etc/parley/parley.env"
    assert service["User"] == "parley"
    env = (UNITS / "parley.env").read_text()
    assert "PARLEY_DATA_DIR=/var/lib/parley" in env


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for path in UNITS.glob("parley*"):
        text = path.read_text().replace("/opt/parley/venv/bin/parley", str(PARLEY_BIN))
        (tmp_path / path.name).write_text(text)
    names = ["parley-web.service", "parley-worker@1.service", "parley.target"]
    done = subprocess.run(
        [analyze, "verify", "--man=no", *names],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert str(tmp_path) not in done.stderr, done.stderr  # no directive ignored


# --- nginx ---------------------------------------------------------------------------------


def site_directives() -> list[str]:
    """Each directive of the site on one line, comments and block braces dropped."""
    text = re.sub(r"#[^\n]*", "", SITE.read_text())
    return [" ".join(d.split()) for d in re.split(r"[;{}]", text) if d.strip()]


def test_nginx_site_forwards_what_parley_trusts() -> None:
    directives = site_directives()
    for needed in (
        "proxy_set_header Host $host",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for",
        "proxy_set_header X-Forwarded-Proto $scheme",
        "proxy_pass http://parley",
    ):
        assert needed in directives, needed
    assert any(d.startswith("listen 443 ssl") for d in directives)
    assert "return 301 https://$host$request_uri" in directives
    # The address nginx connects from is the one PARLEY_TRUSTED_PROXIES must name.
    assert directives[directives.index("upstream parley") + 1] == "server 127.0.0.1:8000"
    assert "PARLEY_TRUSTED_PROXIES=127.0.0.1" in (UNITS / "parley.env").read_text()


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed")
    cert, key = self_signed(tmp_path)
    site = SITE.read_text()
    site = site.replace("/etc/ssl/certs/parley.example.org.pem", str(cert))
    site = site.replace("/etc/ssl/private/parley.example.org.key", str(key))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n include {tmp_path}/site.conf;\n}}\n"
    )
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
