"""The alert and recording rules of ops/prometheus, checked the way an operator loads them.

promtool (Debian's `prometheus` package) parses both rule files and runs the unit tests in
ops/prometheus/tests/. Without promtool these tests skip, except in CI (CI=true), where a
missing promtool is a failure. The rest needs no promtool: every alert has a case that fires
and a case that stays silent, a summary, a description quoting its value, and a runbook
link to a section that exists in ops/runbooks/. promtool also parses the dashboard's queries,
and a scrape of /metrics over HTTP shows every metric the rules and the dashboard read.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from core.runtime import Runtime
from tests.integration.api.helpers import client_for
from tests.unit.test_metric_catalogue import (
    NAME,
    SUFFIXES,
    dashboard_texts,
    recorded_names,
    rule_texts,
)

PROMETHEUS = Path(__file__).resolve().parents[2] / "ops" / "prometheus"
RUNBOOKS = PROMETHEUS.parent / "runbooks"
DASHBOARD = PROMETHEUS.parent / "grafana" / "parley-calendar.json"
RULE_FILES = ("alerts.yml", "recording.yml")
RUNBOOK_BASE = "https://parley.example/ops/runbooks/"
SEVERITIES = {"critical", "warning"}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules(name: str) -> list[dict[str, Any]]:
    return [rule for group in load(PROMETHEUS / name)["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return rules("alerts.yml")


def promtool_tests() -> list[Path]:
    return sorted((PROMETHEUS / "tests").glob("*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: install Debian's prometheus package (CI=true)")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return found


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=240
    )


def test_promtool_accepts_both_rule_files(promtool: str) -> None:
    done = run(promtool, "check", "rules", *RULE_FILES)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in RULE_FILES:
        assert f"SUCCESS: {len(rules(name))} rules found" in done.stdout, (name, done.stdout)


def test_promtool_unit_tests_pass(promtool: str) -> None:
    files = [str(path.relative_to(PROMETHEUS)) for path in promtool_tests()]
    assert files, "no promtool tests in ops/prometheus/tests"
    done = run(promtool, "test", "rules", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("SUCCESS") == len(files), done.stdout


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Each panel query, wrapped as a recording rule, parses (Grafana's interval made 5m)."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [
        target["expr"].replace("$__rate_interval", "5m")
        for top in board["panels"]
        for panel in [top, *top.get("panels", [])]  # a collapsed row holds its panels
        for target in panel.get("targets", [])
    ]
    assert exprs
    records = [{"record": f"dashboard:query:{n}", "expr": expr} for n, expr in enumerate(exprs)]
    rule_file = tmp_path / "dashboard.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    done = run(promtool, "check", "rules", str(rule_file))
    assert done.returncode == 0, done.stdout + done.stderr


def alert_cases() -> list[dict[str, Any]]:
    """Every alert_rule_test case of every promtool test file."""
    return [
        case
        for path in promtool_tests()
        for group in load(path)["tests"]
        for case in group.get("alert_rule_test", [])
    ]


@pytest.mark.parametrize("alert", [rule["alert"] for rule in alerts()])
def test_every_alert_has_a_firing_and_a_silent_case(alert: str) -> None:
    cases = [case for case in alert_cases() if case["alertname"] == alert]
    assert any(case.get("exp_alerts") for case in cases), f"{alert}: no case that fires"
    assert any(not case.get("exp_alerts") for case in cases), f"{alert}: no case that is silent"


def test_tests_name_only_alerts_that_exist() -> None:
    known = {rule["alert"] for rule in alerts()}
    named = {case["alertname"] for case in alert_cases()}
    assert named <= known, f"tests name unknown alerts: {sorted(named - known)}"


def heading_anchors(markdown: str) -> set[str]:
    """The anchors a Markdown renderer gives the headings (GitHub style: lower case, dashes)."""
    anchors = set()
    for line in markdown.splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            words = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            anchors.add(words.replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_every_alert_says_what_and_where_to_look(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    notes = rule["annotations"]
    assert notes["summary"].strip()
    assert "$value" in notes["description"], "the description should quote the value"
    url = notes["runbook_url"]
    assert url.startswith(RUNBOOK_BASE), url
    parts = urlsplit(url)
    runbook = RUNBOOKS / Path(parts.path).name
    assert runbook.is_file(), f"{url}: no {runbook.relative_to(PROMETHEUS.parents[1])}"
    assert parts.fragment, f"{url}: link the section, not only the file"
    assert parts.fragment in heading_anchors(runbook.read_text(encoding="utf-8")), url


def test_alert_names_are_unique() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names))


def test_metrics_over_http_include_every_name_the_rules_and_dashboard_read(
    runtime: Runtime,
) -> None:
    """What Prometheus would scrape: families are listed (# TYPE) before any sample exists.

    The app is served with every module `parley serve` loads (the mail agent's and the
    worker's metrics are defined there), as that process's /metrics would be.
    """
    importlib.import_module("parley.server")
    answer = client_for(runtime).get("/metrics")
    assert answer.status_code == 200
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(answer.text)
        for suffix in SUFFIXES.get(family.type, ("",))
    }
    used = {name for _, text in rule_texts() + dashboard_texts() for name in NAME.findall(text)}
    assert used - recorded_names() - exported == set()
