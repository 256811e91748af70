"""The rules and the dashboard in ops/ are written against metrics Parley really exports.

A renamed counter would otherwise leave an alert that can never fire and a dashboard panel
that stays empty, with nothing failing. The names exported are read from the
prometheus_client registry after importing the modules that define them, the database
gauges from their collector (core.services.gauges); recording-rule names
(level:metric:operations) must be recorded in ops/prometheus/recording.yml.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from core.services.gauges import COLLECTOR

OPS = Path(__file__).resolve().parents[2] / "ops"
PROMETHEUS = OPS / "prometheus"
DASHBOARD = OPS / "grafana" / "parley-calendar.json"
METRIC_MODULES = (
    "core.metrics",
    "core.events",
    "mailagent.metrics",
    "core.services.mail_in",
    "core.services.inbound",
    "web.app",
)
# What a family of each type exports (prometheus_client names counters without _total).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
# Parley's metric and recording-rule names: "parley_" or "parley:" and the rest of a name.
NAME = re.compile(r"\bparley[_:][a-zA-Z0-9_:]*")


def exported_names() -> set[str]:
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def gauge_names() -> set[str]:
    """The database gauges: computed at scrape time, so the registry lists them only once a
    process binds its database; their collector describes them without one."""
    return {family.name for family in COLLECTOR.describe()}


def rule_groups(name: str) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load((PROMETHEUS / name).read_text())["groups"]
    return groups


def recorded_names() -> set[str]:
    return {rule["record"] for group in rule_groups("recording.yml") for rule in group["rules"]}


def rule_texts() -> list[tuple[str, str]]:
    """(where, text) of every expression and annotation of both rule files."""
    texts = []
    for name in ("recording.yml", "alerts.yml"):
        for group in rule_groups(name):
            for rule in group["rules"]:
                where = f"{name}: {rule.get('record') or rule.get('alert')}"
                texts.append((where, rule["expr"]))
                texts += [(where, text) for text in rule.get("annotations", {}).values()]
    return texts


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_texts() -> list[tuple[str, str]]:
    return [
        (f"{DASHBOARD.name}: {panel['title']}", target["expr"])
        for panel in panels(dashboard())
        for target in panel.get("targets", [])
    ]


def unknown_names(texts: list[tuple[str, str]]) -> list[str]:
    known = exported_names() | gauge_names() | recorded_names()
    found = [(where, name) for where, text in texts for name in NAME.findall(text)]
    return [f"{where}: {name}" for where, name in found if name not in known]


def test_rules_use_only_exported_metrics_and_recorded_names() -> None:
    assert unknown_names(rule_texts()) == []


def test_dashboard_uses_only_exported_metrics_and_recorded_names() -> None:
    assert unknown_names(dashboard_texts()) == []


def test_the_check_catches_a_misspelt_name() -> None:
    # The regex and the registry must see names at all, or the two tests above prove nothing.
    assert "parley_holds_created_total" in exported_names()
    assert "parley_feasibility_seconds_bucket" in exported_names()
    bad = [("probe", "sum(rate(parley_holds_creatd_total[5m])) / parley:nope:ratio_5m")]
    assert unknown_names(bad) == ["probe: parley_holds_creatd_total", "probe: parley:nope:ratio_5m"]


def test_every_database_gauge_is_used_by_a_rule_or_the_dashboard() -> None:
    used = {name for _, text in rule_texts() + dashboard_texts() for name in NAME.findall(text)}
    assert gauge_names() - used == set()


@pytest.mark.parametrize("record", sorted(recorded_names()))
def test_recording_rules_are_named_level_metric_operations(record: str) -> None:
    level, metric, operations = record.split(":")
    assert level == "parley" and metric and operations, record


def test_every_recording_rule_is_used_or_tested() -> None:
    """A recorded series nobody reads or checks is a KPI that silently drifts."""
    tests = " ".join(path.read_text() for path in (PROMETHEUS / "tests").glob("*.yml"))
    used = {name for _, text in rule_texts() + dashboard_texts() for name in NAME.findall(text)}
    unused = {record for record in recorded_names() if record not in used and record not in tests}
    assert unused == set()


def test_dashboard_has_a_datasource_variable_uid_and_title() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_every_dashboard_panel_queries_prometheus_through_the_variable() -> None:
    board = dashboard()
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel.get("description"), panel["title"]
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


def test_dashboard_has_the_six_panels_of_seed_002_and_a_mail_row() -> None:
    rows = [panel["title"] for panel in dashboard()["panels"] if panel["type"] == "row"]
    assert rows == [
        "Availability intake",
        "Feasibility engine",
        "Hold to confirm",
        "External calendar sync",
        "ICS feed outbound",
        "User impact",
        "Mail",
    ]


def test_calendar_md_explains_every_graph_panel_and_alert() -> None:
    """ops/dashboards/calendar.md has a paragraph per graph and names the alert watching it."""
    text = (OPS / "dashboards" / "calendar.md").read_text()
    graphs = [panel["title"] for panel in panels(dashboard()) if panel["type"] == "timeseries"]
    assert [title for title in graphs if f"**{title}.**" not in text] == []
    alert_names = [rule["alert"] for group in rule_groups("alerts.yml") for rule in group["rules"]]
    assert [name for name in alert_names if name not in text] == []
