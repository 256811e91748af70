"""/healthz tells a load balancer whether the database answers; /metrics and OpenAPI are served."""

from __future__ import annotations

import warnings
from typing import Any

from core.db.engine import make_engine, make_sessionmaker
from core.runtime import Runtime
from core.settings import Secrets
from web.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_healthz_is_503_when_the_database_is_down(make_settings: Any) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    settings = make_settings(database_url=url)
    engine = make_engine(url, connect_args={"connect_timeout": 2})
    runtime = Runtime(settings, engine, make_sessionmaker(engine), Secrets(b"k" * 32, "t", False))
    with TestClient(create_app(settings, runtime=runtime)) as client:
        answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "database": "unreachable"}


def test_healthz_metrics_and_openapi(runtime: Runtime) -> None:
    with TestClient(create_app(runtime.settings, runtime=runtime)) as client:
        assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
        metrics = client.get("/metrics").text
        assert "parley_http_requests_total" in metrics
        document = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/holds" in document["paths"]
    assert "/api/v1/providers/{provider_id}/slots" in document["paths"] or any(
        p.endswith("/slots") for p in document["paths"]
    )
