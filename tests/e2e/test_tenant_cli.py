"""`parley tenant` and `parley key` as an operator runs them in a shell: a tenant and its
keys made, listed and revoked by real subprocesses on a data folder, and the key then used
over HTTP by the app on the same folder."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from core.runtime import open_runtime
from core.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.e2e.helpers import PARLEY, parley_env
from tests.integration.api.helpers import TestClient, make_provider
from web.app import create_app


def _run(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARLEY, *args], env=parley_env(data), cwd=data.parent, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def _ok(data: Path, *args: str) -> str:
    done = _run(data, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stdout


def _refused(data: Path, *args: str) -> str:
    """stderr of a command that must fail with exit 1 and one clear line, no traceback."""
    done = _run(data, *args)
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stderr.startswith("parley: ")
    return done.stderr


def _key(out: str) -> tuple[str, str]:
    key_id = re.search(r"Key id: (key_\w+)", out)
    key = re.search(r"Key \(shown once, keep it now\): (prl\.\S+)", out)
    assert key_id and key, out
    return key_id[1], key[1]


@pytest.mark.slow
def test_tenant_and_keys_from_the_shell_then_over_http(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    data = tmp_path / "data"
    made = _ok(data, "tenant", "create", "--name", "Clinic", "--slug", "clinic",
               "--organizer-email", "desk@clinic.example",
               "--organizer-name", "Clinic Desk")  # fmt: skip
    tenant_id = re.search(r"Tenant: +(tnt_\w+) \(slug clinic\)", made)
    assert tenant_id and "Organizer: desk@clinic.example" in made, made
    listed = _ok(data, "tenant", "list").splitlines()
    assert listed[0].split() == ["id", "slug", "organizer", "name"]
    assert [line.split()[:3] for line in listed[1:]] == [
        ["default", "default", "(settings)"], [tenant_id[1], "clinic", "desk@clinic.example"],
    ]  # fmt: skip

    again = ["--name", "Other", "--slug", "clinic", "--organizer-email", "x@other.example"]
    assert "slug 'clinic'" in _refused(data, "tenant", "create", *again)
    assert "slug must be" in _refused(data, "tenant", "create", *again[:3], "Not A Slug",
                                      *again[4:])  # fmt: skip
    site = _ok(data, "tenant", "create", "--name", "Casa", "--slug", "casa",
               "--organizer-email", "desk@casa.example", "--host", "Book.Casa.Example")  # fmt: skip
    assert "Site:      http://book.casa.example" in site, site
    assert "host must be" in _refused(data, "tenant", "create", "--name", "X", "--slug", "x",
                                      "--organizer-email", "x@x.example",
                                      "--host", "https://x.example/")  # fmt: skip
    assert "no tenant with slug 'nope'" in _refused(data, "key", "create", "--tenant", "nope",
                                                    "--role", "owner")  # fmt: skip
    assert "role must be one of" in _refused(data, "key", "create", "--tenant", "clinic",
                                             "--role", "root")  # fmt: skip
    assert _run(data, "key", "create", "--role", "owner").returncode == 2  # --tenant missing

    settings = make_settings(data_dir=data)
    runtime = open_runtime(settings)
    try:
        with TestClient(create_app(settings, runtime=runtime)) as app:
            system = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            default_anna = make_provider(app, system, slug="anna")
            clinic_anna = make_provider(app, {**system, "X-Parley-Tenant": "clinic"}, slug="anna")
            clinic_ben = make_provider(app, {**system, "X-Parley-Tenant": "clinic"}, slug="ben")

            owner_id, owner = _key(_ok(data, "key", "create", "--tenant", "clinic", "--role",
                                       "owner", "--label", "ops laptop"))  # fmt: skip
            viewer_id, viewer = _key(_ok(data, "key", "create", "--tenant", "clinic", "--role",
                                         "viewer", "--provider", clinic_ben))  # fmt: skip
            assert "no provider with id" in _refused(
                data, "key", "create", "--tenant", "clinic", "--role", "viewer",
                "--provider", default_anna,
            )  # fmt: skip

            def providers(key: str) -> list[str]:
                got = app.get("/api/v1/providers", headers={"Authorization": f"Bearer {key}"})
                assert got.status_code == 200, got.text
                return sorted(item["id"] for item in got.json()["items"])

            assert providers(owner) == sorted([clinic_anna, clinic_ben])
            assert providers(viewer) == [clinic_ben]
            owner_auth = {"Authorization": f"Bearer {owner}"}
            assert (
                app.get(f"/api/v1/providers/{default_anna}", headers=owner_auth).status_code == 404
            )

            keys = _ok(data, "key", "list", "--tenant", "clinic").splitlines()
            assert keys[0].split() == ["id", "role", "providers", "created", "revoked", "label"]
            rows = {line.split()[0]: line for line in keys[1:]}
            assert set(rows) == {owner_id, viewer_id}
            assert owner not in "\n".join(keys) and viewer.split(".")[-1] not in "\n".join(keys)
            assert re.search(r"owner +all .* - +ops laptop$", rows[owner_id])
            assert f"viewer  {clinic_ben}" in rows[viewer_id]

            assert "no api key" in _refused(data, "key", "revoke", "--tenant", "default", owner_id)
            assert providers(owner) == sorted([clinic_anna, clinic_ben])
            revoked = _ok(data, "key", "revoke", "--tenant", "clinic", owner_id)
            assert revoked.startswith(f"revoked {owner_id} (since ")
            refused = app.get("/api/v1/providers", headers=owner_auth)
            assert refused.status_code == 401, refused.text
            assert providers(viewer) == [clinic_ben]
            listed_after = _ok(data, "key", "list", "--tenant", "clinic")
            assert re.search(rf"{owner_id} +owner +all +\S+ \S+ UTC +\d{{4}}-", listed_after)
    finally:
        runtime.close()


@pytest.mark.slow
def test_units_from_the_shell_block_their_children_over_http(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    # `parley provider add --kind unit` and `parley unit link` as a property manager types
    # them; the apartment's booking over the API then takes the room's time.
    data = tmp_path / "data"
    _ok(data, "tenant", "create", "--name", "Casas", "--slug", "casas",
        "--organizer-email", "desk@casas.example")  # fmt: skip
    for slug in ("casa-azul", "blue-room"):
        out = _ok(data, "provider", "add", "--name", slug.replace("-", " ").title(),
                  "--email", f"{slug}@casas.example", "--slug", slug,
                  "--timezone", "Europe/Lisbon", "--kind", "unit", "--tenant", "casas")  # fmt: skip
        assert f"/t/casas/book/{slug}" in out, out
    linked = _ok(data, "unit", "link", "--tenant", "casas", "--parent", "casa-azul",
                 "--child", "blue-room")  # fmt: skip
    assert "Blue Room is a child of Casa Azul" in linked
    loop = _refused(data, "unit", "link", "--tenant", "casas", "--parent", "blue-room",
                    "--child", "casa-azul")  # fmt: skip
    assert "loop" in loop
    tree = _ok(data, "unit", "tree", "--tenant", "casas")
    assert re.search(r"^Casa Azul .*\n  Blue Room ", tree, re.M), tree
    assert "no provider" in _refused(data, "unit", "link", "--tenant", "casas",
                                     "--parent", "nope", "--child", "blue-room")  # fmt: skip

    settings = make_settings(data_dir=data)
    runtime = open_runtime(settings)
    try:
        client = TestClient(create_app(settings, runtime=runtime))
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Parley-Tenant": "casas"}
        listed = client.get("/api/v1/providers", headers=admin).json()["items"]
        ids = {p["slug"]: p["id"] for p in listed}
        assert {p["kind"] for p in listed} == {"unit"}
        rels = client.get(f"/api/v1/providers/{ids['blue-room']}/relationships", headers=admin)
        assert [r["parent_name"] for r in rels.json()["items"]] == ["Casa Azul"]
    finally:
        runtime.close()

    unlinked = _ok(data, "unit", "unlink", "--tenant", "casas", "--parent", "casa-azul",
                   "--child", "blue-room")  # fmt: skip
    assert "Blue Room is no longer a child of Casa Azul" in unlinked
    assert "not a child" in _refused(data, "unit", "unlink", "--tenant", "casas",
                                     "--parent", "casa-azul", "--child", "blue-room")  # fmt: skip
    tree = _ok(data, "unit", "tree", "--tenant", "casas")
    assert re.search(r"^Blue Room .*\nCasa Azul ", tree, re.M), tree
